package engine

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/adwriteback/adwriteback/relay/protocol"
	"github.com/adwriteback/adwriteback/relay/transport"
)

// deliveryLog keeps what Deliveries was told.
type deliveryLog struct {
	mu   sync.Mutex
	seen []string // outcome, or outcome+" failed"
}

func (l *deliveryLog) Delivered(outcome string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		outcome += " failed"
	}
	l.seen = append(l.seen, outcome)
}

// TestDeliveriesSeeEveryAttempt: a result decided now and one answered
// from the journal are each reported to Deliveries, failed or delivered,
// with the outcome the result carries; the decided count (Metrics.Command)
// counts the decision once.
func TestDeliveriesSeeEveryAttempt(t *testing.T) {
	l := &deliveryLog{}
	m := &commandCount{}
	r := newRig(t, func(c *Config, _ *Domain) { c.Deliveries, c.Metrics = l, m })
	r.rep.fail = errors.New("reply queue down")
	d := r.build(reset("alice", goodPw))
	wantAction(t, r.handle(d), transport.Abandon())
	r.rep.fail = nil
	d.DeliveryCount = 2
	wantAction(t, r.handle(d), transport.Complete())
	ok := string(protocol.CodeSucceeded)
	want := []string{ok + " failed", ok}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.seen) != len(want) || l.seen[0] != want[0] || l.seen[1] != want[1] {
		t.Fatalf("deliveries %q, want %q", l.seen, want)
	}
	if n := m.n(); n != 1 {
		t.Fatalf("decided %d times, want 1", n)
	}
}

type commandCount struct {
	noMetrics
	mu    sync.Mutex
	count int
}

func (c *commandCount) Command(string, string, time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.count++
}

func (c *commandCount) n() int { c.mu.Lock(); defer c.mu.Unlock(); return c.count }
