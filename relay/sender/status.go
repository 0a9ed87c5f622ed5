package sender

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/adwriteback/adwriteback/relay/protocol"
)

// ContentTypeStatus is the content type of a connector's heartbeat
// (PROTOCOL.md §12).
const ContentTypeStatus = "application/vnd.adwriteback.status+json;v=2"

// StatusMessage is one message of the status queue, as a StatusSource
// sees it without taking it.
type StatusMessage struct {
	// Body is the status envelope.
	Body []byte
	// ExpiresAt is the message's expiry on the queue (zero: none). A
	// queue may still show a message past it for a while.
	ExpiresAt time.Time
}

// StatusSource lists the heartbeats on the status queue without taking
// them (Service Bus: a peek), so that several readers see the same ones.
// It is declared here, where it is used; relay/servicebus implements it.
type StatusSource interface {
	PeekStatus(ctx context.Context) ([]StatusMessage, error)
}

// StatusConfig configures a StatusReader.
type StatusConfig struct {
	// Keys are the connector keys a heartbeat may be signed with
	// (required): the connector's public keys.
	Keys protocol.VerifyKeys
	// Source lists the status queue's messages (required).
	Source StatusSource
	// Instance, when set, considers only that connector instance's
	// heartbeats.
	Instance string
	// Clock is the time source (nil: the real clock).
	Clock clockwork.Clock
}

// StatusReport is what the status queue says about the connector.
//
// A portal offers writeback when Available: a verified heartbeat younger
// than 2 of its intervals, from a running connector that takes work.
// Otherwise it hides writeback or says "try later"; when Unverified is
// not zero, someone put messages on the status queue that do not verify:
// ignore them and alert.
type StatusReport struct {
	// Last is the heartbeat the verdict rests on (nil when none
	// verified): the newest of a fresh, running instance taking work, else
	// of a fresh running one, else the newest of all.
	Last *protocol.VerifiedStatus
	// Age is how old Last is (now - sentAt).
	Age time.Duration
	// Verified reports that Last is set: some heartbeat verified.
	Verified bool
	// Stale is true when there is no Last, or it is older than 2 of its
	// intervals, or dated too far ahead, or says stopping.
	Stale bool
	// Instances is the newest verified heartbeat of each instance, by
	// name.
	Instances []InstanceStatus
	// Unverified counts the messages that did not verify (or were not
	// status envelopes); UnverifiedErr is the first one's error.
	Unverified    int
	UnverifiedErr error
}

// Available reports whether writeback can be offered now.
func (r StatusReport) Available() bool {
	return !r.Stale && r.Last != nil && r.Last.TakingWork
}

// InstanceStatus is one connector instance's newest heartbeat.
type InstanceStatus struct {
	Status *protocol.VerifiedStatus
	Age    time.Duration
	Stale  bool
}

// ErrNoStatusSource is returned by Client.Status without Config.Status.
var ErrNoStatusSource = errors.New("sender: no status source configured")

// StatusReader reads a connector's presence from its status queue.
type StatusReader struct {
	cfg StatusConfig
}

// NewStatusReader checks cfg and returns a StatusReader.
func NewStatusReader(cfg StatusConfig) (*StatusReader, error) {
	if len(cfg.Keys) == 0 || cfg.Source == nil {
		return nil, errors.New("sender: status reader needs Keys and a Source")
	}
	if cfg.Clock == nil {
		cfg.Clock = clockwork.NewRealClock()
	}
	return &StatusReader{cfg: cfg}, nil
}

// Status peeks the status queue and judges the newest verified heartbeat
// of each instance against the clock. A heartbeat whose signature or
// content does not verify is never used, only counted. The error is the
// source's only: no heartbeat at all is a StatusReport with Stale set.
func (r *StatusReader) Status(ctx context.Context) (StatusReport, error) {
	msgs, err := r.cfg.Source.PeekStatus(ctx)
	if err != nil {
		return StatusReport{}, fmt.Errorf("sender: read status: %w", err)
	}
	now := r.cfg.Clock.Now()
	rep, newest := r.verifyAll(msgs, now)
	rep.Instances = judgeInstances(newest, now)
	rep.Last = pickLast(rep.Instances)
	if rep.Last != nil {
		rep.Verified, rep.Age = true, now.Sub(rep.Last.SentAt.Time)
	}
	rep.Stale = rep.Last == nil || isStale(rep.Last, now)
	return rep, nil
}

// verifyAll verifies every message not yet expired on the queue and keeps
// the newest heartbeat (by its signed sentAt) of each instance.
func (r *StatusReader) verifyAll(msgs []StatusMessage, now time.Time) (StatusReport, map[string]*protocol.VerifiedStatus) {
	var rep StatusReport
	newest := map[string]*protocol.VerifiedStatus{}
	for _, m := range msgs {
		if !m.ExpiresAt.IsZero() && !now.Before(m.ExpiresAt) {
			continue
		}
		s, err := protocol.VerifyStatus(m.Body, r.cfg.Keys)
		if err != nil {
			rep.Unverified++
			if rep.UnverifiedErr == nil {
				rep.UnverifiedErr = err
			}
			continue
		}
		if r.cfg.Instance != "" && s.Instance != r.cfg.Instance {
			continue
		}
		if prev := newest[s.Instance]; prev == nil || s.SentAt.After(prev.SentAt.Time) {
			newest[s.Instance] = s
		}
	}
	return rep, newest
}

func judgeInstances(newest map[string]*protocol.VerifiedStatus, now time.Time) []InstanceStatus {
	out := make([]InstanceStatus, 0, len(newest))
	for _, s := range newest {
		out = append(out, InstanceStatus{Status: s, Age: now.Sub(s.SentAt.Time), Stale: isStale(s, now)})
	}
	slices.SortFunc(out, func(a, b InstanceStatus) int { return cmp.Compare(a.Status.Instance, b.Status.Instance) })
	return out
}

// pickLast: the newest fresh instance taking work, else the newest fresh
// one, else the newest of all.
func pickLast(insts []InstanceStatus) *protocol.VerifiedStatus {
	var best *protocol.VerifiedStatus
	rank := func(i InstanceStatus) int {
		switch {
		case !i.Stale && i.Status.TakingWork:
			return 2
		case !i.Stale:
			return 1
		}
		return 0
	}
	bestRank := -1
	for _, i := range insts {
		r := rank(i)
		if r > bestRank || r == bestRank && i.Status.SentAt.After(best.SentAt.Time) {
			best, bestRank = i.Status, r
		}
	}
	return best
}

// isStale: stopping, older than 2 intervals, or dated further ahead than
// the protocol's clock skew (a clock that cannot be trusted).
func isStale(s *protocol.VerifiedStatus, now time.Time) bool {
	return s.State == protocol.StatusStopping || !now.Before(s.StaleAt()) ||
		s.SentAt.After(now.Add(protocol.DefaultSkew))
}

// Status reads the connector's presence through Config.Status, verifying
// heartbeats with Config.ResultKeys (the connector's keys). See
// StatusReader.Status.
func (c *Client) Status(ctx context.Context) (StatusReport, error) {
	if c.cfg.Status == nil {
		return StatusReport{}, ErrNoStatusSource
	}
	r, err := NewStatusReader(StatusConfig{Keys: c.cfg.ResultKeys, Source: c.cfg.Status, Clock: c.cfg.Clock})
	if err != nil {
		return StatusReport{}, err
	}
	return r.Status(ctx)
}
