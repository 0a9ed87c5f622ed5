// Package configs holds the files shipped next to the connector: the
// reference configuration, the systemd unit, and the Prometheus alerts
// (prometheus/alerts.yaml, unit-tested by prometheus/alerts_test.yaml)
// and Grafana dashboard (grafana/adwriteback.json) for its /metrics. Its
// Go code only reads the last two, for the tests that check them with
// promtool and against a real scrape (integration/e2e).
package configs

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Alerts is prometheus/alerts.yaml; Dashboard is grafana/adwriteback.json.
var (
	//go:embed prometheus/alerts.yaml
	Alerts []byte
	//go:embed grafana/adwriteback.json
	Dashboard []byte
)

// AlertExprs returns the expression of every rule of a Prometheus rules
// file, in file order.
func AlertExprs(rules []byte) ([]string, error) {
	var f struct {
		Groups []struct {
			Rules []struct {
				Expr string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(rules, &f); err != nil {
		return nil, err
	}
	var out []string
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			out = append(out, r.Expr)
		}
	}
	return out, nil
}

// DashboardExprs returns the PromQL expression of every panel target of a
// Grafana dashboard (rows' nested panels included), and the query of every
// query variable (label_values(...), which is not PromQL).
func DashboardExprs(dashboard []byte) (exprs, variables []string, err error) {
	type panel struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
		Panels []json.RawMessage `json:"panels"`
	}
	var d struct {
		Panels     []json.RawMessage `json:"panels"`
		Templating struct {
			List []struct {
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(dashboard, &d); err != nil {
		return nil, nil, err
	}
	var walk func([]json.RawMessage) error
	walk = func(ps []json.RawMessage) error {
		for _, raw := range ps {
			var p panel
			if err := json.Unmarshal(raw, &p); err != nil {
				return err
			}
			for _, t := range p.Targets {
				if strings.TrimSpace(t.Expr) == "" {
					return fmt.Errorf("panel %q: a target without expr", p.Title)
				}
				exprs = append(exprs, t.Expr)
			}
			if err := walk(p.Panels); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(d.Panels); err != nil {
		return nil, nil, err
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		switch q := v.Query.(type) {
		case string:
			variables = append(variables, q)
		case map[string]any:
			if s, ok := q["query"].(string); ok {
				variables = append(variables, s)
			}
		}
	}
	return exprs, variables, nil
}

var grafanaVar = regexp.MustCompile(`\$(__rate_interval|__interval|__range)\b|\$\{?[A-Za-z_][A-Za-z0-9_]*\}?`)

// PromQL turns a Grafana expression into one Prometheus parses: the
// interval variables become 5m, any other variable (used in label
// matchers) the string "x".
func PromQL(expr string) string {
	return grafanaVar.ReplaceAllStringFunc(expr, func(v string) string {
		if strings.HasPrefix(v, "$__") {
			return "5m"
		}
		return "x"
	})
}

var metricName = regexp.MustCompile(`\badwriteback_[A-Za-z0-9_:]+`)

// MetricNames returns the connector metric names (those under the
// adwriteback namespace) that exprs use, sorted and without duplicates.
func MetricNames(exprs []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, e := range exprs {
		for _, n := range metricName.FindAllString(e, -1) {
			if !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	sort.Strings(out)
	return out
}
