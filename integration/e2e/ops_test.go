//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/adwriteback/adwriteback/connector/app"
	"github.com/adwriteback/adwriteback/integration/browser"
	"github.com/adwriteback/adwriteback/integration/sbemu"
	"github.com/adwriteback/adwriteback/integration/testdc"
	"github.com/adwriteback/adwriteback/relay/protocol"
	"github.com/adwriteback/adwriteback/relay/sender"
)

// switchProxy forwards a fixed loopback port to a target; Down closes the
// listener and every connection (to the connector, the DC is gone), Up
// listens again on the same port.
type switchProxy struct {
	t      *testing.T
	addr   string
	target string
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
}

func newSwitchProxy(t *testing.T, target string) *switchProxy {
	p := &switchProxy{t: t, target: target}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.Down)
	return p
}

func (p *switchProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go func() { io.Copy(s, c); s.Close() }()
			go func() { io.Copy(c, s); c.Close() }()
		}
	}()
}

func (p *switchProxy) Down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *switchProxy) Up() {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatal(err)
	}
	p.serve(ln)
}

type readyReport struct {
	Ready  bool   `json:"ready"`
	Status string `json:"status"`
	Checks []struct {
		Name     string `json:"name"`
		OK       bool   `json:"ok"`
		Severity string `json:"severity"`
		Detail   string `json:"detail"`
	} `json:"checks"`
}

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

// waitReady polls /readyz until its status code is want, and returns the
// report.
func waitReady(t *testing.T, base string, want int) readyReport {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		code, body := get(t, base+"/readyz")
		var r readyReport
		_ = json.Unmarshal([]byte(body), &r)
		if code == want {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz stayed %d (want %d): %s", code, want, body)
		}
		<-tick.C
	}
}

func failing(r readyReport) []string {
	var out []string
	for _, c := range r.Checks {
		if c.Severity == "critical" {
			out = append(out, c.Name)
		}
	}
	return out
}

// TestReadinessMetricsAndStatusPage runs a connector whose DC sits behind a
// switchable proxy: /readyz follows the DC and the queue going away and
// coming back, /metrics counts real traffic, and /status shows it, checked
// in headless Chromium with a screenshot left in integration/artifacts.
func TestReadinessMetricsAndStatusPage(t *testing.T) {
	s := newStack(t)
	proxy := newSwitchProxy(t, s.dc.Addr+":636")
	cfg := s.config("ops")
	cfg.Servers, cfg.ServerName = []string{"ldaps://" + proxy.addr}, s.dc.Addr
	in := s.startSpec("ops", cfg, app.Deps{ProbeInterval: 200 * time.Millisecond, Version: "e2e"})
	base := "http://" + in.app.HTTPAddr()

	if code, body := get(t, base+"/livez"); code != 200 {
		t.Fatalf("/livez %d %s", code, body)
	}
	r := waitReady(t, base, 200)
	if !r.Ready {
		t.Fatalf("ready report %+v", r)
	}

	// Real traffic moves the metrics.
	u := testdc.NewUser(t, s.dc, "")
	c := s.client()
	res := s.do(c, sender.Request{Op: protocol.OpReset, User: sam(u), NewPassword: s.secret("Ops!Metrics.Pass1")})
	if res.Code != protocol.CodeSucceeded {
		t.Fatalf("%+v", res.Result)
	}
	bad := s.do(c, sender.Request{Op: protocol.OpReset, User: sam(u), NewPassword: s.secret("short")})
	if bad.Code != protocol.CodePolicyViolation {
		t.Fatalf("%+v", bad.Result)
	}
	_, metrics := get(t, base+"/metrics")
	for _, want := range []string{
		`adwriteback_commands_total{op="reset",outcome="succeeded"} 1`,
		`adwriteback_commands_total{op="reset",outcome="policy_violation"} 1`,
		`adwriteback_violations_total{rule="min_length"} 1`,
		`adwriteback_ldap_operation_duration_seconds_count{dc="ldaps://` + proxy.addr + `",op="reset"} 1`,
		`adwriteback_queue_receive_lag_seconds_count 2`,
		`adwriteback_ldap_dc_up{dc="ldaps://` + proxy.addr + `",domain="adw.test"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(metrics, "Ops!Metrics.Pass1") {
		t.Fatal("a password in /metrics")
	}
	s.results.Write([]byte(metrics))

	// The status page, in a real browser, from this running connector.
	bin := browser.Chromium(t)
	dom := string(browser.Run(t, bin, "--dump-dom", base+"/status"))
	for _, want := range []string{res.CommandID, bad.CommandID, u.DN, "policy_violation", "min_length", "succeeded"} {
		if !strings.Contains(dom, want) {
			t.Errorf("/status lacks %q", want)
		}
	}
	s.results.Write([]byte(dom))
	shot := filepath.Join(browser.Artifacts(t), "status-live.png")
	os.Remove(shot)
	browser.Run(t, bin, "--screenshot="+shot, base+"/status")
	if st, err := os.Stat(shot); err != nil || st.Size() < 1000 {
		t.Fatalf("no screenshot: %v", err)
	}

	// The DC goes away: not ready, naming the DC; it comes back: ready.
	t.Log("DC down")
	proxy.Down()
	r = waitReady(t, base, 503)
	if f := failing(r); len(f) == 0 || !strings.Contains(strings.Join(f, ","), "dc") {
		t.Errorf("not ready, but the critical checks are %v", f)
	}
	proxy.Up()
	waitReady(t, base, 200)
	t.Log("DC back; queue down")

	// The queue goes away and comes back.
	ctx := context.Background()
	if err := s.emu.StopListener(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.emu.DropConnections(ctx); err != nil {
		t.Fatal(err)
	}
	r = waitReady(t, base, 503)
	if f := failing(r); !strings.Contains(strings.Join(f, ","), "queue") {
		t.Errorf("queue down, but the critical checks are %v", f)
	}
	t.Log("queue not ready")
	if err := s.emu.StartListener(ctx); err != nil {
		t.Fatal(err)
	}
	waitReady(t, base, 200)
	t.Log("queue back")
	// And the connector works again. (A fresh sender on its own reply
	// queue: the first sender's dropped reply link is not this test's
	// subject.)
	if err := s.emu.CreateQueue(ctx, "replies-after", sbemu.QueueOptions{}); err != nil {
		t.Fatal(err)
	}
	res = s.do(s.clientOn("replies-after"), sender.Request{Op: protocol.OpCheck, User: sam(u), NewPassword: s.secret("Ops!After.Outage2")})
	if res.Code != protocol.CodeSucceeded {
		t.Fatalf("after the outages: %+v", res.Result)
	}
}
