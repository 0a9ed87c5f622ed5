package engine

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/adwriteback/adwriteback/relay/transport"
)

// rejectedMetrics counts Rejected by reason.
type rejectedMetrics struct {
	noMetrics
	mu     sync.Mutex
	counts map[string]int
}

func (m *rejectedMetrics) Rejected(reason string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.counts[reason]++
}

func (m *rejectedMetrics) count(reason string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.counts[reason]
}

// TestUndeliverableResultIsDeadLetteredAtMaxAttempts: a result that
// cannot be delivered leaves its command abandoned (it comes back) until
// the delivery count reaches MaxAttempts; then the command is
// dead-lettered result_undeliverable, once, whichever way it was
// answered: decided now, from the journal, or a refusal never journaled.
// The journal keeps the signed result; the audit record and the metric
// say what happened.
func TestUndeliverableResultIsDeadLetteredAtMaxAttempts(t *testing.T) {
	down := errors.New("reply queue not found")
	for _, tc := range []struct {
		name  string
		later bool // the connector's clock is past the command's expiry
		first bool // delivered once (and answered) before the reply queue went
	}{
		{name: "decided now"},
		{name: "answered from the journal", first: true},
		{name: "refusal never journaled", later: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &rejectedMetrics{counts: map[string]int{}}
			r := newRig(t, func(c *Config, _ *Domain) {
				c.Metrics = m
				if tc.later {
					c.Clock = clockwork.NewFakeClockAt(time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC))
					c.Receiver.Clock = c.Clock
				}
			})
			d := r.build(reset("alice", goodPw))
			d.DeliveryCount = 0
			if tc.first {
				d.DeliveryCount = 1
				wantAction(t, r.handle(d), transport.Complete())
			}
			r.rep.fail = down
			for n := d.DeliveryCount + 1; n < r.eng.cfg.MaxAttempts; n++ {
				d.DeliveryCount = n
				wantAction(t, r.handle(d), transport.Abandon())
			}
			d.DeliveryCount = r.eng.cfg.MaxAttempts
			disp := r.handle(d)
			wantAction(t, disp, transport.DeadLetter("x", "y"))
			if disp.Reason != ReasonUndeliverable || strings.Contains(disp.Description, goodPw) {
				t.Fatalf("dead-letter %q: %q", disp.Reason, disp.Description)
			}
			if n := m.count(ReasonUndeliverable); n != 1 {
				t.Fatalf("metric counted %d, want 1", n)
			}
			if !tc.later {
				ent, err := r.jr.Get(context.Background(), d.MessageID)
				if err != nil || len(ent.Result) == 0 {
					t.Fatalf("the journal lost the signed result: %+v, %v", ent, err)
				}
			}
			audit := r.auditB.String()
			if !strings.Contains(audit, `"settlement":"dead_lettered"`) || !strings.Contains(audit, "result undeliverable after") {
				t.Fatalf("audit record does not say the result was undeliverable: %s", audit)
			}
			if n := r.dir.writeCount(); n > 1 || tc.later && n != 0 {
				t.Fatalf("%d writes", n)
			}
			r.noLeak(goodPw)
		})
	}
}
