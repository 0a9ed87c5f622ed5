//go:build integration

package faults

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	shared "github.com/adwriteback/adwriteback/integration/stack"
	"github.com/adwriteback/adwriteback/integration/testdc"
	"github.com/adwriteback/adwriteback/relay/protocol"
)

// TestLDAPSCertificateBecomesUntrusted puts a switchable proxy in front of
// the DC as the only configured server. After a burst goes through, the
// proxy starts presenting a certificate from an untrusted CA (the DC's
// certificate "changed"). Checked while it does: the commands of a second
// burst are abandoned, also when delivered again (not written, not
// answered, not dead-lettered),
// /readyz is 503 with the DC's check critical and naming the certificate
// problem, and the proxy never completes a TLS handshake nor reads a byte
// of application data (the bind password and the new passwords are never
// sent to it). Once the real certificate is back, every command ends
// written exactly once with a verified result, and /readyz is 200 again.
func TestLDAPSCertificateBecomesUntrusted(t *testing.T) {
	dc := testdc.Ensure(t)
	s := newStack(t, dc, 10*time.Second)
	proxy := newTLSProxy(t, dc.Addr+":636", []string{dc.Host}, []net.IP{net.ParseIP(dc.Addr), net.IPv4(127, 0, 0, 1)})
	dcURL := "ldaps://" + proxy.addr
	s.servers, s.serverName = []string{dcURL}, dc.Addr
	users := s.users(7)
	first := s.burst(users[:3])
	s.start()
	s.check(first)
	// (Ready only now: the queue check reports the receive link as
	// "connecting" until a receive returns, which on an empty queue takes
	// the receive timeout.)
	s.waitReadyz(200)

	proxy.setUntrusted(true)
	t0 := time.Now()
	t.Log("the DC's certificate is now untrusted")
	second := s.burst(users[3:])
	var detail string
	shared.WaitFor(t, time.Minute, "/readyz 503 naming the DC's certificate problem", func() bool {
		code, r, _ := s.readyz()
		c := r.check("dc:" + dcURL)
		if code != http.StatusServiceUnavailable || c == nil || c.OK || c.Severity != "critical" {
			return false
		}
		detail = c.Detail
		return strings.Contains(detail, "tls") && strings.Contains(detail, "certificate")
	})
	t.Logf("/readyz: dc:%s: %s", dcURL, detail)
	// Each command delivered, refused at the DC's certificate and abandoned,
	// and once more after its redelivery.
	shared.WaitFor(t, time.Minute, "every command of the second burst abandoned twice", func() bool {
		abandoned := map[string]int{}
		for _, r := range s.auditRecords() {
			if r.Settlement == "abandoned" {
				abandoned[r.CommandID]++
			}
		}
		for _, j := range second {
			if abandoned[j.id] < 2 {
				return false
			}
		}
		return true
	})
	s.checkUnanswered(second)
	if a, c, n := proxy.attempts.Load(), proxy.completed.Load(), proxy.appBytes.Load(); a == 0 || c != 0 || n != 0 {
		t.Fatalf("untrusted proxy: %d handshakes begun, %d completed, %d application bytes; want >0, 0, 0", a, c, n)
	}

	// Trusted again. The DC is in backoff by now (each failed dial of the
	// concurrent commands counted), so recovery can take up to the pool's
	// maximum backoff (30 s).
	proxy.setUntrusted(false)
	t.Logf("the DC's certificate is trusted again after %s", time.Since(t0))
	s.check(second)
	t.Logf("second burst done after %s", time.Since(t0))
	s.waitReadyz(200)
	if c, n := proxy.completed.Load(), proxy.appBytes.Load(); c != 0 || n != 0 {
		t.Errorf("untrusted proxy: %d handshakes completed, %d application bytes; want none", c, n)
	}
	q, err := s.emu.Queue(context.Background(), queue)
	if err != nil {
		t.Fatal(err)
	}
	if q.DeadLettered != 0 {
		t.Errorf("%d commands dead-lettered", q.DeadLettered)
	}
}

// TestLDAPSUntrustedDCFailover configures two servers: first a proxy with a
// certificate from an untrusted CA, then the real DC. Every command
// succeeds (failover), /readyz stays 200 while its body, and the status
// page, show the untrusted DC failing with a certificate reason; the proxy
// never completes a handshake nor reads application data.
func TestLDAPSUntrustedDCFailover(t *testing.T) {
	dc := testdc.Ensure(t)
	s := newStack(t, dc, 10*time.Second)
	proxy := newTLSProxy(t, dc.Addr+":636", []string{dc.Host}, []net.IP{net.ParseIP(dc.Addr), net.IPv4(127, 0, 0, 1)})
	proxy.setUntrusted(true)
	badURL := "ldaps://" + proxy.addr
	s.servers, s.serverName = []string{badURL, dc.LDAPSURL}, dc.Addr
	users := s.users(4)
	s.start()
	jobs := s.burst(users)
	s.check(jobs)

	var detail string
	shared.WaitFor(t, time.Minute, "/readyz naming the untrusted DC's certificate", func() bool {
		code, r, _ := s.readyz()
		bad, good := r.check("dc:"+badURL), r.check("dc:"+dc.LDAPSURL)
		if code != http.StatusOK || bad == nil || good == nil || bad.OK || !good.OK {
			return false
		}
		detail = bad.Detail
		return strings.Contains(detail, "tls") && strings.Contains(detail, "certificate")
	})
	t.Logf("/readyz: dc:%s: %s", badURL, detail)
	if code, r, body := s.readyz(); code != http.StatusOK || !r.Ready || r.check("dc:"+badURL).Severity != "warning" {
		t.Errorf("/readyz %d: %s", code, body)
	}
	page, err := shared.HTTPGet("http://" + s.httpAddr + "/status")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(page), badURL) || !strings.Contains(string(page), "certificate signed by unknown authority") {
		t.Errorf("/status does not show the untrusted DC's certificate problem:\n%s", page)
	}
	if a, c, n := proxy.attempts.Load(), proxy.completed.Load(), proxy.appBytes.Load(); a == 0 || c != 0 || n != 0 {
		t.Errorf("untrusted proxy: %d handshakes begun, %d completed, %d application bytes; want >0, 0, 0", a, c, n)
	}
}

// checkUnanswered: none of jobs has a result, a write in AD, or an audit
// record other than "abandoned".
func (s *stack) checkUnanswered(jobs []*job) {
	s.t.Helper()
	ids := map[string]bool{}
	for _, j := range jobs {
		ids[j.id] = true
		select {
		case <-j.awaited:
			s.t.Errorf("%s: answered while the DC was untrusted: %+v %v", j.user.SAM, j.result, j.err)
		default:
		}
		if d := pwdVersion(s.t, s.dc, j.user.DN) - j.v0; d != 0 {
			s.t.Errorf("%s: unicodePwd written %d times while the DC was untrusted", j.user.SAM, d)
		}
	}
	for _, r := range s.auditRecords() {
		if ids[r.CommandID] && (r.Settlement != "abandoned" || r.Applied || r.Outcome != string(protocol.CodeTransient)) {
			s.t.Errorf("while the DC was untrusted: %+v", r)
		}
	}
}

// readyReport is the part of /readyz the tests read.
type readyReport struct {
	Ready  bool         `json:"ready"`
	Checks []readyCheck `json:"checks"`
}

type readyCheck struct {
	Name     string `json:"name"`
	OK       bool   `json:"ok"`
	Severity string `json:"severity"`
	Detail   string `json:"detail"`
}

func (r readyReport) check(name string) *readyCheck {
	for i := range r.Checks {
		if r.Checks[i].Name == name {
			return &r.Checks[i]
		}
	}
	return nil
}

// readyz fetches /readyz: status code, parsed report, raw body (code 0 if
// the listener does not answer yet).
func (s *stack) readyz() (int, readyReport, string) {
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + s.httpAddr + "/readyz")
	if err != nil {
		return 0, readyReport{}, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var r readyReport
	_ = json.Unmarshal(b, &r)
	return resp.StatusCode, r, string(b)
}

func (s *stack) waitReadyz(code int) {
	s.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		got, _, body := s.readyz()
		if got == code {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("/readyz stayed %d (want %d): %s", got, code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
