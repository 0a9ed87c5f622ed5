package configs

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// promtool returns promtool's path. Without it the test is skipped, except
// in CI (CI=true), where install-deps.sh installs it: there its absence
// fails the test.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("promtool not found in CI (integration/scripts/install-deps.sh installs Debian's prometheus package): %v", err)
	}
	t.Skipf("promtool not found (install Debian's prometheus package, or run integration/scripts/install-deps.sh): %v", err)
	return ""
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	t.Logf("%s %s:\n%s", filepath.Base(name), strings.Join(args, " "), out)
}

func TestAlertsCheck(t *testing.T) {
	run(t, promtool(t), "check", "rules", "prometheus/alerts.yaml")
}

func TestAlertsUnitTests(t *testing.T) {
	run(t, promtool(t), "test", "rules", "prometheus/alerts_test.yaml")
}

// TestAlertsEachTested holds every alert to a case in alerts_test.yaml.
func TestAlertsEachTested(t *testing.T) {
	tests, err := os.ReadFile("prometheus/alerts_test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range alertRules(t) {
		if !strings.Contains(string(tests), "alertname: "+r.Alert+"\n") {
			t.Errorf("alert %s has no case in alerts_test.yaml", r.Alert)
		}
	}
}

// TestAlertsRunbooks holds every alert to a summary, a description and a
// runbook whose docs/operating.md anchors are headings there.
func TestAlertsRunbooks(t *testing.T) {
	doc, err := os.ReadFile("../docs/operating.md")
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	for _, line := range strings.Split(string(doc), "\n") {
		if h, ok := strings.CutPrefix(line, "#"); ok {
			anchors[anchor(strings.TrimLeft(h, "#"))] = true
		}
	}
	ref := regexp.MustCompile(`docs/operating\.md#([A-Za-z0-9_-]+)`)
	for _, r := range alertRules(t) {
		for _, k := range []string{"summary", "description", "runbook"} {
			if strings.TrimSpace(r.Annotations[k]) == "" {
				t.Errorf("alert %s: no %s annotation", r.Alert, k)
			}
		}
		refs := ref.FindAllStringSubmatch(r.Annotations["runbook"], -1)
		if len(refs) == 0 {
			t.Errorf("alert %s: its runbook does not point into docs/operating.md", r.Alert)
		}
		for _, m := range refs {
			if !anchors[m[1]] {
				t.Errorf("alert %s: docs/operating.md has no heading for #%s", r.Alert, m[1])
			}
		}
	}
}

// anchor is the fragment GitHub gives a Markdown heading.
func anchor(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(h)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
		}
	}
	return b.String()
}

type alertRule struct {
	Alert       string            `yaml:"alert"`
	Annotations map[string]string `yaml:"annotations"`
}

func alertRules(t *testing.T) []alertRule {
	t.Helper()
	var f struct {
		Groups []struct {
			Rules []alertRule `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(Alerts, &f); err != nil {
		t.Fatal(err)
	}
	var out []alertRule
	for _, g := range f.Groups {
		out = append(out, g.Rules...)
	}
	if len(out) == 0 {
		t.Fatal("no rules in alerts.yaml")
	}
	return out
}

// TestDashboardExprs checks that every expression of the dashboard parses
// as PromQL: promtool has no expression check of its own, so each becomes
// a recording rule of a temporary rules file that `promtool check rules`
// reads. The selectors of the query variables are checked the same way.
func TestDashboardExprs(t *testing.T) {
	exprs, vars, err := DashboardExprs(Dashboard)
	if err != nil {
		t.Fatal(err)
	}
	if len(exprs) < 10 {
		t.Fatalf("only %d expressions in the dashboard", len(exprs))
	}
	labelValues := regexp.MustCompile(`^label_values\((.+),\s*[A-Za-z_][A-Za-z0-9_]*\)$`)
	for _, v := range vars {
		m := labelValues.FindStringSubmatch(strings.TrimSpace(v))
		if m == nil {
			t.Fatalf("variable query %q: want label_values(selector, label)", v)
		}
		exprs = append(exprs, m[1])
	}
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for i, e := range exprs {
		q, err := yaml.Marshal(PromQL(e))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&rules, "      - record: dashboard:expr_%d\n        expr: %s", i, q)
	}
	file := filepath.Join(t.TempDir(), "dashboard-rules.yaml")
	if err := os.WriteFile(file, []byte(rules.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, promtool(t), "check", "rules", file)
}

func TestPromQL(t *testing.T) {
	got := PromQL(`rate(x{job=~"$job",instance=~"${instance}"}[$__rate_interval])`)
	if want := `rate(x{job=~"x",instance=~"x"}[5m])`; got != want {
		t.Errorf("PromQL = %s, want %s", got, want)
	}
}

func TestMetricNames(t *testing.T) {
	got := MetricNames([]string{`sum(rate(adwriteback_commands_total{outcome="x"}[5m])) / adwriteback_a_bucket`, `up{job="adwriteback"}`})
	if want := []string{"adwriteback_a_bucket", "adwriteback_commands_total"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("MetricNames = %v, want %v", got, want)
	}
}
