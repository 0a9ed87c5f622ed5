//go:build integration

package e2e

import (
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/adwriteback/adwriteback/configs"
	"github.com/adwriteback/adwriteback/integration/stack"
	"github.com/adwriteback/adwriteback/integration/testdc"
	"github.com/adwriteback/adwriteback/relay/protocol"
	"github.com/adwriteback/adwriteback/relay/sender"
)

// notYetExported are the metrics the shipped alerts and dashboard use
// that a connector may not export at all in the test's scrape: none.
var notYetExported = map[string]bool{}

// TestShippedAlertsAndDashboardUseRealMetrics scrapes a running connector,
// after a command that succeeded, one that broke a policy rule and a
// message that is no command, and
// checks that every metric name configs/prometheus/alerts.yaml and
// configs/grafana/adwriteback.json use is in the scrape (a histogram's
// _bucket, _sum and _count by its family).
func TestShippedAlertsAndDashboardUseRealMetrics(t *testing.T) {
	alerts, err := configs.AlertExprs(configs.Alerts)
	if err != nil {
		t.Fatal(err)
	}
	panels, vars, err := configs.DashboardExprs(configs.Dashboard)
	if err != nil {
		t.Fatal(err)
	}
	used := configs.MetricNames(append(append(alerts, panels...), vars...))
	if len(used) < 10 {
		t.Fatalf("only %d metric names found in the shipped files: %v", len(used), used)
	}

	s := newEnv(t)
	in := s.Start("prom")
	base := in.URL("")
	if r := in.WaitReady(200); !r.Ready {
		t.Fatalf("ready report %+v", r)
	}
	u := testdc.NewUser(t, s.DC, "")
	c := s.Sender()
	if res := c.Do(sender.Request{Op: protocol.OpReset, User: sam(u), NewPassword: s.Secret("Prom!Names.Pass1")}); res.Code != protocol.CodeSucceeded {
		t.Fatalf("%+v", res.Result)
	}
	if res := c.Do(sender.Request{Op: protocol.OpReset, User: sam(u), NewPassword: s.Secret("short")}); res.Code != protocol.CodePolicyViolation {
		t.Fatalf("%+v", res.Result)
	}

	// A message that is no command: dead-lettered, it makes
	// adwriteback_rejected_messages_total exist.
	raw := s.Raw()
	if err := raw.Send("prom-not-a-command", []byte("not a command")); err != nil {
		t.Fatal(err)
	}
	if out := raw.Await(t, "prom-not-a-command", ""); out.DeadReason == "" {
		t.Fatalf("the non-command was not dead-lettered: %+v", out)
	}

	// Metrics follow the settlement: wait for the counters.
	var text string
	stack.Eventually(10*time.Second, func() bool {
		_, text = get(t, base+"/metrics")
		return strings.Contains(text, `adwriteback_violations_total{`) && strings.Contains(text, `outcome="policy_violation"`) &&
			strings.Contains(text, `adwriteback_rejected_messages_total{`)
	})
	s.Results.Write([]byte(text))
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	scraped := map[string]bool{}
	for name, f := range families {
		if len(f.GetMetric()) == 0 {
			continue
		}
		scraped[name] = true
		if f.GetType() == dto.MetricType_HISTOGRAM {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				scraped[name+suffix] = true
			}
		}
	}
	var absent []string
	for _, n := range used {
		switch {
		case scraped[n]:
		case notYetExported[n]:
			t.Logf("%s is not in this scrape: allowed, another change adds it", n)
		default:
			absent = append(absent, n)
		}
	}
	if len(absent) > 0 {
		var have []string
		for n := range scraped {
			have = append(have, n)
		}
		sort.Strings(have)
		t.Errorf("the shipped alerts or dashboard use metrics a connector does not export: %v\nscraped: %v", absent, have)
	}
}
