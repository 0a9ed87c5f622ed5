//go:build integration

package servicebus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"github.com/adwriteback/adwriteback/integration/sbemu"
	"github.com/adwriteback/adwriteback/relay/transport"
)

var qseq atomic.Int64

type env struct {
	emu    *sbemu.Emulator
	client *azservicebus.Client
	queue  string
}

func setup(t *testing.T, qo sbemu.QueueOptions) *env {
	t.Helper()
	e := sbemu.Start(t, nil)
	q := fmt.Sprintf("commands%d", qseq.Add(1))
	if err := e.CreateQueue(context.Background(), q, qo); err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(Config{Auth: AuthConnectionString, ConnectionString: e.ConnectionString(),
		RetryOptions: azservicebus.RetryOptions{MaxRetries: 3, RetryDelay: 50 * time.Millisecond, MaxRetryDelay: 500 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return &env{emu: e, client: c, queue: q}
}

func fastConfig(q string) SourceConfig {
	return SourceConfig{
		Queue: q, Prefetch: 4, Concurrency: 4,
		ReceiveTimeout: time.Second, WatchdogGrace: 2 * time.Second, SettleTimeout: 3 * time.Second,
		ShutdownGrace: 5 * time.Second,
		ReconnectBackoff: &backoff.ExponentialBackOff{InitialInterval: 20 * time.Millisecond, RandomizationFactor: 0.5,
			Multiplier: 2, MaxInterval: 200 * time.Millisecond},
		AbandonBackoff: &backoff.ExponentialBackOff{InitialInterval: 10 * time.Millisecond, RandomizationFactor: 0.5,
			Multiplier: 2, MaxInterval: 20 * time.Millisecond},
	}
}

// run starts the source and returns a stop function that waits for Run to return.
func run(t *testing.T, s *Source) func() {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Error("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	waitForOr(t, d, what, cond, func() string { return "" })
}

// waitForOr is waitFor whose failure also says what state says (health,
// queue state: what a flaky run needs to be understood afterwards).
func waitForOr(t *testing.T, d time.Duration, what string, cond func() bool, state func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s%s", what, state())
		}
		<-tick.C
	}
}

func (e *env) send(t *testing.T, id string, body string, replyTo, replySession string) {
	t.Helper()
	cs, err := NewCommandSender(e.client, CommandSenderConfig{Queue: e.queue, ReplyQueue: replyTo, ReplySessionID: replySession})
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cs.SendCommand(ctx, id, []byte(body), ""); err != nil {
		t.Fatal(err)
	}
}

func (e *env) state(t *testing.T) *sbemu.QueueState {
	t.Helper()
	qs, err := e.emu.Queue(context.Background(), e.queue)
	if err != nil {
		t.Fatal(err)
	}
	return qs
}

func TestSourceReceivesCommandsAndReplies(t *testing.T) {
	e := setup(t, sbemu.QueueOptions{LockDuration: 5 * time.Second})
	if err := e.emu.CreateQueue(context.Background(), "results", sbemu.QueueOptions{RequiresSession: true}); err != nil {
		t.Fatal(err)
	}
	replies := NewReplySender(e.client, "results", time.Minute, "application/json")
	defer replies.Close(context.Background())
	var mu sync.Mutex
	got := map[string]*transport.Delivery{}
	s, err := NewSource(e.client, fastConfig(e.queue), transport.HandlerFunc(func(ctx context.Context, d *transport.Delivery) transport.Disposition {
		if err := replies.SendReply(ctx, d, append([]byte("result-of-"), d.Body...)); err != nil {
			t.Errorf("reply: %v", err)
			return transport.Abandon()
		}
		mu.Lock()
		got[d.MessageID] = d
		mu.Unlock()
		return transport.Complete()
	}))
	if err != nil {
		t.Fatal(err)
	}
	run(t, s)

	cs, err := NewCommandSender(e.client, CommandSenderConfig{Queue: e.queue, ReplyQueue: "results", ReplySessionID: "portal-7"})
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := range 5 {
		if err := cs.SendCommand(ctx, fmt.Sprintf("cmd-%d", i), []byte(fmt.Sprintf("body-%d", i)), ""); err != nil {
			t.Fatal(err)
		}
	}
	// await out of order: replies for other ids are kept
	for _, i := range []int{3, 0, 4, 1, 2} {
		res, err := cs.AwaitResult(ctx, fmt.Sprintf("cmd-%d", i))
		if err != nil {
			t.Fatalf("await cmd-%d: %v", i, err)
		}
		if string(res.Body) != fmt.Sprintf("result-of-body-%d", i) || res.ID != fmt.Sprintf("cmd-%d", i) || res.ContentType != "application/json" {
			t.Fatalf("result %+v", res)
		}
	}
	mu.Lock()
	d := got["cmd-2"]
	mu.Unlock()
	if d == nil || d.ReplyTo != "results" || d.ReplyToSessionID != "portal-7" || d.DeliveryCount != 1 || d.EnqueuedTime.IsZero() || d.LockedUntil.IsZero() {
		t.Fatalf("delivery %+v", d)
	}
	waitFor(t, 5*time.Second, "completions", func() bool { return s.Health().Completed == 5 })
	h := s.Health()
	if h.State != LinkUp || h.LastReceive.IsZero() || h.LastMessage.IsZero() || h.Received != 5 {
		t.Fatalf("health %+v", h)
	}
	if qs := e.state(t); qs.Active != 0 || qs.Locked != 0 {
		t.Fatalf("queue not drained: %+v", qs)
	}
}

func TestReplyMessageFields(t *testing.T) {
	e := setup(t, sbemu.QueueOptions{})
	if err := e.emu.CreateQueue(context.Background(), "rs", sbemu.QueueOptions{RequiresSession: true}); err != nil {
		t.Fatal(err)
	}
	if err := e.emu.CreateQueue(context.Background(), "elsewhere", sbemu.QueueOptions{}); err != nil {
		t.Fatal(err)
	}
	rs := NewReplySender(e.client, "rs", 90*time.Second, "")
	defer rs.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	// The message's ReplyTo is not signed: the reply goes to the
	// configured queue, whatever it names.
	if err := rs.SendReply(ctx, &transport.Delivery{MessageID: "c-1", ReplyTo: "elsewhere", ReplyToSessionID: "s-1"}, []byte("r")); err != nil {
		t.Fatal(err)
	}
	if qs, err := e.emu.Queue(ctx, "elsewhere"); err != nil || qs.Active != 0 {
		t.Fatalf("the queue the ReplyTo named: %+v, %v", qs, err)
	}
	sr, err := e.client.AcceptSessionForQueue(ctx, "rs", "s-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sr.Close(context.Background())
	msgs, err := sr.ReceiveMessages(ctx, 1, nil)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("receive reply: %v %d", err, len(msgs))
	}
	m := msgs[0]
	if m.CorrelationID == nil || *m.CorrelationID != "c-1" || m.SessionID == nil || *m.SessionID != "s-1" || m.TimeToLive == nil || *m.TimeToLive != 90*time.Second {
		t.Fatalf("reply fields: corr %v session %v ttl %v", m.CorrelationID, m.SessionID, m.TimeToLive)
	}
	if want := ResultMessageID([]byte("r")); m.MessageID != want || len(want) != 64 {
		t.Fatalf("reply MessageId %q, want %q (hex SHA-256 of the body)", m.MessageID, want)
	}
}

func TestSourceRenewsLockAcrossSlowHandler(t *testing.T) {
	e := setup(t, sbemu.QueueOptions{LockDuration: 500 * time.Millisecond})
	e.send(t, "slow", "x", "", "")
	s, err := NewSource(e.client, fastConfig(e.queue), transport.HandlerFunc(func(ctx context.Context, d *transport.Delivery) transport.Disposition {
		// hold the message for three lock durations; wait on the emulator's view, not a sleep
		until := time.Now().Add(1500 * time.Millisecond)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for time.Now().Before(until) {
			select {
			case <-ctx.Done():
				return transport.Abandon()
			case <-tick.C:
			}
		}
		return transport.Complete()
	}))
	if err != nil {
		t.Fatal(err)
	}
	run(t, s)
	waitFor(t, 10*time.Second, "completion", func() bool { return s.Health().Completed == 1 })
	h := s.Health()
	if h.LockLost != 0 || h.Received != 1 || h.LockRenewals < 2 {
		t.Fatalf("health %+v (a 1.5 s handler on a 0.5 s lock needs at least 2 renewals)", h)
	}
	if qs := e.state(t); qs.Stats.Completed != 1 || qs.Active != 0 {
		t.Fatalf("queue %+v", qs)
	}
}

func TestSourceAbandonRedeliversThenDeadLettersPoison(t *testing.T) {
	e := setup(t, sbemu.QueueOptions{LockDuration: 5 * time.Second, MaxDeliveryCount: 3})
	e.send(t, "retry", "transient", "", "")
	e.send(t, "poison", "bad", "", "")
	var mu sync.Mutex
	counts := map[string][]uint32{}
	s, err := NewSource(e.client, fastConfig(e.queue), transport.HandlerFunc(func(ctx context.Context, d *transport.Delivery) transport.Disposition {
		mu.Lock()
		counts[d.MessageID] = append(counts[d.MessageID], d.DeliveryCount)
		mu.Unlock()
		switch {
		case d.MessageID == "poison":
			return transport.DeadLetter("invalid_command", "signature does not verify\n(key id k1)")
		case d.DeliveryCount < 2:
			return transport.Abandon()
		}
		return transport.Complete()
	}))
	if err != nil {
		t.Fatal(err)
	}
	run(t, s)
	waitFor(t, 10*time.Second, "settlements", func() bool {
		h := s.Health()
		return h.Completed == 1 && h.DeadLettered == 1 && h.Abandoned == 1
	})
	mu.Lock()
	if fmt.Sprint(counts["retry"]) != "[1 2]" || fmt.Sprint(counts["poison"]) != "[1]" {
		t.Fatalf("delivery counts %v", counts)
	}
	mu.Unlock()
	qs := e.state(t)
	if len(qs.DeadLetters) != 1 || qs.DeadLetters[0].MessageID != "poison" || qs.DeadLetters[0].DeadLetterReason != "invalid_command" ||
		qs.DeadLetters[0].DeadLetterDescription != "signature does not verify (key id k1)" {
		t.Fatalf("dead letters %+v", qs.DeadLetters)
	}
}

func TestSourceLockLostIsReportedAndRedelivered(t *testing.T) {
	e := setup(t, sbemu.QueueOptions{LockDuration: 10 * time.Second})
	e.send(t, "c1", "x", "", "")
	release := make(chan struct{})
	var calls atomic.Int32
	s, err := NewSource(e.client, fastConfig(e.queue), transport.HandlerFunc(func(ctx context.Context, d *transport.Delivery) transport.Disposition {
		if calls.Add(1) == 1 {
			<-release // first delivery: the lock is taken away meanwhile
		}
		return transport.Complete()
	}))
	if err != nil {
		t.Fatal(err)
	}
	run(t, s)
	waitFor(t, 10*time.Second, "first delivery", func() bool { return calls.Load() == 1 })
	if n, err := e.emu.ExpireLocks(context.Background(), e.queue); err != nil || n != 1 {
		t.Fatalf("expire locks: %d %v", n, err)
	}
	close(release)
	// Redelivery takes a receive turn and a settle round trip; under a loaded -race run the
	// emulator (Node) can lag, so the deadline is generous and a miss reports the state.
	waitForOr(t, 30*time.Second, "redelivery and completion", func() bool { return s.Health().Completed == 1 }, func() string {
		qs, err := e.emu.Queue(context.Background(), e.queue)
		return fmt.Sprintf(": handler calls %d, health %+v, queue %+v (%v)", calls.Load(), s.Health(), qs, err)
	})
	h := s.Health()
	if h.LockLost != 1 || !errors.Is(h.LastError, ErrLockLost) {
		t.Fatalf("lock lost not reported: %+v", h)
	}
	if calls.Load() != 2 {
		t.Fatalf("handler calls %d, want 2", calls.Load())
	}
}

func TestSourceRecoversFromDroppedConnection(t *testing.T) {
	e := setup(t, sbemu.QueueOptions{LockDuration: 5 * time.Second})
	var mu sync.Mutex
	seen := map[string]int{}
	s, err := NewSource(e.client, fastConfig(e.queue), transport.HandlerFunc(func(ctx context.Context, d *transport.Delivery) transport.Disposition {
		mu.Lock()
		seen[string(d.Body)]++
		mu.Unlock()
		return transport.Complete()
	}))
	if err != nil {
		t.Fatal(err)
	}
	run(t, s)
	e.send(t, "before", "before", "", "")
	waitFor(t, 10*time.Second, "first", func() bool { return s.Health().Completed == 1 })
	for range 2 {
		if _, err := e.emu.DropConnections(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.emu.DetachLinks(context.Background(), e.queue); err != nil {
		t.Fatal(err)
	}
	e.send(t, "after", "after", "", "")
	waitFor(t, 20*time.Second, "message after the drop", func() bool { return s.Health().Completed == 2 })
	mu.Lock()
	defer mu.Unlock()
	if seen["before"] != 1 || seen["after"] != 1 {
		t.Fatalf("seen %v", seen)
	}
	if qs := e.state(t); qs.Active != 0 || qs.Locked != 0 || len(qs.DeadLetters) != 0 {
		t.Fatalf("queue %+v", qs)
	}
}

func TestSourceWrongKeyIsUnauthorized(t *testing.T) {
	e := setup(t, sbemu.QueueOptions{})
	c, err := NewClient(Config{Auth: AuthConnectionString, ConnectionString: e.emu.ConnectionStringWithKey("bm90LXRoZS1rZXk="),
		RetryOptions: azservicebus.RetryOptions{MaxRetries: 1, RetryDelay: 10 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	s, err := NewSource(c, fastConfig(e.queue), transport.HandlerFunc(func(ctx context.Context, d *transport.Delivery) transport.Disposition { return transport.Complete() }))
	if err != nil {
		t.Fatal(err)
	}
	run(t, s)
	waitFor(t, 10*time.Second, "unauthorized", func() bool { return errors.Is(s.Health().LastError, ErrUnauthorized) })
	if h := s.Health(); h.State != LinkDown {
		t.Fatalf("state %v", h.State)
	}
	cs, err := NewCommandSender(c, CommandSenderConfig{Queue: e.queue})
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cs.SendCommand(ctx, "x", []byte("x"), ""); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("send with wrong key: %v", err)
	}
}

func TestSourceShutdownAbandonsNothingAndReturns(t *testing.T) {
	e := setup(t, sbemu.QueueOptions{LockDuration: 5 * time.Second})
	e.send(t, "inflight", "x", "", "")
	started := make(chan struct{})
	s, err := NewSource(e.client, fastConfig(e.queue), transport.HandlerFunc(func(ctx context.Context, d *transport.Delivery) transport.Disposition {
		close(started)
		<-ctx.Done() // only returns when the shutdown grace ends
		return transport.Abandon()
	}))
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.cfg
	cfg.ShutdownGrace = 200 * time.Millisecond
	s.cfg = cfg
	stop := run(t, s)
	<-started
	stop()
	if h := s.Health(); h.State != LinkStopped || h.Abandoned != 1 || h.InFlight != 0 {
		t.Fatalf("after shutdown %+v", h)
	}
	if qs := e.state(t); qs.Active != 1 || qs.Locked != 0 {
		t.Fatalf("message not returned on shutdown: %+v", qs)
	}
}
