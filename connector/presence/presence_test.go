package presence

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/adwriteback/adwriteback/connector/health"
	"github.com/adwriteback/adwriteback/relay/keys"
	"github.com/adwriteback/adwriteback/relay/protocol"
)

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// fakeSender records every heartbeat; fail makes sends fail.
type fakeSender struct {
	mu   sync.Mutex
	got  []Message
	fail error
	sent chan struct{}
}

func newFakeSender() *fakeSender { return &fakeSender{sent: make(chan struct{}, 100)} }

func (f *fakeSender) SendStatus(_ context.Context, m Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		f.sent <- struct{}{}
		return f.fail
	}
	f.got = append(f.got, m)
	f.sent <- struct{}{}
	return nil
}

func (f *fakeSender) messages() []Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Message(nil), f.got...)
}

// readySnapshot is a connector that /readyz calls ready: one domain with
// a DC up, one down, one not probed yet; the queue up; the journal writable.
func readySnapshot(context.Context) health.Snapshot {
	return health.Snapshot{
		Now: t0, ConnectorKeys: 1, SenderKeys: 1,
		Queue: health.Queue{Name: "commands", State: "up"},
		Domains: []health.Domain{{Name: "corp.example.com", DCs: []health.DC{
			{URL: "ldaps://dc1.corp.example.com", State: health.DCUp},
			{URL: "ldaps://dc2.corp.example.com", State: health.DCDown},
			{URL: "ldaps://dc3.corp.example.com", State: health.DCUnknown},
		}}},
	}
}

type rig struct {
	clock *clockwork.FakeClock
	send  *fakeSender
	key   *keys.ConnectorPrivate
	pub   *Publisher
	logs  *bytes.Buffer
}

func newRig(t *testing.T, snap func(context.Context) health.Snapshot) *rig {
	t.Helper()
	k, err := keys.GenerateConnector(0, t0)
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{clock: clockwork.NewFakeClockAt(t0), send: newFakeSender(), key: k, logs: &bytes.Buffer{}}
	r.pub, err = New(Config{Signer: k.SigningKey(), Instance: "site-1", Version: "1.2.3", Interval: 10 * time.Second,
		Snapshot: snap, Sender: r.send, Clock: r.clock, Logger: slog.New(slog.NewTextHandler(r.logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *rig) verify(t *testing.T, m Message) *protocol.VerifiedStatus {
	t.Helper()
	vk, err := keys.ResultKeysOf(r.key.Public())
	if err != nil {
		t.Fatal(err)
	}
	s, err := protocol.VerifyStatus(m.Body, vk)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (r *rig) waitSent(t *testing.T) {
	t.Helper()
	select {
	case <-r.send.sent:
	case <-time.After(10 * time.Second):
		t.Fatal("no heartbeat sent")
	}
}

// TestRunPublishesEachIntervalThenStopping: a heartbeat at once, one per
// interval, and the last one says stopping when the context ends.
func TestRunPublishesEachIntervalThenStopping(t *testing.T) {
	r := newRig(t, readySnapshot)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.pub.Run(ctx) }()

	r.waitSent(t)
	for range 2 {
		if err := r.clock.BlockUntilContext(ctx, 1); err != nil {
			t.Fatal(err)
		}
		r.clock.Advance(10 * time.Second)
		r.waitSent(t)
	}
	cancel()
	r.waitSent(t)
	<-done

	msgs := r.send.messages()
	if len(msgs) != 4 {
		t.Fatalf("%d heartbeats, want 4", len(msgs))
	}
	ids := map[string]bool{}
	for i, m := range msgs {
		s := r.verify(t, m)
		if ids[m.ID] || m.TTL != 20*time.Second || m.Instance != "site-1" || s.Interval != 10 {
			t.Errorf("heartbeat %d: id %q ttl %s instance %q interval %d", i, m.ID, m.TTL, m.Instance, s.Interval)
		}
		ids[m.ID] = true
		if !s.StartedAt.Equal(t0) {
			t.Errorf("heartbeat %d started at %s", i, s.StartedAt)
		}
	}
	if s := r.verify(t, msgs[2]); s.State != protocol.StatusRunning || !s.TakingWork || !s.SentAt.Equal(t0.Add(20*time.Second)) {
		t.Errorf("third heartbeat: %+v", s.Status)
	}
	last := r.verify(t, msgs[3])
	if last.State != protocol.StatusStopping || last.TakingWork || msgs[3].State != protocol.StatusStopping {
		t.Errorf("last heartbeat: %+v", last.Status)
	}
}

// TestHeartbeatCountsWithoutNames: DCs are counted by state; no DC
// name is in the signed body.
func TestHeartbeatCountsWithoutNames(t *testing.T) {
	r := newRig(t, readySnapshot)
	s := r.pub.Heartbeat(context.Background(), protocol.StatusRunning)
	want := protocol.DomainStatus{Name: "corp.example.com", DCsUp: 1, DCsDown: 1, DCsUnknown: 1}
	if len(s.Domains) != 1 || s.Domains[0] != want || s.Queue.State != "up" || s.Journal.State != "ok" || !s.TakingWork ||
		s.Version != "1.2.3" || s.ConnectorKID != r.key.KID {
		t.Fatalf("%+v", s)
	}
	body, err := protocol.SignStatus(s, r.key.SigningKey())
	if err != nil {
		t.Fatal(err)
	}
	if _, p := splitPayload(t, body); bytes.Contains(p, []byte("dc1")) || bytes.Contains(p, []byte("ldaps")) {
		t.Fatalf("a DC is named: %s", p)
	}
}

// TestHeartbeatNotTakingWork: what makes /readyz fail makes takingWork
// false: the queue link down, the journal unwritable, no DC up.
func TestHeartbeatNotTakingWork(t *testing.T) {
	for name, spoil := range map[string]func(*health.Snapshot){
		"queue down":         func(s *health.Snapshot) { s.Queue.State = "down" },
		"journal unwritable": func(s *health.Snapshot) { s.Journal = errors.New("read-only file system") },
		"no DC up": func(s *health.Snapshot) {
			s.Domains[0].DCs = []health.DC{{URL: "ldaps://dc1", State: health.DCDown}}
		},
	} {
		t.Run(name, func(t *testing.T) {
			r := newRig(t, func(ctx context.Context) health.Snapshot {
				s := readySnapshot(ctx)
				spoil(&s)
				return s
			})
			s := r.pub.Heartbeat(context.Background(), protocol.StatusRunning)
			if s.TakingWork {
				t.Fatalf("taking work: %+v", s)
			}
			if _, err := protocol.SignStatus(s, r.key.SigningKey()); err != nil {
				t.Fatal(err)
			}
			switch name {
			case "queue down":
				if s.Queue.State != protocol.QueueDown {
					t.Error(s.Queue)
				}
			case "journal unwritable":
				if s.Journal.State != protocol.JournalUnwritable {
					t.Error(s.Journal)
				}
			}
		})
	}
}

// TestFailedSendsLoggedOnce: a failing destination is logged once per
// outage, and its recovery once.
func TestFailedSendsLoggedOnce(t *testing.T) {
	r := newRig(t, readySnapshot)
	r.send.fail = errors.New("link detached")
	for range 3 {
		r.pub.publish(context.Background(), protocol.StatusRunning)
	}
	r.send.fail = nil
	r.pub.publish(context.Background(), protocol.StatusRunning)
	logs := r.logs.String()
	if n := strings.Count(logs, "heartbeat not sent"); n != 1 {
		t.Errorf("failure logged %d times:\n%s", n, logs)
	}
	if !strings.Contains(logs, "heartbeat sent again") {
		t.Errorf("recovery not logged:\n%s", logs)
	}
}

func TestNewRefuses(t *testing.T) {
	_, err := New(Config{Interval: 1500 * time.Millisecond})
	for _, want := range []string{"Signer", "Interval", "Snapshot"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %s in %v", want, err)
		}
	}
}

func TestDefaultInstance(t *testing.T) {
	for in, want := range map[string]string{
		"adw-conn-01.corp.example.com": "adw-conn-01", "HOST": "HOST", "": "connector", "über.x": "ber",
		strings.Repeat("a", 80): strings.Repeat("a", 64),
	} {
		if got := DefaultInstance(in); got != want {
			t.Errorf("DefaultInstance(%q) = %q, want %q", in, got, want)
		}
	}
}

// splitPayload returns an envelope's decoded payload.
func splitPayload(t *testing.T, raw []byte) (protocol.Envelope, []byte) {
	t.Helper()
	var env protocol.Envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		t.Fatal(err)
	}
	p, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		t.Fatal(err)
	}
	return env, p
}
