//go:build integration

// Result delivery and backup DCs as the on-call operator sees them.

package oncall

import (
	"context"
	"html"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/adwriteback/adwriteback/integration/stack"
	"github.com/adwriteback/adwriteback/relay/protocol"
	"github.com/adwriteback/adwriteback/relay/sender"
)

// TestOnCallBackupDCDown: a connector configured with the test DC and a
// backup DC on a closed port. Before any command is sent (so none could
// have failed over to find it), the backup is reported down: a warning
// on /readyz (the connector stays ready, degraded), not OK on /status,
// adwriteback_ldap_dc_up 0. The DC's missing policy hints (Samba) are a
// fact of the environment: info, logged once, not what degrades it.
func TestOnCallBackupDCDown(t *testing.T) {
	s := stack.New(t)
	backup := "ldaps://" + stack.FreeAddr(t) // nothing listens there
	a := s.Start("a", stack.Configure(func(c *stack.ConfigSpec) { c.Servers = append(c.Servers, backup) }))
	primary := a.Setup().Spec.Servers[0]
	a.WaitReady(http.StatusOK)

	var r stack.Readiness
	var metrics, page string
	stack.WaitFor(t, 30*time.Second, "the backup DC reported down on /readyz, /status and /metrics", func() bool {
		_, r, _ = a.Readyz()
		b, _ := stack.HTTPGet(a.URL("/metrics"))
		metrics = string(b)
		b, _ = stack.HTTPGet(a.URL("/status"))
		page = string(b)
		c := r.Check("dc:" + backup)
		return c != nil && c.Severity == "warning" && strings.HasPrefix(c.Detail, "down") &&
			strings.Contains(metrics, delivDCUp(backup, 0)) && delivStatusState(page, "dc:"+backup) == "Warning"
	})
	if !r.Ready || r.Status != "degraded" {
		t.Errorf("/readyz %s (ready %v) with the primary up and the backup down; want degraded: %+v", r.Status, r.Ready, r.Checks)
	}
	if c := r.Check("dc:" + primary); c == nil || !c.OK {
		t.Errorf("/readyz: the primary %s is not up: %+v", primary, c)
	}
	if !strings.Contains(metrics, delivDCUp(primary, 1)) {
		t.Errorf("/metrics: the primary %s is not up:\n%s", primary, delivGrep(metrics, "ldap_dc_up"))
	}
	if n := a.AuditCount(); n != 0 {
		t.Errorf("%d audit records: the backup must be found down before any command", n)
	}
	c := r.Check("policy_hints:adw.test")
	if c == nil {
		t.Fatalf("/readyz has no policy_hints check: %+v", r.Checks)
	}
	t.Logf("policy hints: %s: %s", c.Severity, c.Detail)
	if strings.Contains(c.Detail, "not offered") {
		if c.Severity != "info" || !c.OK {
			t.Errorf("policy hints not offered is %q (ok %v), want info: a fact, not a fault", c.Severity, c.OK)
		}
		if got := delivStatusState(page, "policy_hints:adw.test"); got != "Info" {
			t.Errorf("/status shows the policy-hints fact as %q, want Info", got)
		}
		if n := strings.Count(a.Logs(), "do not offer the policy-hints control"); n != 1 {
			t.Errorf("the policy-hints fact was logged %d times, want once", n)
		}
	}
	if !strings.Contains(metrics, `adwriteback_tls_certificate_expiry_days{dc="`+primary+`",listener=""}`) {
		t.Errorf("/metrics: no certificate days left for %s:\n%s", primary, delivGrep(metrics, "tls_certificate_expiry_days"))
	}
}

// entityDisabled is the AMQP condition Service Bus rejects a send to a
// send-disabled entity with; the emulator's RefuseSends fault uses it.
const entityDisabled = "com.microsoft:entity-disabled"

// TestOnCallResultsUndeliverable: with results.undeliverable_after 2s,
// a reply queue that refuses every result (the emulator rejects each
// send to it, as Service Bus does when the queue's sending is disabled)
// turns /readyz 503, naming results, within that time of the first failed
// delivery; meanwhile the delivered counter lags the decided one and the
// failures are counted. Once the queue takes results again, /readyz is 200.
func TestOnCallResultsUndeliverable(t *testing.T) {
	const after = 2 * time.Second
	s := stack.New(t)
	a := s.Start("a", stack.Configure(func(c *stack.ConfigSpec) { c.UndeliverableAfter = after }))
	a.WaitReady(http.StatusOK)
	snd := s.Sender()
	nobody := func(pw string) sender.Request { // decided without a write: user_not_found
		return sender.Request{Op: protocol.OpReset, User: protocol.UserRef{SAM: "oncall-nobody"}, NewPassword: s.Secret(pw),
			Actor: protocol.Actor{Kind: protocol.ActorAdmin, ID: "oncall"}}
	}

	refuse := func(on bool) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Emu.RefuseSends(ctx, s.Replies, on); err != nil {
			t.Fatalf("refuse sends to the reply queue %s (%v): %v", s.Replies, on, err)
		}
	}
	refuse(true)
	if _, err := snd.Client.Send(context.Background(), nobody("OnCall!Blocked.Queue1")); err != nil {
		t.Fatal(err)
	}
	var firstFailure time.Time
	stack.WaitFor(t, 30*time.Second, "a failed delivery counted", func() bool {
		firstFailure = time.Now()
		return delivCounter(t, a, "adwriteback_result_delivery_failures_total{channel=\"reply_queue\"}") >= 1
	})
	var r stack.Readiness
	var code int
	stack.WaitFor(t, after+5*time.Second, "/readyz 503 naming results", func() bool {
		code, r, _ = a.Readyz()
		c := r.Check("results")
		return code == http.StatusServiceUnavailable && c != nil && c.Severity == "critical"
	})
	if waited := time.Since(firstFailure); waited > after+5*time.Second {
		t.Errorf("/readyz turned 503 %s after the first failure, undeliverable_after is %s", waited, after)
	}
	if c := r.Check("results"); !strings.Contains(c.Detail, "undeliverable_after") || !strings.Contains(c.Detail, entityDisabled) {
		t.Errorf("results check detail %q: want the setting and the last error", c.Detail)
	}
	if crit := r.Critical(); len(crit) != 1 || crit[0] != "results" {
		t.Errorf("critical checks %v, want results only", crit)
	}
	decided := delivCounter(t, a, "adwriteback_commands_total")
	delivered := delivCounter(t, a, "adwriteback_results_delivered_total")
	if decided < 1 || delivered >= decided {
		t.Errorf("decided %v, delivered %v: delivered must lag decided while results cannot get out", decided, delivered)
	}

	if qs, err := s.Emu.Queue(context.Background(), s.Replies); err != nil || qs.Stats.Refused < 1 {
		t.Errorf("the emulator refused no send to the reply queue: %+v, %v", qs, err)
	}

	refuse(false)
	snd.Do(nobody("OnCall!Open.Queue2"))
	back := a.WaitReady(http.StatusOK)
	if c := back.Check("results"); c == nil || c.Severity != "ok" {
		t.Errorf("results check after delivery resumed: %+v", c)
	}
	if d := delivCounter(t, a, "adwriteback_results_delivered_total"); d < delivered+1 {
		t.Errorf("delivered %v after a result got out, was %v", d, delivered)
	}
}

// delivCounter sums the samples of the series in /metrics whose name (with
// labels, if given) starts with series.
func delivCounter(t *testing.T, a *stack.Connector, series string) float64 {
	t.Helper()
	b, err := stack.HTTPGet(a.URL("/metrics"))
	if err != nil {
		t.Fatalf("/metrics: %v", err)
	}
	var sum float64
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(l, series) || strings.HasPrefix(l, "#") {
			continue
		}
		rest := l[len(series):]
		if rest[0] != ' ' && rest[0] != '{' && !strings.HasSuffix(series, "}") {
			continue // another metric whose name starts with series
		}
		v, err := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("/metrics line %q: %v", l, err)
		}
		sum += v
	}
	return sum
}

func delivDCUp(dc string, v int) string {
	return `adwriteback_ldap_dc_up{dc="` + dc + `",domain="adw.test"} ` + strconv.Itoa(v)
}

// delivStatusState is the State column of the /status row of the check name.
func delivStatusState(page, name string) string {
	re := regexp.MustCompile(`<code>` + regexp.QuoteMeta(html.EscapeString(name)) +
		`</code></td><td data-label="State"><span class="state">([^<]*)</span>`)
	if m := re.FindStringSubmatch(page); m != nil {
		return m[1]
	}
	return "(no row)"
}

func delivGrep(text, word string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, word) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
