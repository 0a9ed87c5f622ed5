package ldapx

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/go-ldap/ldap/v3"
)

// server is one DC and what we know of its health.
type server struct {
	url serverURL
	// discovered: found in DNS, so checked as Config.Discover says.
	discovered bool

	mu       sync.Mutex
	failures int
	// backoff is this DC's copy of Config.Backoff: one step per counted
	// failure, reset by a success.
	backoff backoff.ExponentialBackOff
	retryAt time.Time
	// failedAt is when the last failure was counted: a failure of an
	// attempt started before it is the same outage seen by a concurrent
	// caller, not one more.
	failedAt time.Time
	// state is up or down after the last dial, probe or use; unknown
	// before the first.
	state     DCState
	lastErr   error
	lastOK    time.Time
	lastProbe time.Time
	// lastDelay is the latency of the last successful bind or probe.
	lastDelay time.Duration
	// certNotAfter is the expiry of the DC's certificate, from the last
	// handshake.
	certNotAfter time.Time
	certSubject  string
}

// ServerStatus is a DC's health as seen by the pool, for readiness checks.
type ServerStatus struct {
	URL string
	// State is up only when the DC's last probe or use succeeded.
	State     DCState
	LastOK    time.Time // last successful bind, probe or operation
	LastProbe time.Time // zero before the first probe
	LastError string
	Failures  int // consecutive
	RetryAt   time.Time
	// BindLatency is the latency of the last successful bind or probe.
	BindLatency time.Duration
	// CertNotAfter and CertSubject describe the DC's TLS certificate as
	// last seen (zero before the first connection).
	CertNotAfter time.Time
	CertSubject  string
}

// newServer starts a DC's record, with its own copy of the backoff.
func (cl *Client) newServer(u serverURL) *server {
	s := &server{url: u, backoff: *cl.cfg.Backoff, state: DCUnknown}
	s.backoff.Reset()
	return s
}

// pool hands out bound connections, at most size at once.
type pool struct {
	cl   *Client
	sem  chan struct{}
	mu   sync.Mutex
	idle []*conn
	// closed is set by Close; later acquires fail.
	closed bool
}

func newPool(cl *Client, size int) *pool {
	return &pool{cl: cl, sem: make(chan struct{}, size)}
}

var errClosed = errors.New("ldapx: client closed")

// acquire returns a healthy bound connection, reusing an idle one when it
// can and dialing (with failover across DCs) when it must.
func (p *pool) acquire(ctx context.Context) (*conn, error) {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	c, err := p.get(ctx)
	if err != nil {
		<-p.sem
		return nil, err
	}
	return c, nil
}

func (p *pool) get(ctx context.Context) (*conn, error) {
	cfg := &p.cl.cfg
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, errClosed
		}
		n := len(p.idle)
		if n == 0 {
			p.mu.Unlock()
			break
		}
		c := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()

		idleFor := cfg.Clock.Now().Sub(c.used)
		switch {
		case c.broken.Load() || idleFor > cfg.MaxIdle:
			c.close()
			continue
		case idleFor > cfg.HealthAfter:
			if err := p.check(ctx, c); err != nil {
				cfg.Logger.Debug("dropping stale LDAP connection", "dc", c.srv.url.raw, "err", err)
				c.close()
				continue
			}
		}
		return c, nil
	}
	return p.cl.dial(ctx)
}

// check is the health probe of an idle connection: a base read of the
// rootDSE.
func (p *pool) check(ctx context.Context, c *conn) error {
	ctx, cancel := context.WithTimeout(ctx, p.cl.cfg.DialTimeout)
	defer cancel()
	return c.do(ctx, p.cl.cfg.DialTimeout, func(l *ldap.Conn) error {
		_, err := l.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 0, false,
			"(objectClass=*)", []string{"currentTime"}, nil))
		return err
	})
}

// release returns c to the pool, or closes it when it is broken, and
// frees its slot.
func (p *pool) release(c *conn) {
	p.putIdle(c)
	<-p.sem
}

// putIdle adds c to the idle connections, or closes it when it is broken
// or the pool is closed.
func (p *pool) putIdle(c *conn) {
	c.used = p.cl.cfg.Clock.Now()
	p.mu.Lock()
	if c.broken.Load() || p.closed {
		p.mu.Unlock()
		c.close()
		return
	}
	p.idle = append(p.idle, c)
	p.mu.Unlock()
}

func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, c := range idle {
		c.close()
	}
}

// dial tries the DCs in order, skipping those in backoff, and binds to the
// first that answers. When every DC is in backoff it waits for the earliest
// retry time (or the context).
func (cl *Client) dial(ctx context.Context) (*conn, error) {
	for {
		servers, err := cl.servers(ctx)
		if err != nil {
			return nil, err
		}
		now := cl.cfg.Clock.Now()
		var errs []error
		var earliest time.Time
		tried := 0
		for _, s := range servers {
			s.mu.Lock()
			retryAt := s.retryAt
			s.mu.Unlock()
			if now.Before(retryAt) {
				if earliest.IsZero() || retryAt.Before(earliest) {
					earliest = retryAt
				}
				continue
			}
			tried++
			started := cl.cfg.Clock.Now()
			c, err := cl.dialOne(ctx, s)
			if err == nil {
				s.succeeded(c.used, c.used.Sub(started), false)
				return c, nil
			}
			if ctx.Err() != nil {
				return nil, decode("ldapx.dial", s.url.raw, fmt.Errorf("%w (%v)", ctx.Err(), err))
			}
			derr := decode("ldapx.dial", s.url.raw, err)
			s.failed(started, cl.cfg.Clock.Now(), derr, false)
			cl.cfg.Logger.Warn("domain controller unavailable", "dc", s.url.raw, "err", derr)
			if KindOf(derr) == KindInvalidCredentials {
				// The account, not the DC, is the problem: another DC
				// would say the same.
				return nil, derr
			}
			errs = append(errs, derr)
		}
		if tried == 1 {
			return nil, errs[0] // already says where and why
		}
		if tried > 0 {
			return nil, &Error{Op: "ldapx.dial", Kind: worstKind(errs), Err: errors.Join(errs...)}
		}
		// Every DC is backing off: wait for the first to be retried.
		t := cl.cfg.Clock.NewTimer(earliest.Sub(now))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, &Error{Op: "ldapx.dial", Kind: KindTransient,
				Err: fmt.Errorf("every domain controller is unavailable: %w", ctx.Err())}
		case <-t.Chan():
		}
	}
}

// worstKind picks the kind that describes a failed dial to every DC: TLS
// trust problems are reported as such (they need an admin), anything else
// as transient.
func worstKind(errs []error) Kind {
	for _, e := range errs {
		if KindOf(e) == KindTLS {
			return KindTLS
		}
	}
	return KindTransient
}
