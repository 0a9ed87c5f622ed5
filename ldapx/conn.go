package ldapx

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// conn is one bound connection to one DC, used by one caller at a time.
type conn struct {
	l       *ldap.Conn
	srv     *server
	created time.Time
	used    time.Time
	broken  atomic.Bool
}

// do runs fn on the connection under ctx: the context's deadline (or
// defTimeout) bounds the request, and if ctx ends while fn runs the
// connection is closed, which makes go-ldap return at once; the connection
// is then marked broken and never reused.
func (c *conn) do(ctx context.Context, defTimeout time.Duration, fn func(l *ldap.Conn) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	timeout := defTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
		if timeout <= 0 {
			return context.DeadlineExceeded
		}
	}
	c.l.SetTimeout(timeout)
	stop := context.AfterFunc(ctx, func() {
		c.broken.Store(true)
		c.l.Close()
	})
	err := fn(c.l)
	if !stop() {
		// The context ended during the call: report that, not the
		// "connection closed" it caused.
		c.broken.Store(true)
		if err == nil {
			return nil // the call finished before the close took effect
		}
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	if err != nil && isConnFatal(err) {
		c.broken.Store(true)
		var le *ldap.Error
		if !errors.As(err, &le) && c.l.IsClosing() {
			// go-ldap hands a request whose connection died under it the
			// reader's plain error ("unable to read LDAP response packet:
			// EOF"); the connection's state, not that text, says the
			// network failed: retry or fail over, and for a write, find
			// out whether it landed.
			return fmt.Errorf("%w: %w", errConnLost, err)
		}
	}
	return err
}

// errConnLost marks a request whose connection closed before its answer
// came: the outcome is unknown, and the failure transient.
var errConnLost = errors.New("connection to the domain controller lost")

// isConnFatal reports errors after which the connection can't be trusted.
func isConnFatal(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return true
	}
	var le *ldap.Error
	if errors.As(err, &le) {
		switch le.ResultCode {
		case ldap.ErrorNetwork, ldap.LDAPResultServerDown, ldap.LDAPResultTimeout,
			ldap.LDAPResultConnectError, ldap.LDAPResultUnavailable:
			return true
		}
		return false
	}
	return true
}

func (c *conn) close() { c.l.Close() }

// dialOne connects to one DC, secures the connection (LDAPS or StartTLS,
// certificate verified unless explicitly disabled), checks a discovered
// DC's identity and binds (Config.BindMethod): the password, or the
// Kerberos ticket, goes only to a DC that passed every check before it.
func (cl *Client) dialOne(ctx context.Context, s *server) (*conn, error) {
	ctx, cancel := context.WithTimeout(ctx, cl.cfg.DialTimeout)
	defer cancel()
	start := cl.cfg.Clock.Now()
	tcfg := cl.tlsFor(s)
	l, err := cl.connect(ctx, s, tcfg)
	if err != nil {
		return nil, err
	}
	c := &conn{l: l, srv: s, created: start}
	err = c.do(ctx, cl.cfg.DialTimeout, func(l *ldap.Conn) error {
		if err := secure(l, s, tcfg); err != nil {
			return err
		}
		if s.discovered || cl.cfg.CheckIdentity {
			if err := cl.checkIdentity(l, s); err != nil {
				return err // before the bind: no password for a host that is not the DC
			}
		}
		return cl.binder.bind(ctx, l, cl.spnHost(s))
	})
	if err != nil {
		l.Close()
		return nil, err
	}
	c.used = cl.cfg.Clock.Now()
	return c, nil
}

// tlsFor is the TLS configuration for s: the name checked is the URL's
// host unless ServerName overrides it, and always the host for a DC found
// in DNS (it proves the name DNS gave).
func (cl *Client) tlsFor(s *server) *tls.Config {
	tcfg := cl.tls.Clone()
	if tcfg.ServerName == "" || s.discovered || cl.cfg.CheckIdentity {
		tcfg.ServerName = s.url.host
	}
	if tcfg.InsecureSkipVerify {
		cl.cfg.Logger.Warn("LDAPS CERTIFICATE VERIFICATION IS OFF: anyone on the path can read passwords", "dc", s.url.raw)
	}
	return tcfg
}

// connect dials s and, for LDAPS, completes the TLS handshake; for
// StartTLS the connection is plain until secure.
func (cl *Client) connect(ctx context.Context, s *server, tcfg *tls.Config) (*ldap.Conn, error) {
	raw, err := cl.cfg.Dialer.DialContext(ctx, "tcp", s.url.addr)
	if err != nil {
		return nil, err
	}
	if s.url.startTLS {
		l := ldap.NewConn(raw, false)
		l.Start()
		return l, nil
	}
	tc := tls.Client(raw, tcfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, err
	}
	l := ldap.NewConn(tc, true)
	l.Start()
	return l, nil
}

// secure runs StartTLS where the URL asks for it, refuses a connection
// that is not encrypted, and notes the DC's certificate.
func secure(l *ldap.Conn, s *server, tcfg *tls.Config) error {
	if s.url.startTLS {
		if err := l.StartTLS(tcfg); err != nil {
			return err
		}
	}
	st, ok := l.TLSConnectionState()
	if !ok || !st.HandshakeComplete {
		return errors.New("connection is not encrypted")
	}
	if len(st.PeerCertificates) > 0 {
		leaf := st.PeerCertificates[0]
		s.mu.Lock()
		s.certNotAfter, s.certSubject = leaf.NotAfter, leaf.Subject.String()
		s.mu.Unlock()
	}
	return nil
}
