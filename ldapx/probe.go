package ldapx

import (
	"context"
	"errors"
	"time"
)

// DCState is what the pool knows of one DC.
type DCState string

// The states of a DC. Only DCUp means a probe or real work succeeded on it
// last: a DC nobody has tried yet is DCUnknown, never up.
const (
	DCUnknown DCState = "unknown" // neither probed nor used yet
	DCUp      DCState = "up"      // the last probe or use succeeded
	DCDown    DCState = "down"    // the last probe or use failed (LastError says why)
)

// DefaultProbeInterval is how often each DC is probed when
// Config.ProbeInterval is unset.
const DefaultProbeInterval = 30 * time.Second

// succeeded records that a dial, a probe or an operation on s worked at
// now: s is up, its failures and backoff start over. latency (when not 0)
// is the bind's or the probe's.
func (s *server) succeeded(now time.Time, latency time.Duration, probe bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state, s.failures, s.retryAt, s.lastErr, s.lastOK = DCUp, 0, time.Time{}, nil, now
	s.backoff.Reset()
	if latency > 0 {
		s.lastDelay = latency
	}
	if probe {
		s.lastProbe = now
	}
}

// failed records that a dial or probe of s, started at started, failed at
// now with err. A success since started says more: the failure is then
// ignored. Callers that dialled together when it failed see one outage:
// it counts (and steps the backoff) once.
func (s *server) failed(started, now time.Time, err error, probe bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if probe {
		s.lastProbe = now
	}
	if started.Before(s.lastOK) {
		return
	}
	s.state = DCDown
	if !started.Before(s.failedAt) {
		s.failures++
		s.failedAt = now
		s.retryAt = now.Add(s.backoff.NextBackOff())
		s.lastErr = err
	}
}

// lost records that a connection to s broke under an operation (not
// because the caller gave up): s is down until a dial or probe says
// otherwise. The next dial decides whether it backs off.
func (s *server) lost(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state, s.lastErr = DCDown, err
}

// ProbeDCs probes every DC of the domain once: those configured and, with
// discovery, those DNS advertises now. A probe is a rootDSE read over a
// connection of the pool's own making (same TLS, same identity checks,
// same bind): an idle pooled connection to that DC when there is one,
// else a new one, closed after. Probes never wait for the pool's slots, so
// a slow or hanging DC's probe never holds up work (with pool_size 1
// above all); the DCs are probed one after the other, so probing adds at
// most one connection to the pool's, for at most twice DialTimeout. Each
// DC's state, last error, latency and probe time are in Servers.
func (cl *Client) ProbeDCs(ctx context.Context) {
	servers, err := cl.servers(ctx)
	if err != nil {
		return // discovery found nothing yet: logged there
	}
	for _, s := range servers {
		if ctx.Err() != nil {
			return
		}
		cl.probe(ctx, s)
	}
}

// RunProbes probes every DC now and then every Config.ProbeInterval,
// until ctx ends.
func (cl *Client) RunProbes(ctx context.Context) {
	t := cl.cfg.Clock.NewTicker(cl.cfg.ProbeInterval)
	defer t.Stop()
	for {
		cl.ProbeDCs(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.Chan():
		}
	}
}

// probe probes one DC and records the outcome.
func (cl *Client) probe(ctx context.Context, s *server) {
	ctx, cancel := context.WithTimeout(ctx, 2*cl.cfg.DialTimeout)
	defer cancel()
	was := s.currentState()
	started := cl.cfg.Clock.Now()
	err := cl.pool.probeWith(ctx, s)
	now := cl.cfg.Clock.Now()
	switch {
	case err == nil:
		s.succeeded(now, now.Sub(started), true)
		if was == DCDown {
			cl.cfg.Logger.Info("domain controller is up again", "event", EventDCUp, "dc", s.url.raw)
		}
	case errors.Is(err, errClosed):
	default:
		derr := decode("ldapx.probe", s.url.raw, err)
		s.failed(started, now, derr, true)
		log := cl.cfg.Logger.Warn // once per outage; the state says the rest
		if was == DCDown {
			log = cl.cfg.Logger.Debug
		}
		log("domain controller probe failed", "event", EventDCDown, "dc", s.url.raw, "err", derr)
	}
}

// EventDCDown and EventDCUp are the event attribute of the lines that say
// a DC went down or came back (connector/logevent's DCDown and DCUp).
const (
	EventDCDown = "dc_down"
	EventDCUp   = "dc_up"
)

func (s *server) currentState() DCState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

// probeWith runs the probe's rootDSE read on an idle connection to s, or
// on a new one when there is none (or the idle one has gone stale).
func (p *pool) probeWith(ctx context.Context, s *server) error {
	if c := p.takeIdle(s); c != nil {
		if err := p.cl.readRootDSE(ctx, c); err == nil {
			p.putIdle(c)
			return nil
		}
		c.close()
	}
	if p.isClosed() {
		return errClosed
	}
	c, err := p.cl.dialOne(ctx, s)
	if err != nil {
		return err
	}
	defer c.close()
	return p.cl.readRootDSE(ctx, c)
}

// takeIdle removes an idle connection to s from the pool, or returns nil.
func (p *pool) takeIdle(s *server) *conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.idle) - 1; i >= 0; i-- {
		if c := p.idle[i]; c.srv == s && !c.broken.Load() {
			p.idle = append(p.idle[:i], p.idle[i+1:]...)
			return c
		}
	}
	return nil
}

func (p *pool) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}
