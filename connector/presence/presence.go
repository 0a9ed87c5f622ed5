// Package presence publishes the connector's signed heartbeat
// (PROTOCOL.md §12) so that the cloud side can tell a running connector
// from one that is gone before a user's reset times out.
//
// A Publisher reads the same state /readyz reads (a health.Snapshot),
// turns it into a protocol.Status — per domain the DCs counted by state,
// the queue link, the journal, and whether the connector takes work
// (health.Evaluate's verdict) — signs it with the connector key and hands
// it to a Sender: at once, then every interval, and a last "stopping"
// heartbeat when its context ends (a clean stop). It names no DC, host or
// account. It declares what it needs (Sender, the snapshot function) and
// imports neither the engine, nor the LDAP layer, nor a queue's SDK:
// connector/app wires it to relay/servicebus.
package presence

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jonboulle/clockwork"

	"github.com/adwriteback/adwriteback/connector/health"
	"github.com/adwriteback/adwriteback/relay/protocol"
)

// Message is one signed heartbeat for a Sender.
type Message struct {
	// ID is unique per heartbeat (the Service Bus MessageId).
	ID string
	// Body is the signed status envelope.
	Body []byte
	// TTL is 2 intervals: a heartbeat is worth nothing after that.
	TTL time.Duration
	// Instance and State repeat the signed content, for filtering.
	Instance string
	State    protocol.StatusState
}

// Sender delivers a heartbeat to the status destination.
type Sender interface {
	SendStatus(ctx context.Context, m Message) error
}

// Config configures a Publisher.
type Config struct {
	// Signer is the connector key that signs (the first of keys.connector).
	Signer protocol.SigningKey
	// Instance names this connector (status.instance, or DefaultInstance).
	Instance string
	// Version is the connector's software version ("unknown" if empty).
	Version string
	// Interval between heartbeats: whole seconds, at least one.
	Interval time.Duration
	// Snapshot reads what readiness depends on (the app's Snapshot).
	Snapshot func(context.Context) health.Snapshot
	// Sender delivers the heartbeats.
	Sender Sender
	// Clock is the time source (nil: the real clock).
	Clock clockwork.Clock
	// Logger (nil: discard).
	Logger *slog.Logger
	// NewID makes message ids (nil: random UUIDs).
	NewID func() string
}

// stopTimeout bounds the last heartbeat's send once the context has
// ended.
const stopTimeout = 5 * time.Second

// Publisher sends the heartbeats.
type Publisher struct {
	cfg       Config
	startedAt time.Time
	failing   bool // the last send failed (logged once per outage)
}

// New checks cfg and returns a Publisher; the connector's start time is
// now.
func New(cfg Config) (*Publisher, error) {
	var problems []error
	if cfg.Signer.KID == "" || cfg.Signer.Key == nil {
		problems = append(problems, errors.New("Signer is required"))
	}
	if cfg.Interval < time.Second || cfg.Interval%time.Second != 0 {
		problems = append(problems, errors.New("Interval must be whole seconds, at least one"))
	}
	if cfg.Snapshot == nil || cfg.Sender == nil {
		problems = append(problems, errors.New("Snapshot and Sender are required"))
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("presence: bad config: %w", errors.Join(problems...))
	}
	if cfg.Version == "" {
		cfg.Version = "unknown"
	}
	if cfg.Clock == nil {
		cfg.Clock = clockwork.NewRealClock()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.NewID == nil {
		cfg.NewID = uuid.NewString
	}
	return &Publisher{cfg: cfg, startedAt: cfg.Clock.Now()}, nil
}

// Run sends a heartbeat now and every interval until ctx ends, then the
// last one, "stopping", within a few seconds of its own. Call it before
// the sender's connection closes. Failed sends are logged, never fatal.
func (p *Publisher) Run(ctx context.Context) {
	t := p.cfg.Clock.NewTicker(p.cfg.Interval)
	defer t.Stop()
	for {
		p.publish(ctx, protocol.StatusRunning)
		select {
		case <-ctx.Done():
			p.stop()
			return
		case <-t.Chan():
		}
	}
}

// stop sends the "stopping" heartbeat on a context of its own: Run's has
// ended.
func (p *Publisher) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	p.publish(ctx, protocol.StatusStopping)
}

// publishTimeout is the shortest bound of one heartbeat's snapshot and
// send (opening the status queue's link may take a few seconds).
const publishTimeout = 10 * time.Second

// publish builds, signs and sends one heartbeat, bounded by an interval
// (or publishTimeout, if longer): heartbeats go one at a time, and the
// ticker drops the ticks a slow one misses rather than piling them up.
func (p *Publisher) publish(ctx context.Context, state protocol.StatusState) {
	ctx, cancel := context.WithTimeout(ctx, max(p.cfg.Interval, publishTimeout))
	defer cancel()
	body, err := p.sign(p.Heartbeat(ctx, state))
	if err == nil {
		err = p.cfg.Sender.SendStatus(ctx, Message{ID: p.cfg.NewID(), Body: body, TTL: 2 * p.cfg.Interval,
			Instance: p.cfg.Instance, State: state})
	}
	p.logOutcome(state, err)
}

func (p *Publisher) sign(s *protocol.Status) ([]byte, error) {
	body, err := protocol.SignStatus(s, p.cfg.Signer)
	if err != nil {
		return nil, fmt.Errorf("presence: sign heartbeat: %w", err)
	}
	return body, nil
}

// logOutcome logs a failure once per outage, and the recovery.
func (p *Publisher) logOutcome(state protocol.StatusState, err error) {
	switch {
	case err != nil && !p.failing:
		p.failing = true
		p.cfg.Logger.Warn("heartbeat not sent: the portal will see this connector as gone", "state", state, "err", err)
	case err == nil && p.failing:
		p.failing = false
		p.cfg.Logger.Info("heartbeat sent again", "state", state)
	case err == nil && state == protocol.StatusStopping:
		p.cfg.Logger.Info("stopping heartbeat sent")
	}
}

// Heartbeat is the heartbeat of the connector's state now.
func (p *Publisher) Heartbeat(ctx context.Context, state protocol.StatusState) *protocol.Status {
	snap := p.cfg.Snapshot(ctx)
	s := &protocol.Status{
		V: protocol.Version, ConnectorKID: p.cfg.Signer.KID, Instance: p.cfg.Instance, Version: p.cfg.Version,
		StartedAt: protocol.At(p.startedAt.Truncate(time.Millisecond)),
		SentAt:    protocol.At(p.cfg.Clock.Now().Truncate(time.Millisecond)),
		State:     state, TakingWork: state == protocol.StatusRunning && health.Evaluate(snap).Ready,
		Queue:    protocol.QueueStatus{State: protocol.QueueDown},
		Journal:  protocol.JournalStatus{State: protocol.JournalOK},
		Domains:  countDCs(snap.Domains),
		Interval: int(p.cfg.Interval / time.Second),
	}
	if s.SentAt.Before(s.StartedAt.Time) { // the wall clock was set back
		s.StartedAt = s.SentAt
	}
	if snap.Queue.State == "up" {
		s.Queue.State = protocol.QueueUp
	}
	if snap.Journal != nil {
		s.Journal.State = protocol.JournalUnwritable
	}
	return s
}

// countDCs counts each domain's DCs by state; a state other than up or
// down counts as unknown.
func countDCs(domains []health.Domain) []protocol.DomainStatus {
	out := make([]protocol.DomainStatus, 0, len(domains))
	for _, d := range domains {
		ds := protocol.DomainStatus{Name: d.Name}
		for _, dc := range d.DCs {
			switch dc.State {
			case health.DCUp:
				ds.DCsUp++
			case health.DCDown:
				ds.DCsDown++
			default:
				ds.DCsUnknown++
			}
		}
		out = append(out, ds)
	}
	return out
}

// DefaultInstance is the instance name of a connector whose
// configuration names none: the first label of its host name, reduced to
// the characters an instance name may hold ("connector" if none is left).
func DefaultInstance(hostname string) string {
	label, _, _ := strings.Cut(hostname, ".")
	b := []byte(label)
	out := b[:0]
	for _, c := range b {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return "connector"
	}
	return string(out[:min(len(out), 64)])
}
