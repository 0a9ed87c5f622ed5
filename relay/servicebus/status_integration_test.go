//go:build integration

package servicebus

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/adwriteback/adwriteback/integration/sbemu"
)

// TestStatusSendAndPeek: heartbeats go out with their id, TTL, content
// type and properties; a peek reads all of them, over several pages,
// without taking any (a second peek sees the same), and carries each
// message's expiry.
func TestStatusSendAndPeek(t *testing.T) {
	e := setup(t, sbemu.QueueOptions{NoDeadLetterOnExpiry: true})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := NewStatusSender(e.client, e.queue)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(ctx)
	n := statusPeekPage + 6
	for i := range n {
		out := StatusOut{MessageID: fmt.Sprintf("hb-%d", i), Body: fmt.Appendf(nil, "body-%d", i), TTL: time.Hour,
			Instance: "a", State: "running"}
		if err := st.Send(ctx, out); err != nil {
			t.Fatal(err)
		}
	}
	p, err := NewStatusPeeker(e.senderClient(t), e.queue)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	for range 2 {
		got, err := p.PeekStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != n || string(got[n-1].Body) != fmt.Sprintf("body-%d", n-1) {
			t.Fatalf("peeked %d messages, want %d in order", len(got), n)
		}
		if until := time.Until(got[0].ExpiresAt); until < 50*time.Minute || until > time.Hour+time.Minute {
			t.Errorf("expiry in %s, want about an hour", until)
		}
	}
	state, err := e.emu.Queue(ctx, e.queue)
	if err != nil {
		t.Fatal(err)
	}
	if len(state.Messages) != n || state.Messages[0].MessageID != "hb-0" {
		t.Fatalf("queue holds %d messages after peeking, want %d", len(state.Messages), n)
	}
}
