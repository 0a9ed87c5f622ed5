package ldapx

import (
	"context"
	"crypto/tls"
	"fmt"
	"sync"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// Client is the connector's handle on one AD domain: a pool of bound
// connections to its DCs plus caches of the rootDSE and policies. It is
// safe for concurrent use.
type Client struct {
	cfg    Config
	tls    *tls.Config
	pool   *pool
	binder binder

	static []*server

	mu         sync.Mutex
	discovered []*server
	discAt     time.Time
	rootDSE    *RootDSE
	policies   map[string]cachedPolicy
}

// New validates cfg and returns a client. It does not dial: the first
// operation (or Ping) does.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("ldapx config: %w", err)
	}
	cfg.setDefaults()
	t, err := cfg.tlsConfig()
	if err != nil {
		return nil, err
	}
	b, err := newBinder(&cfg)
	if err != nil {
		return nil, fmt.Errorf("ldapx config: %w", err)
	}
	cl := &Client{cfg: cfg, tls: t, binder: b, policies: map[string]cachedPolicy{}}
	for _, s := range cfg.Servers {
		u, _ := parseServer(s) // validated above
		cl.static = append(cl.static, cl.newServer(u))
	}
	cl.pool = newPool(cl, cfg.PoolSize)
	return cl, nil
}

// Close closes idle connections; connections in use close on release.
func (cl *Client) Close() error {
	cl.pool.close()
	return nil
}

// Ping dials (or reuses) a connection and reads the rootDSE, refreshing
// the cached copy.
func (cl *Client) Ping(ctx context.Context) error {
	cl.mu.Lock()
	cl.rootDSE = nil
	cl.mu.Unlock()
	_, err := cl.RootDSE(ctx)
	return err
}

// Servers reports each DC's health, in the order they are tried.
func (cl *Client) Servers() []ServerStatus {
	cl.mu.Lock()
	all := append(append([]*server(nil), cl.static...), cl.discovered...)
	cl.mu.Unlock()
	out := make([]ServerStatus, 0, len(all))
	for _, s := range all {
		s.mu.Lock()
		st := ServerStatus{URL: s.url.raw, State: s.state, LastOK: s.lastOK, LastProbe: s.lastProbe,
			Failures: s.failures, RetryAt: s.retryAt, BindLatency: s.lastDelay,
			CertNotAfter: s.certNotAfter, CertSubject: s.certSubject}
		if s.lastErr != nil {
			st.LastError = s.lastErr.Error()
		}
		s.mu.Unlock()
		out = append(out, st)
	}
	return out
}

// with runs fn on a pooled connection and decodes its error. Reads may
// pass retry=true: a transient failure is then retried once on a fresh
// connection (possibly another DC). Writes never retry here: whether a
// lost modify was applied is for the caller to find out.
func (cl *Client) with(ctx context.Context, op string, retry bool, fn func(c *conn) error) (dc string, err error) {
	attempts := 1
	if retry {
		attempts = 2
	}
	for i := 0; i < attempts; i++ {
		var c *conn
		c, err = cl.pool.acquire(ctx)
		if err != nil {
			return "", decode(op, "", err)
		}
		dc = c.srv.url.raw
		err = fn(c)
		switch {
		case !c.broken.Load():
			c.srv.succeeded(cl.cfg.Clock.Now(), 0, false) // the DC answered, whatever it said
		case ctx.Err() == nil:
			c.srv.lost(decode(op, dc, err))
		}
		cl.pool.release(c)
		if err == nil {
			return dc, nil
		}
		err = decode(op, dc, err)
		if !IsTransient(err) || ctx.Err() != nil {
			return dc, err
		}
	}
	return dc, err
}

// Read runs fn, which must only read, on a pooled connection bound as
// the service account (any bind method), for tools such as the doctor
// that issue their own searches; a transient failure is retried once on
// a fresh connection.
func (cl *Client) Read(ctx context.Context, fn func(l *ldap.Conn) error) error {
	_, err := cl.with(ctx, "ldapx.Read", true, func(c *conn) error {
		return c.do(ctx, cl.cfg.OpTimeout, fn)
	})
	return err
}

// search is a convenience for a single search request on a pooled
// connection (retried once when transient).
func (cl *Client) search(ctx context.Context, op string, req *ldap.SearchRequest) (*ldap.SearchResult, string, error) {
	var res *ldap.SearchResult
	dc, err := cl.with(ctx, op, true, func(c *conn) error {
		return c.do(ctx, cl.cfg.OpTimeout, func(l *ldap.Conn) error {
			var err error
			res, err = l.Search(req)
			return err
		})
	})
	return res, dc, err
}
