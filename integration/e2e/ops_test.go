//go:build integration

package e2e

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/adwriteback/adwriteback/connector/app"
	"github.com/adwriteback/adwriteback/integration/browser"
	"github.com/adwriteback/adwriteback/integration/stack"
	"github.com/adwriteback/adwriteback/integration/testdc"
	"github.com/adwriteback/adwriteback/relay/protocol"
	"github.com/adwriteback/adwriteback/relay/sender"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestReadinessMetricsAndStatusPage runs a connector whose DC sits behind a
// switchable proxy: /readyz follows the DC and the queue going away and
// coming back, /metrics counts real traffic, and /status shows it, checked
// in headless Chromium with a screenshot left in integration/artifacts.
func TestReadinessMetricsAndStatusPage(t *testing.T) {
	s := newEnv(t)
	proxy := stack.NewProxy(t, s.DC.Addr+":636")
	in := s.Start("ops", stack.Configure(func(c *stack.ConfigSpec) {
		c.Servers, c.ServerName = []string{"ldaps://" + proxy.Addr()}, s.DC.Addr
	}), stack.Deps(func(d *app.Deps) { d.ProbeInterval, d.Version = 200*time.Millisecond, "e2e" }))
	base := in.URL("")

	if code, body := get(t, base+"/livez"); code != 200 {
		t.Fatalf("/livez %d %s", code, body)
	}
	r := in.WaitReady(200)
	if !r.Ready {
		t.Fatalf("ready report %+v", r)
	}

	// Real traffic moves the metrics.
	u := testdc.NewUser(t, s.DC, "")
	c := s.Sender()
	res := c.Do(sender.Request{Op: protocol.OpReset, User: sam(u), NewPassword: s.Secret("Ops!Metrics.Pass1")})
	if res.Code != protocol.CodeSucceeded {
		t.Fatalf("%+v", res.Result)
	}
	bad := c.Do(sender.Request{Op: protocol.OpReset, User: sam(u), NewPassword: s.Secret("short")})
	if bad.Code != protocol.CodePolicyViolation {
		t.Fatalf("%+v", bad.Result)
	}
	wants := []string{
		`adwriteback_commands_total{op="reset",outcome="succeeded"} 1`,
		`adwriteback_commands_total{op="reset",outcome="policy_violation"} 1`,
		`adwriteback_violations_total{rule="min_length"} 1`,
		`adwriteback_ldap_operation_duration_seconds_count{dc="ldaps://` + proxy.Addr() + `",op="reset"} 1`,
		`adwriteback_queue_receive_lag_seconds_count 2`,
		`adwriteback_ldap_dc_up{dc="ldaps://` + proxy.Addr() + `",domain="adw.test"} 1`,
	}
	// What follows the settlement (audit, metrics) may land just after the
	// result: wait for every line, then check each.
	var metrics string
	stack.Eventually(10*time.Second, func() bool {
		_, metrics = get(t, base+"/metrics")
		for _, want := range wants {
			if !strings.Contains(metrics, want) {
				return false
			}
		}
		return true
	})
	for _, want := range wants {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(metrics, "Ops!Metrics.Pass1") {
		t.Fatal("a password in /metrics")
	}
	s.Results.Write([]byte(metrics))

	// The status page, in a real browser, from this running connector
	// (its recent commands come from the audit records, which follow the
	// settlement: wait for them first).
	stack.WaitFor(t, 30*time.Second, "/status to list both commands", func() bool {
		page, err := stack.HTTPGet(base + "/status")
		return err == nil && strings.Contains(string(page), res.CommandID) && strings.Contains(string(page), bad.CommandID)
	})
	bin := browser.Chromium(t)
	dom := string(browser.Run(t, bin, "--dump-dom", base+"/status"))
	for _, want := range []string{res.CommandID, bad.CommandID, u.DN, "policy_violation", "min_length", "succeeded"} {
		if !strings.Contains(dom, want) {
			t.Errorf("/status lacks %q", want)
		}
	}
	s.Results.Write([]byte(dom))
	shot := filepath.Join(browser.Artifacts(t), "status-live.png")
	os.Remove(shot)
	browser.Run(t, bin, "--screenshot="+shot, base+"/status")
	if st, err := os.Stat(shot); err != nil || st.Size() < 1000 {
		t.Fatalf("no screenshot: %v", err)
	}

	// The DC goes away: not ready, naming the DC; it comes back: ready.
	t.Log("DC down")
	proxy.Down()
	r = in.WaitReady(503)
	if f := r.Critical(); len(f) == 0 || !strings.Contains(strings.Join(f, ","), "dc") {
		t.Errorf("not ready, but the critical checks are %v", f)
	}
	proxy.Up()
	in.WaitReady(200)
	t.Log("DC back; queue down")

	// The queue goes away and comes back.
	ctx := context.Background()
	if err := s.Emu.StopListener(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Emu.DropConnections(ctx); err != nil {
		t.Fatal(err)
	}
	r = in.WaitReady(503)
	if f := r.Critical(); !strings.Contains(strings.Join(f, ","), "queue") {
		t.Errorf("queue down, but the critical checks are %v", f)
	}
	t.Log("queue not ready")
	if err := s.Emu.StartListener(ctx); err != nil {
		t.Fatal(err)
	}
	in.WaitReady(200)
	t.Log("queue back")
	// And the connector works again. (A fresh sender, the first one
	// closed: its dropped reply link is not this test's subject, and
	// results go to the one configured reply queue, which it must not
	// compete for.)
	if err := c.Close(ctx); err != nil {
		t.Logf("closing the first sender: %v", err)
	}
	res = s.Sender().Do(sender.Request{Op: protocol.OpCheck, User: sam(u), NewPassword: s.Secret("Ops!After.Outage2")})
	if res.Code != protocol.CodeSucceeded {
		t.Fatalf("after the outages: %+v", res.Result)
	}
}
