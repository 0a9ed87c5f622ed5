package sender_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/adwriteback/adwriteback/relay/keys"
	"github.com/adwriteback/adwriteback/relay/protocol"
	"github.com/adwriteback/adwriteback/relay/sender"
)

// fakeStatusQueue is a StatusSource over a fixed list of messages.
type fakeStatusQueue struct {
	msgs []sender.StatusMessage
	err  error
}

func (f *fakeStatusQueue) PeekStatus(context.Context) ([]sender.StatusMessage, error) {
	return f.msgs, f.err
}

func heartbeat(t *testing.T, k *keys.ConnectorPrivate, instance string, sentAt time.Time, state protocol.StatusState, taking bool) sender.StatusMessage {
	t.Helper()
	s := protocol.Status{V: 2, ConnectorKID: k.KID, Instance: instance, Version: "test",
		StartedAt: protocol.At(now.Add(-time.Hour)), SentAt: protocol.At(sentAt), State: state, TakingWork: taking,
		Queue: protocol.QueueStatus{State: protocol.QueueUp}, Journal: protocol.JournalStatus{State: protocol.JournalOK},
		Domains: []protocol.DomainStatus{{Name: "corp.example.com", DCsUp: 1}}, Interval: 60}
	raw, err := protocol.SignStatus(&s, k.SigningKey())
	if err != nil {
		t.Fatal(err)
	}
	return sender.StatusMessage{Body: raw, ExpiresAt: sentAt.Add(2 * time.Minute)}
}

func statusAt(t *testing.T, w *world, at time.Time, msgs ...sender.StatusMessage) sender.StatusReport {
	t.Helper()
	vk, err := keys.ResultKeysOf(w.conn.Public())
	if err != nil {
		t.Fatal(err)
	}
	r, err := sender.NewStatusReader(sender.StatusConfig{Keys: vk, Source: &fakeStatusQueue{msgs: msgs},
		Clock: clockwork.NewFakeClockAt(at)})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := r.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestStatusFreshAndStale(t *testing.T) {
	w := newWorld(t)
	hb := heartbeat(t, w.conn, "a", now, protocol.StatusRunning, true)
	older := heartbeat(t, w.conn, "a", now.Add(-time.Minute), protocol.StatusRunning, false)

	rep := statusAt(t, w, now.Add(30*time.Second), hb, older)
	if !rep.Verified || rep.Stale || !rep.Available() || rep.Age != 30*time.Second || !rep.Last.SentAt.Equal(now) {
		t.Fatalf("fresh: %+v", rep)
	}
	// the queue still shows it past its expiry: judged by sentAt anyway
	hb.ExpiresAt = time.Time{}
	rep = statusAt(t, w, now.Add(2*time.Minute), hb)
	if !rep.Stale || rep.Available() || !rep.Verified {
		t.Fatalf("2 intervals old: %+v", rep)
	}
	rep = statusAt(t, w, now.Add(10*time.Minute))
	if rep.Verified || !rep.Stale || rep.Last != nil {
		t.Fatalf("none: %+v", rep)
	}
}

func TestStatusStoppingIsStale(t *testing.T) {
	w := newWorld(t)
	rep := statusAt(t, w, now.Add(time.Second),
		heartbeat(t, w.conn, "a", now.Add(-time.Minute), protocol.StatusRunning, true),
		heartbeat(t, w.conn, "a", now, protocol.StatusStopping, false))
	if !rep.Stale || rep.Last.State != protocol.StatusStopping || rep.Available() {
		t.Fatalf("%+v", rep)
	}
}

// TestStatusSeveralInstances: one instance stopping does not hide the
// writeback another one still takes.
func TestStatusSeveralInstances(t *testing.T) {
	w := newWorld(t)
	rep := statusAt(t, w, now.Add(time.Second),
		heartbeat(t, w.conn, "b", now.Add(-10*time.Second), protocol.StatusRunning, true),
		heartbeat(t, w.conn, "a", now, protocol.StatusStopping, false))
	if rep.Stale || !rep.Available() || rep.Last.Instance != "b" || len(rep.Instances) != 2 ||
		rep.Instances[0].Status.Instance != "a" || !rep.Instances[0].Stale {
		t.Fatalf("%+v", rep)
	}
}

// TestStatusUnverifiedIgnored: a heartbeat signed by another key, however
// fresh, is counted and never used.
func TestStatusUnverifiedIgnored(t *testing.T) {
	w := newWorld(t)
	forged := heartbeat(t, w.conn2, "a", now, protocol.StatusRunning, true)
	rep := statusAt(t, w, now.Add(time.Second), forged, sender.StatusMessage{Body: []byte("{}")})
	if rep.Verified || !rep.Stale || rep.Unverified != 2 || !errors.Is(rep.UnverifiedErr, protocol.ErrUnknownSigner) {
		t.Fatalf("%+v", rep)
	}
}

func TestStatusFromTheFuture(t *testing.T) {
	w := newWorld(t)
	rep := statusAt(t, w, now, heartbeat(t, w.conn, "a", now.Add(time.Hour), protocol.StatusRunning, true))
	if !rep.Stale {
		t.Fatalf("a heartbeat dated an hour ahead counts: %+v", rep)
	}
}

func TestClientStatus(t *testing.T) {
	w := newWorld(t)
	if _, err := w.client.Status(context.Background()); !errors.Is(err, sender.ErrNoStatusSource) {
		t.Fatalf("without a source: %v", err)
	}
	boom := errors.New("boom")
	cfg, err := sender.ConfigFromKeys(w.snd, w.conn.Public())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Status, cfg.Clock = &fakeStatusQueue{err: boom}, clockwork.NewFakeClockAt(now)
	c, err := sender.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Status(context.Background()); !errors.Is(err, boom) {
		t.Fatalf("source error: %v", err)
	}
	cfg.Status = &fakeStatusQueue{msgs: []sender.StatusMessage{heartbeat(t, w.conn, "a", now, protocol.StatusRunning, true)}}
	if c, err = sender.New(cfg); err != nil {
		t.Fatal(err)
	}
	rep, err := c.Status(context.Background())
	if err != nil || !rep.Available() {
		t.Fatalf("%+v %v", rep, err)
	}
}
