//go:build integration

package sbemu_test

import (
	"context"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"github.com/adwriteback/adwriteback/integration/sbemu"
)

// A batch (SendMessageBatch: one AMQP message of format 0x80013700 wrapping the messages) is
// enqueued as separate messages, in order, each with its own properties.
func TestSendMessageBatch(t *testing.T) {
	e := emulator(t)
	q := newQueue(t, e, sbemu.QueueOptions{LockDuration: 5 * time.Second})
	c := newClient(t, e.ConnectionString())
	s, err := c.NewSender(q, nil)
	if err != nil {
		t.Fatalf("sender: %v", err)
	}
	defer s.Close(context.Background())
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
