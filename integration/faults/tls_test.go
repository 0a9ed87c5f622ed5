//go:build integration

package faults

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/adwriteback/adwriteback/integration/stack"
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
	proxy := untrustedProxy(t, dc)
	dcURL := "ldaps://" + proxy.Addr()
	s := newWorld(t, dc, 10*time.Second, servers(dc.Addr, dcURL))
	users := s.users(7)
	first := s.burst(users[:3])
	s.a.Start()
	s.check(first)
	// (Ready only now: the queue check reports the receive link as
	// "connecting" until a receive returns, which on an empty queue takes
	// the receive timeout.)
	s.a.WaitReady(200)

	proxy.SetUntrusted(true)
	t0 := time.Now()
	t.Log("the DC's certificate is now untrusted")
	second := s.burst(users[3:])
	var detail string
	stack.WaitFor(t, time.Minute, "/readyz 503 naming the DC's certificate problem", func() bool {
		code, r, _ := s.a.Readyz()
		c := r.Check("dc:" + dcURL)
		if code != http.StatusServiceUnavailable || c == nil || c.OK || c.Severity != "critical" {
			return false
		}
		detail = c.Detail
		return strings.Contains(detail, "tls") && strings.Contains(detail, "certificate")
	})
	t.Logf("/readyz: dc:%s: %s", dcURL, detail)
	// Each command delivered, refused at the DC's certificate and abandoned,
	// and once more after its redelivery.
	stack.WaitFor(t, time.Minute, "every command of the second burst abandoned twice", func() bool {
		abandoned := map[string]int{}
		for _, r := range s.a.AuditRecords() {
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
	if a, c, n := proxy.Untrusted(); a == 0 || c != 0 || n != 0 {
		t.Fatalf("untrusted proxy: %d handshakes begun, %d completed, %d application bytes; want >0, 0, 0", a, c, n)
	}

	// Trusted again. The DC is in backoff by now (each failed dial of the
	// concurrent commands counted), so recovery can take up to the pool's
	// maximum backoff (30 s).
	proxy.SetUntrusted(false)
	t.Logf("the DC's certificate is trusted again after %s", time.Since(t0))
	s.check(second)
	t.Logf("second burst done after %s", time.Since(t0))
	s.a.WaitReady(200)
	if _, c, n := proxy.Untrusted(); c != 0 || n != 0 {
		t.Errorf("untrusted proxy: %d handshakes completed, %d application bytes; want none", c, n)
	}
	q, err := s.Emu.Queue(context.Background(), s.Queue)
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
	proxy := untrustedProxy(t, dc)
	proxy.SetUntrusted(true)
	badURL := "ldaps://" + proxy.Addr()
	s := newWorld(t, dc, 10*time.Second, servers(dc.Addr, badURL, dc.LDAPSURL))
	users := s.users(4)
	s.a.Start()
	jobs := s.burst(users)
	s.check(jobs)

	var detail string
	stack.WaitFor(t, time.Minute, "/readyz naming the untrusted DC's certificate", func() bool {
		code, r, _ := s.a.Readyz()
		bad, good := r.Check("dc:"+badURL), r.Check("dc:"+dc.LDAPSURL)
		if code != http.StatusOK || bad == nil || good == nil || bad.OK || !good.OK {
			return false
		}
		detail = bad.Detail
		return strings.Contains(detail, "tls") && strings.Contains(detail, "certificate")
	})
	t.Logf("/readyz: dc:%s: %s", badURL, detail)
	if code, r, body := s.a.Readyz(); code != http.StatusOK || !r.Ready || r.Check("dc:"+badURL).Severity != "warning" {
		t.Errorf("/readyz %d: %s", code, body)
	}
	page, err := stack.HTTPGet(s.a.URL("/status"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(page), badURL) || !strings.Contains(string(page), "certificate signed by unknown authority") {
		t.Errorf("/status does not show the untrusted DC's certificate problem:\n%s", page)
	}
	if a, c, n := proxy.Untrusted(); a == 0 || c != 0 || n != 0 {
		t.Errorf("untrusted proxy: %d handshakes begun, %d completed, %d application bytes; want >0, 0, 0", a, c, n)
	}
}

// checkUnanswered: none of jobs has a result, a write in AD, or an audit
// record other than "abandoned".
func (s *world) checkUnanswered(jobs []*job) {
	s.t.Helper()
	ids := map[string]bool{}
	for _, j := range jobs {
		ids[j.id] = true
		select {
		case <-j.awaited:
			s.t.Errorf("%s: answered while the DC was untrusted: %+v %v", j.user.SAM, j.result, j.err)
		default:
		}
		if d := testdc.PwdVersion(s.t, s.DC, j.user.DN) - j.v0; d != 0 {
			s.t.Errorf("%s: unicodePwd written %d times while the DC was untrusted", j.user.SAM, d)
		}
	}
	for _, r := range s.a.AuditRecords() {
		if ids[r.CommandID] && (r.Settlement != "abandoned" || r.Applied || r.Outcome != string(protocol.CodeTransient)) {
			s.t.Errorf("while the DC was untrusted: %+v", r)
		}
	}
}

// untrustedProxy is a proxy in front of dc's LDAPS port that can present
// a certificate with the DC's names from a CA nobody trusts.
func untrustedProxy(t *testing.T, dc *testdc.Info) *stack.Proxy {
	return stack.NewProxy(t, dc.Addr+":636", stack.UntrustedCert([]string{dc.Host}, []net.IP{net.ParseIP(dc.Addr), net.IPv4(127, 0, 0, 1)}))
}
