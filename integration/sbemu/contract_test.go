//go:build integration

package sbemu_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/Azure/go-amqp"

	"github.com/adwriteback/adwriteback/integration/sbemu"
	"github.com/adwriteback/adwriteback/integration/stack"
)

// The contract suite drives the emulator with the unmodified azservicebus SDK through each
// behaviour the project relies on. One emulator serves the whole suite; each test uses its own
// queues.

var queueSeq atomic.Int64

func newQueue(t *testing.T, e *sbemu.Emulator, o sbemu.QueueOptions) string {
	t.Helper()
	name := fmt.Sprintf("q%d", queueSeq.Add(1))
	if err := e.CreateQueue(context.Background(), name, o); err != nil {
		t.Fatalf("create queue: %v", err)
	}
	return name
}

func newClient(t *testing.T, cs string) *azservicebus.Client {
	t.Helper()
	c, err := azservicebus.NewClientFromConnectionString(cs, &azservicebus.ClientOptions{
		RetryOptions: azservicebus.RetryOptions{MaxRetries: 3, RetryDelay: 50 * time.Millisecond, MaxRetryDelay: 500 * time.Millisecond},
	})
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func send(t *testing.T, c *azservicebus.Client, queue string, msgs ...*azservicebus.Message) {
	t.Helper()
	s, err := c.NewSender(queue, nil)
	if err != nil {
		t.Fatalf("sender: %v", err)
	}
	defer s.Close(context.Background())
	for _, m := range msgs {
		if err := s.SendMessage(ctxT(t, 10*time.Second), m, nil); err != nil {
			t.Fatalf("send: %v", err)
		}
	}
}

func receiveOne(t *testing.T, r interface {
	ReceiveMessages(context.Context, int, *azservicebus.ReceiveMessagesOptions) ([]*azservicebus.ReceivedMessage, error)
}) *azservicebus.ReceivedMessage {
	t.Helper()
	ctx := ctxT(t, 10*time.Second)
	// After a link or connection failure the SDK's ReceiveMessages returns no messages and no
	// error once (it recovers on the next call), so ask again until the deadline.
	for {
		msgs, err := r.ReceiveMessages(ctx, 1, nil)
		if err != nil {
			t.Fatalf("receive: %v", err)
		}
		if len(msgs) == 1 {
			return msgs[0]
		}
		if len(msgs) > 1 {
			t.Fatalf("receive: got %d messages, want 1", len(msgs))
		}
	}
}

func code(err error) azservicebus.Code {
	var sbErr *azservicebus.Error
	if errors.As(err, &sbErr) {
		return sbErr.Code
	}
	return ""
}

func queueState(t *testing.T, e *sbemu.Emulator, q string) *sbemu.QueueState {
	t.Helper()
	qs, err := e.Queue(context.Background(), q)
	if err != nil {
		t.Fatalf("queue state: %v", err)
	}
	return qs
}

// emu is shared by the suite: started once in TestMain.
var emu *sbemu.Emulator

func emulator(t *testing.T) *sbemu.Emulator {
	t.Helper()
	return emu
}

func TestMain(m *testing.M) {
	e, err := sbemu.StartProcess(context.Background(), sbemu.Options{})
	if err != nil {
		fmt.Println(err)
		panic(err)
	}
	emu = e
	code := m.Run()
	_ = e.Close()
	if code != 0 {
		fmt.Println("sbemu stderr:\n" + e.Log())
	}
	exitFn(code)
}

func TestPeekLockReceiveComplete(t *testing.T) {
	e := emulator(t)
	q := newQueue(t, e, sbemu.QueueOptions{LockDuration: 5 * time.Second})
	c := newClient(t, e.ConnectionString())
	ttl := time.Minute
	send(t, c, q, &azservicebus.Message{
		MessageID: ptr("cmd-1"), Body: []byte("hello"), ReplyTo: ptr("replies"),
		ReplyToSessionID: ptr("sess-9"), TimeToLive: &ttl,
		ApplicationProperties: map[string]any{"kind": "reset"},
	})
	r, err := c.NewReceiverForQueue(q, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	before := time.Now().Add(-time.Second)
	m := receiveOne(t, r)
	if string(m.Body) != "hello" || m.MessageID != "cmd-1" {
		t.Fatalf("got body %q id %q", m.Body, m.MessageID)
	}
	if m.ReplyTo == nil || *m.ReplyTo != "replies" || m.ReplyToSessionID == nil || *m.ReplyToSessionID != "sess-9" {
		t.Fatalf("reply-to not carried: %v %v", m.ReplyTo, m.ReplyToSessionID)
	}
	if m.DeliveryCount != 1 {
		t.Fatalf("delivery count %d, want 1", m.DeliveryCount)
	}
	if m.ApplicationProperties["kind"] != "reset" {
		t.Fatalf("application properties: %v", m.ApplicationProperties)
	}
	if m.LockedUntil == nil || !m.LockedUntil.After(time.Now()) || m.EnqueuedTime == nil || m.EnqueuedTime.Before(before) {
		t.Fatalf("lock/enqueued times: %v %v", m.LockedUntil, m.EnqueuedTime)
	}
	if m.SequenceNumber == nil || *m.SequenceNumber <= 0 {
		t.Fatalf("sequence number: %v", m.SequenceNumber)
	}
	if m.TimeToLive == nil || *m.TimeToLive != ttl {
		t.Fatalf("ttl: %v", m.TimeToLive)
	}
	if m.LockToken == ([16]byte{}) {
		t.Fatal("no lock token")
	}
	if qs := queueState(t, e, q); qs.Locked != 1 || qs.Active != 0 {
		t.Fatalf("while locked: active %d locked %d", qs.Active, qs.Locked)
	}
	if err := r.CompleteMessage(ctxT(t, 5*time.Second), m, nil); err != nil {
		t.Fatalf("complete: %v", err)
	}
	qs := queueState(t, e, q)
	if qs.Locked != 0 || qs.Active != 0 || qs.Stats.Completed != 1 {
		t.Fatalf("after complete: %+v", qs)
	}
}

func TestAbandonRedeliversWithDeliveryCount(t *testing.T) {
	e := emulator(t)
	q := newQueue(t, e, sbemu.QueueOptions{LockDuration: 5 * time.Second})
	c := newClient(t, e.ConnectionString())
	send(t, c, q, &azservicebus.Message{Body: []byte("a")})
	r, _ := c.NewReceiverForQueue(q, nil)
	defer r.Close(context.Background())
	m := receiveOne(t, r)
	if err := r.AbandonMessage(ctxT(t, 5*time.Second), m, nil); err != nil {
		t.Fatalf("abandon: %v", err)
	}
	m2 := receiveOne(t, r)
	if m2.DeliveryCount != 2 || string(m2.Body) != "a" {
		t.Fatalf("redelivery: count %d body %q", m2.DeliveryCount, m2.Body)
	}
	if m2.LockToken == m.LockToken {
		t.Fatal("redelivery reused the lock token")
	}
	if err := r.CompleteMessage(ctxT(t, 5*time.Second), m2, nil); err != nil {
		t.Fatal(err)
	}
}

func TestDeadLetterWithReason(t *testing.T) {
	e := emulator(t)
	q := newQueue(t, e, sbemu.QueueOptions{LockDuration: 5 * time.Second})
	c := newClient(t, e.ConnectionString())
	send(t, c, q, &azservicebus.Message{MessageID: ptr("poison"), Body: []byte("x")})
	r, _ := c.NewReceiverForQueue(q, nil)
	defer r.Close(context.Background())
	m := receiveOne(t, r)
	if err := r.DeadLetterMessage(ctxT(t, 5*time.Second), m, &azservicebus.DeadLetterOptions{
		Reason: ptr("invalid_command"), ErrorDescription: ptr("signature does not verify"),
	}); err != nil {
		t.Fatalf("dead-letter: %v", err)
	}
	dlq, err := c.NewReceiverForQueue(q, &azservicebus.ReceiverOptions{SubQueue: azservicebus.SubQueueDeadLetter})
	if err != nil {
		t.Fatal(err)
	}
	defer dlq.Close(context.Background())
	d := receiveOne(t, dlq)
	if d.MessageID != "poison" || d.DeadLetterReason == nil || *d.DeadLetterReason != "invalid_command" ||
		d.DeadLetterErrorDescription == nil || *d.DeadLetterErrorDescription != "signature does not verify" {
		t.Fatalf("dead letter: id %q reason %v desc %v", d.MessageID, d.DeadLetterReason, d.DeadLetterErrorDescription)
	}
	if d.DeadLetterSource == nil || *d.DeadLetterSource != q {
		t.Fatalf("dead letter source %v", d.DeadLetterSource)
	}
	if err := dlq.CompleteMessage(ctxT(t, 5*time.Second), d, nil); err != nil {
		t.Fatal(err)
	}
}

func TestMaxDeliveryCountDeadLetters(t *testing.T) {
	e := emulator(t)
	q := newQueue(t, e, sbemu.QueueOptions{LockDuration: 5 * time.Second, MaxDeliveryCount: 2})
	c := newClient(t, e.ConnectionString())
	send(t, c, q, &azservicebus.Message{Body: []byte("p")})
	r, _ := c.NewReceiverForQueue(q, nil)
	defer r.Close(context.Background())
	for i := 1; i <= 2; i++ {
		m := receiveOne(t, r)
		if int(m.DeliveryCount) != i {
			t.Fatalf("attempt %d: delivery count %d", i, m.DeliveryCount)
		}
		if err := r.AbandonMessage(ctxT(t, 5*time.Second), m, nil); err != nil {
			t.Fatal(err)
		}
	}
	qs := queueState(t, e, q)
	if qs.Active != 0 || len(qs.DeadLetters) != 1 || qs.DeadLetters[0].DeadLetterReason != "MaxDeliveryCountExceeded" {
		t.Fatalf("after max deliveries: %+v", qs)
	}
	dlq, _ := c.NewReceiverForQueue(q, &azservicebus.ReceiverOptions{SubQueue: azservicebus.SubQueueDeadLetter})
	defer dlq.Close(context.Background())
	d := receiveOne(t, dlq)
	if d.DeadLetterReason == nil || *d.DeadLetterReason != "MaxDeliveryCountExceeded" {
		t.Fatalf("reason %v", d.DeadLetterReason)
	}
}

func TestLockExpiryAndRenewal(t *testing.T) {
	e := emulator(t)
	q := newQueue(t, e, sbemu.QueueOptions{LockDuration: 600 * time.Millisecond})
	c := newClient(t, e.ConnectionString())
	send(t, c, q, &azservicebus.Message{Body: []byte("1")}, &azservicebus.Message{Body: []byte("2")})
	r, _ := c.NewReceiverForQueue(q, nil)
	defer r.Close(context.Background())

	// message 1: renewed past several lock durations, then completed
	m := receiveOne(t, r)
	first := *m.LockedUntil
	deadline := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(deadline) {
		if err := r.RenewMessageLock(ctxT(t, 5*time.Second), m, nil); err != nil {
			t.Fatalf("renew: %v", err)
		}
		stack.WaitFor(t, time.Second, "half the lock duration", func() bool { return time.Until(*m.LockedUntil) < 300*time.Millisecond })
	}
	if !m.LockedUntil.After(first) {
		t.Fatalf("LockedUntil not extended: %v -> %v", first, m.LockedUntil)
	}
	if err := r.CompleteMessage(ctxT(t, 5*time.Second), m, nil); err != nil {
		t.Fatalf("complete after renewals: %v", err)
	}

	// message 2: the lock runs out; settling reports lock lost and the message comes back
	m2 := receiveOne(t, r)
	stack.WaitFor(t, 5*time.Second, "lock expiry", func() bool { return queueState(t, e, q).Active == 1 })
	err := r.CompleteMessage(ctxT(t, 5*time.Second), m2, nil)
	if code(err) != azservicebus.CodeLockLost {
		t.Fatalf("complete after expiry: %v (code %q), want CodeLockLost", err, code(err))
	}
	if err := r.RenewMessageLock(ctxT(t, 5*time.Second), m2, nil); code(err) != azservicebus.CodeLockLost {
		t.Fatalf("renew after expiry: %v, want CodeLockLost", err)
	}
	m3 := receiveOne(t, r)
	if string(m3.Body) != "2" || m3.DeliveryCount != 2 {
		t.Fatalf("after expiry: body %q count %d", m3.Body, m3.DeliveryCount)
	}
	_ = r.CompleteMessage(ctxT(t, 5*time.Second), m3, nil)
}

func TestExpireLocksFault(t *testing.T) {
	e := emulator(t)
	q := newQueue(t, e, sbemu.QueueOptions{LockDuration: time.Minute})
	c := newClient(t, e.ConnectionString())
	send(t, c, q, &azservicebus.Message{Body: []byte("x")})
	r, _ := c.NewReceiverForQueue(q, nil)
	defer r.Close(context.Background())
	m := receiveOne(t, r)
	n, err := e.ExpireLocks(context.Background(), q)
	if err != nil || n != 1 {
		t.Fatalf("expire locks: %d %v", n, err)
	}
	if err := r.AbandonMessage(ctxT(t, 5*time.Second), m, nil); code(err) != azservicebus.CodeLockLost {
		t.Fatalf("abandon after forced expiry: %v, want CodeLockLost", err)
	}
	m2 := receiveOne(t, r)
	if m2.DeliveryCount != 2 {
		t.Fatalf("delivery count %d", m2.DeliveryCount)
	}
	_ = r.CompleteMessage(ctxT(t, 5*time.Second), m2, nil)
}

func TestMessageTTLDeadLetters(t *testing.T) {
	e := emulator(t)
	q := newQueue(t, e, sbemu.QueueOptions{LockDuration: 5 * time.Second})
	c := newClient(t, e.ConnectionString())
	short := 200 * time.Millisecond
	send(t, c, q, &azservicebus.Message{MessageID: ptr("old"), Body: []byte("x"), TimeToLive: &short})
	stack.WaitFor(t, 5*time.Second, "expiry", func() bool { return queueState(t, e, q).Stats.Expired == 1 })
	qs := queueState(t, e, q)
	if qs.Active != 0 || len(qs.DeadLetters) != 1 || qs.DeadLetters[0].DeadLetterReason != "TTLExpiredException" {
		t.Fatalf("after ttl: %+v", qs)
	}
	// queue default TTL caps the message TTL
	q2 := newQueue(t, e, sbemu.QueueOptions{DefaultTTL: 200 * time.Millisecond, NoDeadLetterOnExpiry: true})
	send(t, c, q2, &azservicebus.Message{Body: []byte("y")})
	stack.WaitFor(t, 5*time.Second, "expiry", func() bool { return queueState(t, e, q2).Stats.Expired == 1 })
	if qs := queueState(t, e, q2); qs.Active != 0 || len(qs.DeadLetters) != 0 {
		t.Fatalf("after default ttl: %+v", qs)
	}
}

func TestWrongKeyIsUnauthorized(t *testing.T) {
	e := emulator(t)
	q := newQueue(t, e, sbemu.QueueOptions{})
	c := newClient(t, e.ConnectionStringWithKey("d3Jvbmcta2V5"))
	s, err := c.NewSender(q, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	err = s.SendMessage(ctxT(t, 10*time.Second), &azservicebus.Message{Body: []byte("x")}, nil)
	if code(err) != azservicebus.CodeUnauthorizedAccess {
		t.Fatalf("send with wrong key: %v (code %q), want CodeUnauthorizedAccess", err, code(err))
	}
	r, _ := c.NewReceiverForQueue(q, nil)
	defer r.Close(context.Background())
	_, err = r.ReceiveMessages(ctxT(t, 10*time.Second), 1, nil)
	if code(err) != azservicebus.CodeUnauthorizedAccess {
		t.Fatalf("receive with wrong key: %v, want CodeUnauthorizedAccess", err)
	}
	if qs := queueState(t, e, q); qs.Stats.Enqueued != 0 {
		t.Fatalf("unauthorized send was enqueued")
	}
}

func TestUnknownQueueNotFound(t *testing.T) {
	e := emulator(t)
	c := newClient(t, e.ConnectionString())
	s, _ := c.NewSender("no-such-queue", nil)
	defer s.Close(context.Background())
	err := s.SendMessage(ctxT(t, 10*time.Second), &azservicebus.Message{Body: []byte("x")}, nil)
	if err == nil {
		t.Fatal("send to unknown queue succeeded")
	}
}

func TestDuplicateDetection(t *testing.T) {
	e := emulator(t)
	q := newQueue(t, e, sbemu.QueueOptions{DuplicateDetectionWindow: time.Minute})
	c := newClient(t, e.ConnectionString())
	send(t, c, q,
		&azservicebus.Message{MessageID: ptr("same"), Body: []byte("1")},
		&azservicebus.Message{MessageID: ptr("same"), Body: []byte("2")},
		&azservicebus.Message{MessageID: ptr("other"), Body: []byte("3")})
	qs := queueState(t, e, q)
	if qs.Active != 2 || qs.Stats.Duplicates != 1 || string(qs.Messages[0].Body) != "1" || string(qs.Messages[1].Body) != "3" {
		t.Fatalf("duplicate detection: %+v", qs)
	}
	// without the feature both are kept
	q2 := newQueue(t, e, sbemu.QueueOptions{})
	send(t, c, q2, &azservicebus.Message{MessageID: ptr("same")}, &azservicebus.Message{MessageID: ptr("same")})
	if qs := queueState(t, e, q2); qs.Active != 2 {
		t.Fatalf("without duplicate detection: active %d", qs.Active)
	}
}

func TestSessions(t *testing.T) {
	e := emulator(t)
	q := newQueue(t, e, sbemu.QueueOptions{RequiresSession: true, LockDuration: 5 * time.Second})
	c := newClient(t, e.ConnectionString())
	send(t, c, q,
		&azservicebus.Message{SessionID: ptr("a"), Body: []byte("a1")},
		&azservicebus.Message{SessionID: ptr("b"), Body: []byte("b1")},
		&azservicebus.Message{SessionID: ptr("a"), Body: []byte("a2")})

	// a message without a session id is refused by a session queue
	s, _ := c.NewSender(q, nil)
	if err := s.SendMessage(ctxT(t, 5*time.Second), &azservicebus.Message{Body: []byte("nosession")}, nil); err == nil {
		t.Fatal("message without SessionID accepted by a session queue")
	}
	_ = s.Close(context.Background())

	sa, err := c.AcceptSessionForQueue(ctxT(t, 10*time.Second), q, "a", nil)
	if err != nil {
		t.Fatalf("accept session a: %v", err)
	}
	defer sa.Close(context.Background())
	if sa.SessionID() != "a" || !sa.LockedUntil().After(time.Now()) {
		t.Fatalf("session a: id %q locked until %v", sa.SessionID(), sa.LockedUntil())
	}
	for _, want := range []string{"a1", "a2"} {
		m := receiveOne(t, sa)
		if string(m.Body) != want || m.SessionID == nil || *m.SessionID != "a" {
			t.Fatalf("session a: got %q", m.Body)
		}
		if err := sa.CompleteMessage(ctxT(t, 5*time.Second), m, nil); err != nil {
			t.Fatal(err)
		}
	}
	before := sa.LockedUntil()
	if err := sa.RenewSessionLock(ctxT(t, 5*time.Second), nil); err != nil {
		t.Fatalf("renew session lock: %v", err)
	}
	if sa.LockedUntil().Before(before) {
		t.Fatalf("session lock went backwards")
	}
	// a locked session cannot be accepted twice
	if _, err := c.AcceptSessionForQueue(ctxT(t, 5*time.Second), q, "a", nil); err == nil {
		t.Fatal("accepted a session that is locked by another receiver")
	}
	next, err := c.AcceptNextSessionForQueue(ctxT(t, 10*time.Second), q, nil)
	if err != nil {
		t.Fatalf("accept next: %v", err)
	}
	if next.SessionID() != "b" {
		t.Fatalf("accept next got %q, want b", next.SessionID())
	}
	m := receiveOne(t, next)
	if string(m.Body) != "b1" {
		t.Fatalf("session b: %q", m.Body)
	}
	_ = next.CompleteMessage(ctxT(t, 5*time.Second), m, nil)
	_ = next.Close(context.Background())

	// no free session with messages: accept-next times out with CodeTimeout
	_, err = c.AcceptNextSessionForQueue(ctxT(t, 2*time.Second), q, nil)
	if code(err) != azservicebus.CodeTimeout && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("accept next on empty queue: %v, want CodeTimeout", err)
	}
	// a waiting accept-next is granted when a message arrives
	got := make(chan string, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r, err := c.AcceptNextSessionForQueue(ctx, q, nil)
		if err != nil {
			got <- "error: " + err.Error()
			return
		}
		defer r.Close(context.Background())
		got <- r.SessionID()
	}()
	stack.WaitFor(t, 5*time.Second, "accept-next to be waiting", func() bool { return queueState(t, e, q).Waiting == 1 })
	send(t, c, q, &azservicebus.Message{SessionID: ptr("c"), Body: []byte("c1")})
	if sid := <-got; sid != "c" {
		t.Fatalf("waiting accept-next got %q", sid)
	}
}

func TestDropConnectionsRecovers(t *testing.T) {
	e := emulator(t)
	q := newQueue(t, e, sbemu.QueueOptions{LockDuration: 5 * time.Second})
	c := newClient(t, e.ConnectionString())
	send(t, c, q, &azservicebus.Message{Body: []byte("1")})
	r, _ := c.NewReceiverForQueue(q, nil)
	defer r.Close(context.Background())
	m := receiveOne(t, r)
	if n, err := e.DropConnections(context.Background()); err != nil || n == 0 {
		t.Fatalf("drop connections: %d %v", n, err)
	}
	// The dropped connection's links are gone: nothing is delivered to a
	// consumer no client can reach.
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := e.Queue(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		if st.Consumers == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d consumers left on the queue after its connection was dropped", st.Consumers)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The lock died with the connection. The SDK retries settling on the dead link (it only
	// falls back to $management for link errors, not connection errors), so it fails; the
	// message is redelivered.
	if err := r.CompleteMessage(ctxT(t, 2*time.Second), m, nil); err == nil {
		t.Fatal("complete after the connection dropped succeeded")
	}
	m2 := receiveOne(t, r)
	if string(m2.Body) != "1" || m2.DeliveryCount != 2 {
		t.Fatalf("after reconnect: %q count %d", m2.Body, m2.DeliveryCount)
	}
	if err := r.CompleteMessage(ctxT(t, 5*time.Second), m2, nil); err != nil {
		t.Fatal(err)
	}
}

func TestDetachLinksRecovers(t *testing.T) {
	e := emulator(t)
	q := newQueue(t, e, sbemu.QueueOptions{LockDuration: 5 * time.Second})
	c := newClient(t, e.ConnectionString())
	r, _ := c.NewReceiverForQueue(q, nil)
	defer r.Close(context.Background())
	send(t, c, q, &azservicebus.Message{Body: []byte("1")})
	m := receiveOne(t, r)
	if err := r.CompleteMessage(ctxT(t, 5*time.Second), m, nil); err != nil {
		t.Fatal(err)
	}
	if n, err := e.DetachLinks(context.Background(), q); err != nil || n != 1 {
		t.Fatalf("detach: %d %v", n, err)
	}
	send(t, c, q, &azservicebus.Message{Body: []byte("2")})
	m2 := receiveOne(t, r)
	if string(m2.Body) != "2" {
		t.Fatalf("after detach: %q", m2.Body)
	}
	if err := r.CompleteMessage(ctxT(t, 5*time.Second), m2, nil); err != nil {
		t.Fatal(err)
	}
}

func TestRestartKeepsMessages(t *testing.T) {
	e := emulator(t)
	q := newQueue(t, e, sbemu.QueueOptions{LockDuration: 5 * time.Second})
	c := newClient(t, e.ConnectionString())
	send(t, c, q, &azservicebus.Message{Body: []byte("kept")})
	if err := e.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	r, _ := c.NewReceiverForQueue(q, nil)
	defer r.Close(context.Background())
	m := receiveOne(t, r)
	if string(m.Body) != "kept" {
		t.Fatalf("after restart: %q", m.Body)
	}
	if err := r.CompleteMessage(ctxT(t, 5*time.Second), m, nil); err != nil {
		t.Fatal(err)
	}
}

func ptr[T any](v T) *T { return &v }

// randomBody is n random bytes (incompressible, so a corrupted or truncated transfer shows).
func randomBody(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// wantStatus fails unless err is a control error with the given HTTP status.
func wantStatus(t *testing.T, err error, status int, what string) {
	t.Helper()
	var ce *sbemu.ControlError
	if !errors.As(err, &ce) || ce.Status != status {
		t.Fatalf("%s: got %v, want HTTP %d", what, err, status)
	}
}

// receiveIntact receives one message, checks its body is want byte for byte, and completes it.
func receiveIntact(t *testing.T, c *azservicebus.Client, q string, want []byte) {
	t.Helper()
	r, err := c.NewReceiverForQueue(q, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	m := receiveOne(t, r)
	if !bytes.Equal(m.Body, want) {
		t.Fatalf("received a body of %d bytes that differs from the %d bytes sent", len(m.Body), len(want))
	}
	if err := r.CompleteMessage(ctxT(t, 10*time.Second), m, nil); err != nil {
		t.Fatalf("complete: %v", err)
	}
}

// Standard tier: a message is capped at 256 KB. The SDK learns the cap from the attach and
// refuses a larger message with ErrMessageTooLarge (not retried, nothing enqueued, the sender
// still usable); a message just under the cap crosses several 64 KB frames each way intact.
func TestMessageSizeStandard(t *testing.T) {
	e := emulator(t)
	q := newQueue(t, e, sbemu.QueueOptions{LockDuration: 10 * time.Second})
	if qs := queueState(t, e, q); qs.Tier != sbemu.TierStandard || qs.MaxMessageSize != sbemu.StandardMaxMessageSize {
		t.Fatalf("standard queue: tier %q, cap %d", qs.Tier, qs.MaxMessageSize)
	}
	err := e.CreateQueue(context.Background(), q+"-big", sbemu.QueueOptions{MaxMessageSizeInKilobytes: 2048})
	wantStatus(t, err, 400, "a message size on a standard namespace")

	c := newClient(t, e.ConnectionString())
	s, err := c.NewSender(q, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	err = s.SendMessage(ctxT(t, 20*time.Second), &azservicebus.Message{Body: randomBody(t, sbemu.StandardMaxMessageSize+1)}, nil)
	if !errors.Is(err, azservicebus.ErrMessageTooLarge) {
		t.Fatalf("send over 256 KB: got %v, want ErrMessageTooLarge", err)
	}
	body := randomBody(t, sbemu.StandardMaxMessageSize-1024) // the rest is room for the message's own sections
	if err := s.SendMessage(ctxT(t, 20*time.Second), &azservicebus.Message{MessageID: ptr("fits"), Body: body}, nil); err != nil {
		t.Fatalf("send under 256 KB: %v", err)
	}
	qs := queueState(t, e, q)
	if qs.Stats.Enqueued != 1 || len(qs.Messages) != 1 || !bytes.Equal(qs.Messages[0].Body, body) || qs.Messages[0].BodySize != len(body) {
		t.Fatalf("after one refused and one allowed send: enqueued %d, %d messages", qs.Stats.Enqueued, len(qs.Messages))
	}
	if qs.Stats.TooLarge != 0 {
		t.Fatalf("the emulator saw %d oversized deliveries; the SDK should have refused the send from the attach's max-message-size", qs.Stats.TooLarge)
	}
	receiveIntact(t, c, q, body)
}

// Premium tier: the cap is the queue's MaxMessageSizeInKilobytes (1 MB by default, 1 MB to
// 100 MB). A multi-megabyte message within it is delivered intact (and left out of snapshots,
// which report its size); one over it is refused.
func TestMessageSizePremium(t *testing.T) {
	e := sbemu.Start(t, &sbemu.Options{Tier: sbemu.TierPremium})
	ctx := context.Background()
	if err := e.CreateQueue(ctx, "default", sbemu.QueueOptions{}); err != nil {
		t.Fatal(err)
	}
	if qs := queueState(t, e, "default"); qs.Tier != sbemu.TierPremium || qs.MaxMessageSize != sbemu.PremiumDefaultMaxMessageSizeKB<<10 {
		t.Fatalf("premium default queue: tier %q, cap %d", qs.Tier, qs.MaxMessageSize)
	}
	for _, kb := range []int64{sbemu.PremiumMinMaxMessageSizeKB - 1, sbemu.PremiumMaxMaxMessageSizeKB + 1, -1} {
		err := e.CreateQueue(ctx, fmt.Sprintf("bad%d", kb), sbemu.QueueOptions{MaxMessageSizeInKilobytes: kb})
		wantStatus(t, err, 400, fmt.Sprintf("MaxMessageSizeInKilobytes %d", kb))
	}
	const capKB = 10 << 10 // 10 MB
	if err := e.CreateQueue(ctx, "large", sbemu.QueueOptions{LockDuration: 20 * time.Second, MaxMessageSizeInKilobytes: capKB}); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, e.ConnectionString())
	s, err := c.NewSender("large", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	if err := s.SendMessage(ctxT(t, 30*time.Second), &azservicebus.Message{Body: randomBody(t, capKB<<10)}, nil); !errors.Is(err, azservicebus.ErrMessageTooLarge) {
		t.Fatalf("send over the queue's 10 MB: got %v, want ErrMessageTooLarge", err)
	}
	body := randomBody(t, 9<<20)
	if err := s.SendMessage(ctxT(t, 30*time.Second), &azservicebus.Message{Body: body}, nil); err != nil {
		t.Fatalf("send 9 MB to a 10 MB queue: %v", err)
	}
	qs := queueState(t, e, "large")
	if qs.Stats.Enqueued != 1 || len(qs.Messages) != 1 || !qs.Messages[0].BodyOmitted || qs.Messages[0].Body != nil || qs.Messages[0].BodySize != len(body) {
		t.Fatalf("snapshot of a 9 MB message: enqueued %d, %d messages %+v", qs.Stats.Enqueued, len(qs.Messages), qs.Messages)
	}
	receiveIntact(t, c, "large", body)
}

// The cap is enforced on receipt too: lowered while a sender link is up (the link still holds
// the old max-message-size), a larger message is rejected with amqp:link:message-size-exceeded,
// which the SDK returns as ErrMessageTooLarge; the link keeps working.
func TestMessageSizeEnforcedOnReceipt(t *testing.T) {
	e := sbemu.Start(t, &sbemu.Options{Tier: sbemu.TierPremium})
	ctx := context.Background()
	if err := e.CreateQueue(ctx, "q", sbemu.QueueOptions{MaxMessageSizeInKilobytes: 2048}); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, e.ConnectionString())
	s, err := c.NewSender("q", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	body := randomBody(t, 1536<<10)
	if err := s.SendMessage(ctxT(t, 20*time.Second), &azservicebus.Message{Body: body}, nil); err != nil {
		t.Fatalf("1.5 MB under a 2 MB cap: %v", err)
	}
	if err := e.SetMaxMessageSize(ctx, "q", 1024); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, e.SetMaxMessageSize(ctx, "q", 100), 400, "a cap under 1 MB")
	if err := s.SendMessage(ctxT(t, 20*time.Second), &azservicebus.Message{Body: body}, nil); !errors.Is(err, azservicebus.ErrMessageTooLarge) {
		t.Fatalf("1.5 MB after the cap fell to 1 MB: got %v, want ErrMessageTooLarge", err)
	}
	if err := s.SendMessage(ctxT(t, 20*time.Second), &azservicebus.Message{Body: []byte("small")}, nil); err != nil {
		t.Fatalf("small message after a refusal: %v", err)
	}
	qs := queueState(t, e, "q")
	if qs.MaxMessageSize != 1<<20 || qs.Stats.TooLarge != 1 || qs.Stats.Enqueued != 2 {
		t.Fatalf("cap %d, rejected as too large %d, enqueued %d; want 1 MB, 1, 2", qs.MaxMessageSize, qs.Stats.TooLarge, qs.Stats.Enqueued)
	}
}

// TestRefuseSendsFault: while RefuseSends is on, a send to the queue fails at once with the
// condition Service Bus gives for a send-disabled entity (a fatal error to the SDK, not
// retried), nothing is enqueued and receiving is unaffected; once off, the same sender (its
// link still attached) sends again.
func TestRefuseSendsFault(t *testing.T) {
	e := emulator(t)
	q := newQueue(t, e, sbemu.QueueOptions{LockDuration: 5 * time.Second})
	other := newQueue(t, e, sbemu.QueueOptions{LockDuration: 5 * time.Second})
	c := newClient(t, e.ConnectionString())
	s, err := c.NewSender(q, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	if err := s.SendMessage(ctxT(t, 10*time.Second), &azservicebus.Message{Body: []byte("before")}, nil); err != nil {
		t.Fatalf("send before the fault: %v", err)
	}
	if err := e.RefuseSends(context.Background(), q, true); err != nil {
		t.Fatal(err)
	}
	if !queueState(t, e, q).RefuseSends {
		t.Fatal("queue state does not show sends refused")
	}
	for i := 0; i < 2; i++ {
		start := time.Now()
		err := s.SendMessage(ctxT(t, 10*time.Second), &azservicebus.Message{Body: []byte("refused")}, nil)
		var amqpErr *amqp.Error
		if !errors.As(err, &amqpErr) || amqpErr.Condition != "com.microsoft:entity-disabled" {
			t.Fatalf("send %d while refused: %v, want com.microsoft:entity-disabled", i, err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("send %d took %s: a refused send is fatal, not retried", i, d)
		}
	}
	if err := s.SendMessageBatch(ctxT(t, 10*time.Second), mustBatch(t, s, "b1", "b2"), nil); err == nil {
		t.Fatal("batch send while refused succeeded")
	}
	send(t, c, other, &azservicebus.Message{Body: []byte("elsewhere")}) // only q refuses
	r, _ := c.NewReceiverForQueue(q, nil)
	defer r.Close(context.Background())
	m := receiveOne(t, r) // receiving is unaffected
	if string(m.Body) != "before" {
		t.Fatalf("received %q, want the message sent before the fault", m.Body)
	}
	if err := r.CompleteMessage(ctxT(t, 5*time.Second), m, nil); err != nil {
		t.Fatal(err)
	}
	if qs := queueState(t, e, q); qs.Active != 0 || qs.Stats.Enqueued != 1 || qs.Stats.Refused != 3 {
		t.Fatalf("while refused: active %d, enqueued %d, refused %d; want 0, 1, 3", qs.Active, qs.Stats.Enqueued, qs.Stats.Refused)
	}

	if err := e.RefuseSends(context.Background(), q, false); err != nil {
		t.Fatal(err)
	}
	if err := s.SendMessage(ctxT(t, 10*time.Second), &azservicebus.Message{Body: []byte("after")}, nil); err != nil {
		t.Fatalf("send after the fault: %v", err)
	}
	if m := receiveOne(t, r); string(m.Body) != "after" {
		t.Fatalf("received %q after the fault, want after", m.Body)
	}
	var ce *sbemu.ControlError
	if err := e.RefuseSends(context.Background(), "no-such-queue", true); !errors.As(err, &ce) || ce.Status != 404 {
		t.Fatalf("refuse sends on a missing queue: %v, want 404", err)
	}
}

func mustBatch(t *testing.T, s *azservicebus.Sender, bodies ...string) *azservicebus.MessageBatch {
	t.Helper()
	b, err := s.NewMessageBatch(ctxT(t, 10*time.Second), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range bodies {
		if err := b.AddMessage(&azservicebus.Message{Body: []byte(body)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	return b
}
