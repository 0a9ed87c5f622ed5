//go:build integration

package sbemu_test

import (
	"context"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"github.com/adwriteback/adwriteback/integration/sbemu"
)

// Service Bus features beyond the basic receive loop, with the Go SDK.

// senderOnNewQueue makes a queue (5 s lock), a client and a sender on it, closed at test end.
func senderOnNewQueue(t *testing.T) (*sbemu.Emulator, string, *azservicebus.Client, *azservicebus.Sender) {
	t.Helper()
	e := emulator(t)
	q := newQueue(t, e, sbemu.QueueOptions{LockDuration: 5 * time.Second})
	c := newClient(t, e.ConnectionString())
	s, err := c.NewSender(q, nil)
	if err != nil {
		t.Fatalf("sender: %v", err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return e, q, c, s
}

// A batch (SendMessageBatch: one AMQP message of format 0x80013700 wrapping the messages) is
// enqueued as separate messages, in order, each with its own properties.
func TestSendMessageBatch(t *testing.T) {
	e, q, c, s := senderOnNewQueue(t)
	b, err := s.NewMessageBatch(ctxT(t, 10*time.Second), nil)
	if err != nil {
		t.Fatalf("new batch: %v", err)
	}
	ids := []string{"b-1", "b-2", "b-3"}
	for _, id := range ids {
		if err := b.AddMessage(&azservicebus.Message{MessageID: ptr(id), Body: []byte("body " + id),
			ApplicationProperties: map[string]any{"id": id}}, nil); err != nil {
			t.Fatalf("add %s: %v", id, err)
		}
	}
	if err := s.SendMessageBatch(ctxT(t, 10*time.Second), b, nil); err != nil {
		t.Fatalf("send batch: %v", err)
	}
	if qs := queueState(t, e, q); qs.Active != len(ids) || qs.Stats.Enqueued != len(ids) {
		t.Fatalf("after the batch: active %d enqueued %d, want %d", qs.Active, qs.Stats.Enqueued, len(ids))
	}
	r, err := c.NewReceiverForQueue(q, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	for _, id := range ids {
		m := receiveOne(t, r)
		if m.MessageID != id || string(m.Body) != "body "+id || m.ApplicationProperties["id"] != id {
			t.Fatalf("got id %q body %q props %v, want %s", m.MessageID, m.Body, m.ApplicationProperties, id)
		}
		if err := r.CompleteMessage(ctxT(t, 5*time.Second), m, nil); err != nil {
			t.Fatalf("complete %s: %v", id, err)
		}
	}
}

// A deferred message is set aside: a plain receive does not get it, ReceiveDeferredMessages
// (receive-by-sequence-number on $management) does, locked, and settles through $management.
func TestDeferAndReceiveDeferred(t *testing.T) {
	e := emulator(t)
	q := newQueue(t, e, sbemu.QueueOptions{LockDuration: 5 * time.Second})
	c := newClient(t, e.ConnectionString())
	send(t, c, q, &azservicebus.Message{MessageID: ptr("later"), Body: []byte("x")})
	r, err := c.NewReceiverForQueue(q, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	m := receiveOne(t, r)
	if err := r.DeferMessage(ctxT(t, 5*time.Second), m, nil); err != nil {
		t.Fatalf("defer: %v", err)
	}
	if qs := queueState(t, e, q); qs.Deferred != 1 || qs.Active != 0 || qs.Locked != 0 {
		t.Fatalf("after defer: active %d locked %d deferred %d", qs.Active, qs.Locked, qs.Deferred)
	}
	peeked, err := r.PeekMessages(ctxT(t, 5*time.Second), 5, &azservicebus.PeekMessagesOptions{FromSequenceNumber: m.SequenceNumber})
	if err != nil || len(peeked) != 1 || peeked[0].State != azservicebus.MessageStateDeferred {
		t.Fatalf("peek after defer: %v %+v", err, peeked)
	}
	got, err := r.ReceiveDeferredMessages(ctxT(t, 5*time.Second), []int64{*m.SequenceNumber}, nil)
	if err != nil || len(got) != 1 {
		t.Fatalf("receive deferred: %v (%d messages)", err, len(got))
	}
	d := got[0]
	if d.MessageID != "later" || d.State != azservicebus.MessageStateDeferred || d.DeliveryCount != 2 ||
		d.LockToken == ([16]byte{}) || d.LockToken == m.LockToken {
		t.Fatalf("deferred message: id %q state %v count %d token %x", d.MessageID, d.State, d.DeliveryCount, d.LockToken)
	}
	if err := r.CompleteMessage(ctxT(t, 5*time.Second), d, nil); err != nil {
		t.Fatalf("complete deferred: %v", err)
	}
	if qs := queueState(t, e, q); qs.Deferred != 0 || qs.Locked != 0 || qs.Stats.Completed != 1 {
		t.Fatalf("after completing the deferred message: %+v", qs)
	}
	if _, err := r.ReceiveDeferredMessages(ctxT(t, 5*time.Second), []int64{*m.SequenceNumber}, nil); err == nil {
		t.Fatal("a completed deferred message was received again")
	}
}

// Scheduled messages (ScheduleMessages through $management, ScheduledEnqueueTime through the
// link) wait for their time, peek shows them as scheduled, and a cancelled one never arrives.
func TestScheduleMessages(t *testing.T) {
	e, q, c, s := senderOnNewQueue(t)
	// far enough ahead that scheduling and the checks below finish before it on a loaded
	// machine; a message received before it fails the test
	at := time.Now().Add(3 * time.Second).Truncate(time.Millisecond)
	seqs, err := s.ScheduleMessages(ctxT(t, 10*time.Second), []*azservicebus.Message{
		{MessageID: ptr("sched"), Body: []byte("s")},
	}, at, nil)
	if err != nil || len(seqs) != 1 {
		t.Fatalf("schedule: %v %v", err, seqs)
	}
	cancelled, err := s.ScheduleMessages(ctxT(t, 10*time.Second), []*azservicebus.Message{
		{MessageID: ptr("cancelled"), Body: []byte("c")},
	}, time.Now().Add(time.Hour), nil)
	if err != nil || len(cancelled) != 1 {
		t.Fatalf("schedule: %v %v", err, cancelled)
	}
	send(t, c, q, &azservicebus.Message{MessageID: ptr("sched-link"), Body: []byte("l"), ScheduledEnqueueTime: &at})
	if qs := queueState(t, e, q); qs.Scheduled != 3 || qs.Active != 0 {
		t.Fatalf("after scheduling: active %d scheduled %d, want 0 and 3", qs.Active, qs.Scheduled)
	}
	r, err := c.NewReceiverForQueue(q, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	peeked, err := r.PeekMessages(ctxT(t, 5*time.Second), 5, &azservicebus.PeekMessagesOptions{FromSequenceNumber: &seqs[0]})
	if err != nil || len(peeked) != 3 || peeked[0].State != azservicebus.MessageStateScheduled {
		t.Fatalf("peek scheduled: %v %+v", err, peeked)
	}
	if err := s.CancelScheduledMessages(ctxT(t, 5*time.Second), cancelled, nil); err != nil {
		t.Fatalf("cancel: %v", err)
	}
	// both become active at the same time, in either order
	want := map[string]bool{"sched": true, "sched-link": true}
	for len(want) > 0 {
		m := receiveOne(t, r)
		// Node may run a timer a millisecond early
		if !want[m.MessageID] || time.Now().Before(at.Add(-50*time.Millisecond)) {
			t.Fatalf("got %q at %v, want one of %v at or after %v", m.MessageID, time.Now(), want, at)
		}
		delete(want, m.MessageID)
		if m.ScheduledEnqueueTime == nil || !m.ScheduledEnqueueTime.Equal(at) {
			t.Fatalf("%s: scheduled enqueue time %v, want %v", m.MessageID, m.ScheduledEnqueueTime, at)
		}
		if err := r.CompleteMessage(ctxT(t, 5*time.Second), m, nil); err != nil {
			t.Fatalf("complete %s: %v", m.MessageID, err)
		}
	}
	if qs := queueState(t, e, q); qs.Scheduled != 0 || qs.Active != 0 || qs.Stats.Completed != 2 {
		t.Fatalf("after the scheduled messages: %+v", qs)
	}
}

// A receive-and-delete receiver takes the message off the queue as it is handed over: nothing
// stays locked, so nothing comes back when the lock duration passes.
func TestReceiveAndDelete(t *testing.T) {
	e, q, c, _ := senderOnNewQueue(t)
	send(t, c, q, &azservicebus.Message{MessageID: ptr("rad"), Body: []byte("x")})
	r, err := c.NewReceiverForQueue(q, &azservicebus.ReceiverOptions{ReceiveMode: azservicebus.ReceiveModeReceiveAndDelete})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	if m := receiveOne(t, r); m.MessageID != "rad" {
		t.Fatalf("got %q, want rad", m.MessageID)
	}
	if qs := queueState(t, e, q); qs.Active != 0 || qs.Locked != 0 || qs.Stats.Completed != 1 {
		t.Fatalf("after receive-and-delete: active %d locked %d completed %d, want 0 0 1", qs.Active, qs.Locked, qs.Stats.Completed)
	}
}

// Abandon's PropertiesToModify (the modified outcome's message-annotations) are merged into the
// redelivered message's application properties, with their types.
func TestAbandonPropertiesToModify(t *testing.T) {
	_, q, c, _ := senderOnNewQueue(t)
	send(t, c, q, &azservicebus.Message{MessageID: ptr("p"), Body: []byte("x"),
		ApplicationProperties: map[string]any{"kept": "yes", "attempt": int64(1)}})
	r, err := c.NewReceiverForQueue(q, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	m := receiveOne(t, r)
	if err := r.AbandonMessage(ctxT(t, 5*time.Second), m, &azservicebus.AbandonMessageOptions{
		PropertiesToModify: map[string]any{"attempt": int64(2), "reason": "busy"},
	}); err != nil {
		t.Fatalf("abandon: %v", err)
	}
	m2 := receiveOne(t, r)
	want := map[string]any{"kept": "yes", "attempt": int64(2), "reason": "busy"}
	for k, v := range want {
		if m2.ApplicationProperties[k] != v {
			t.Fatalf("application properties %v, want %v", m2.ApplicationProperties, want)
		}
	}
	if err := r.CompleteMessage(ctxT(t, 5*time.Second), m2, nil); err != nil {
		t.Fatal(err)
	}
}
