package servicebus

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
)

// fakeReplies is a reply queue link: ReceiveMessages hands out what was pushed.
type fakeReplies struct {
	in chan *azservicebus.ReceivedMessage

	mu                   sync.Mutex
	completed, abandoned []*azservicebus.ReceivedMessage
}

func (f *fakeReplies) push(corr, body string) *azservicebus.ReceivedMessage {
	m := &azservicebus.ReceivedMessage{Body: []byte(body)}
	if corr != "" {
		m.CorrelationID = &corr
	}
	f.in <- m
	return m
}

func (f *fakeReplies) ReceiveMessages(ctx context.Context, n int, _ *azservicebus.ReceiveMessagesOptions) ([]*azservicebus.ReceivedMessage, error) {
	select {
	case m := <-f.in:
		return []*azservicebus.ReceivedMessage{m}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (f *fakeReplies) CompleteMessage(_ context.Context, m *azservicebus.ReceivedMessage, _ *azservicebus.CompleteMessageOptions) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.completed = append(f.completed, m)
	return nil
}

func (f *fakeReplies) AbandonMessage(_ context.Context, m *azservicebus.ReceivedMessage, _ *azservicebus.AbandonMessageOptions) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.abandoned = append(f.abandoned, m)
	return nil
}

func (f *fakeReplies) Close(context.Context) error { return nil }

func (f *fakeReplies) settled() (completed, abandoned []*azservicebus.ReceivedMessage) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*azservicebus.ReceivedMessage(nil), f.completed...), append([]*azservicebus.ReceivedMessage(nil), f.abandoned...)
}

func newFakeCommandSender(maxPending int) (*CommandSender, *fakeReplies) {
	f := &fakeReplies{in: make(chan *azservicebus.ReceivedMessage, 16)}
	life, stop := context.WithCancel(context.Background())
	cs := &CommandSender{cfg: CommandSenderConfig{ReplyQueue: "results", MaxPending: maxPending}, rcv: f,
		results: map[string]pendingResult{}, delivered: map[string]struct{}{}, life: life, stopLife: stop}
	return cs, f
}

func TestCommandSenderSettlesOnlyDeliveredResults(t *testing.T) {
	cs, f := newFakeCommandSender(2)
	defer cs.stopLife()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	other := f.push("other", "r-other") // nobody awaits it yet
	mine := f.push("mine", "r-mine")
	res, err := cs.AwaitResult(ctx, "mine")
	if err != nil || string(res.Body) != "r-mine" || res.ID != "mine" {
		t.Fatalf("await mine: %+v %v", res, err)
	}
	waitUntil(t, "completion of the delivered result", func() bool { c, _ := f.settled(); return len(c) == 1 })
	if c, a := f.settled(); c[0] != mine || len(a) != 0 {
		t.Fatalf("settled %v / %v: only the delivered result may be completed", c, a)
	}

	// Receiving for "last" pulls through: a duplicate of the delivered "mine" (completed and
	// dropped), a message without a correlation id (completed), and a redelivery of the held
	// "other" (kept in place of the older copy, which is released).
	dupMine := f.push("mine", "r-mine")
	noCorr := f.push("", "no correlation id")
	other2 := f.push("other", "r-other")
	last := f.push("last", "r-last")
	if res, err := cs.AwaitResult(ctx, "last"); err != nil || string(res.Body) != "r-last" {
		t.Fatalf("await last: %+v %v", res, err)
	}
	waitUntil(t, "settlements", func() bool { c, a := f.settled(); return len(c) == 4 && len(a) == 1 })
	c, a := f.settled()
	if !sameSet(c, mine, dupMine, noCorr, last) || a[0] != other {
		t.Fatalf("completed %v abandoned %v", c, a)
	}
	res, err = cs.AwaitResult(ctx, "other")
	if err != nil || string(res.Body) != "r-other" {
		t.Fatalf("await other: %+v %v", res, err)
	}
	waitUntil(t, "completion of other", func() bool { c, _ := f.settled(); return len(c) == 5 })
	if c, _ := f.settled(); c[4] != other2 {
		t.Fatalf("the newest copy of other must be completed: %v", c)
	}

	// MaxPending 2: beyond two held results, the oldest go back to the queue (a, then b when
	// d arrives; d is then handed out)
	a1, b1, _ := f.push("a", "1"), f.push("b", "2"), f.push("c", "3")
	f.push("d", "4")
	if _, err := cs.AwaitResult(ctx, "d"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "eviction", func() bool { _, a := f.settled(); return len(a) == 3 })
	if _, a := f.settled(); !sameSet(a[1:], a1, b1) {
		t.Fatalf("evicted %v, want the oldest two", a[1:])
	}
	// Close returns what is still held to the queue
	cs.closeHeld(context.Background())
	if _, a := f.settled(); len(a) != 4 {
		t.Fatalf("held results not released on close: %d abandoned", len(a))
	}
}

func sameSet(got []*azservicebus.ReceivedMessage, want ...*azservicebus.ReceivedMessage) bool {
	if len(got) != len(want) {
		return false
	}
	seen := map[*azservicebus.ReceivedMessage]bool{}
	for _, m := range got {
		seen[m] = true
	}
	for _, m := range want {
		if !seen[m] {
			return false
		}
	}
	return true
}

// TestNoSettlementStartsAfterClose: a result handed out while Close waits
// (AwaitResult does not hold the receive lock then) starts no settlement
// beside the wait; its message returns by lock expiry.
func TestNoSettlementStartsAfterClose(t *testing.T) {
	cs, f := newFakeCommandSender(2)
	cs.closeHeld(context.Background())
	m := &azservicebus.ReceivedMessage{}
	cs.settleAsync(f, m, true)
	cs.settling.Wait()
	if c, a := f.settled(); len(c)+len(a) != 0 {
		t.Fatalf("settled after close: %d completed, %d abandoned", len(c), len(a))
	}
}
