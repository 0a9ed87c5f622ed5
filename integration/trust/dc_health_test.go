//go:build integration

package trust

import (
	"html"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/adwriteback/adwriteback/integration/stack"
)

// TestTrustDCHealthNeverContacted (issue 14, closed by issue 17): a
// connector configured with the Samba DC and a second DC on another
// loopback address where nothing listens. The second is never needed for
// work, but it must not be reported healthy: /readyz, /status and the
// DC-up metric show it down (a probe found the port closed) and the real
// DC up, and the connector is ready because one DC of the domain is.
func TestTrustDCHealthNeverContacted(t *testing.T) {
	s := stack.New(t)
	dead := "ldaps://" + net.JoinHostPort(beside(s.DC, 40), "636")
	in := s.Start("a", stack.Configure(func(c *stack.ConfigSpec) { c.Servers = append(c.Servers, dead) }))
	live := in.Setup().Spec.Servers[0]
	in.WaitReady(200)

	var r stack.Readiness
	var metrics, page string
	downEverywhere := func() bool {
		_, r, _ = in.Readyz()
		b, _ := stack.HTTPGet(in.URL("/metrics"))
		metrics = string(b)
		b, _ = stack.HTTPGet(in.URL("/status"))
		page = string(b)
		c := r.Check("dc:" + dead)
		return c != nil && !c.OK && strings.Contains(metrics, dcUp(dead, 0)) && statusState(page, dead) != "OK"
	}
	if !stack.Eventually(30*time.Second, downEverywhere) {
		t.Errorf("%s (nothing listens) is not reported down everywhere:\n/readyz %s: %+v\n/metrics: %s\n/status row: %s",
			dead, r.Status, r.Check("dc:"+dead), grep(metrics, "ldap_dc_up"), statusState(page, dead))
	}
	if c := r.Check("dc:" + dead); c != nil && !strings.HasPrefix(c.Detail, "down") {
		t.Errorf("/readyz detail of %s: %q, want it to say down", dead, c.Detail)
	}
	if c := r.Check("dc:" + live); c == nil || !c.OK {
		t.Errorf("/readyz: %s (the Samba DC) not up: %+v", live, c)
	}
	if !strings.Contains(metrics, dcUp(live, 1)) {
		t.Errorf("/metrics: %s (the Samba DC) not up:\n%s", live, grep(metrics, "ldap_dc_up"))
	}
	if got := statusState(page, live); got != "OK" {
		t.Errorf("/status: %s (the Samba DC) is %q, want OK", live, got)
	}
	if !r.Ready {
		t.Errorf("/readyz not ready with one DC of the domain up: %v", r.Critical())
	}
}

func dcUp(dc string, v int) string {
	return `adwriteback_ldap_dc_up{dc="` + dc + `",domain="adw.test"} ` + map[int]string{0: "0", 1: "1"}[v]
}

// statusState is the State column of the /status row of dc's check.
func statusState(page, dc string) string {
	re := regexp.MustCompile(`<code>dc:` + regexp.QuoteMeta(html.EscapeString(dc)) +
		`</code></td><td data-label="State"><span class="state">([^<]*)</span>`)
	if m := re.FindStringSubmatch(page); m != nil {
		return m[1]
	}
	return "(no row)"
}

func grep(text, word string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, word) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
