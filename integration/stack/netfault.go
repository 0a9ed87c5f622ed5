package stack

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/adwriteback/adwriteback/integration/testca"
)

// FreeAddr is a loopback address with a port free right now.
func FreeAddr(tb TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("%v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

// HangingListener is a loopback address that accepts TCP connections and
// never answers (a DC that hangs); the test's cleanup closes it and every
// connection it took.
func HangingListener(tb TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("%v", err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	tb.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return l.Addr().String()
}

// Proxy listens on a fixed loopback port in front of a target (a DC's
// LDAPS port) and breaks the path on demand:
//   - passing (the default) it copies bytes both ways: the client talks
//     TLS to the target itself;
//   - Down closes the listener and every connection (the target is gone);
//     Up listens again on the same port;
//   - SetUntrusted(true) terminates TLS with a certificate from a CA
//     nobody trusts (right names, wrong issuer: a DC whose certificate was
//     replaced, or a machine in the middle) and counts what it gets
//     (Untrusted). Switching modes closes every open connection, so the
//     client must connect, and verify, again.
//
// The test's cleanup closes it.
type Proxy struct {
	tb     TB
	addr   string
	target string
	cert   *tls.Certificate

	untrusted atomic.Bool

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}

	attempts, completed, appBytes atomic.Int64
}

// ProxyOption configures a Proxy.
type ProxyOption func(*Proxy)

// UntrustedCert gives the proxy a server certificate for names and ips
// from a fresh CA no configuration trusts, for SetUntrusted.
func UntrustedCert(names []string, ips []net.IP) ProxyOption {
	return func(p *Proxy) {
		c, err := untrustedCert(names, ips)
		if err != nil {
			p.tb.Fatalf("stack: proxy certificate: %v", err)
		}
		p.cert = &c
	}
}

// NewProxy listens on a free loopback port in front of target.
func NewProxy(tb TB, target string, opts ...ProxyOption) *Proxy {
	tb.Helper()
	p := &Proxy{tb: tb, target: target, conns: map[net.Conn]struct{}{}}
	for _, o := range opts {
		o(p)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("%v", err)
	}
	p.addr = ln.Addr().String()
	p.listen(ln)
	tb.Cleanup(p.Down)
	return p
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.addr }

// Down closes the listener and every connection.
func (p *Proxy) Down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	p.dropLocked()
}

// Up listens again on the same port.
func (p *Proxy) Up() {
	p.tb.Helper()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.tb.Fatalf("%v", err)
	}
	p.listen(ln)
}

// SetUntrusted switches between passing and presenting the untrusted
// certificate, and drops every open connection.
func (p *Proxy) SetUntrusted(on bool) {
	if on && p.cert == nil {
		p.tb.Fatalf("stack: proxy has no untrusted certificate (UntrustedCert)")
	}
	p.untrusted.Store(on)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dropLocked()
}

// Untrusted counts what the proxy got while untrusted: TLS handshakes
// begun, handshakes the client completed, and application bytes read
// after one.
func (p *Proxy) Untrusted() (attempts, completed, appBytes int64) {
	return p.attempts.Load(), p.completed.Load(), p.appBytes.Load()
}

func (p *Proxy) dropLocked() {
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

func (p *Proxy) listen(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if p.untrusted.Load() {
				go p.terminate(c)
			} else {
				go p.pass(c)
			}
		}
	}()
}

func (p *Proxy) track(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
}

func (p *Proxy) untrack(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		delete(p.conns, c)
	}
}

func (p *Proxy) pass(c net.Conn) {
	s, err := net.DialTimeout("tcp", p.target, 10*time.Second)
	if err != nil {
		c.Close()
		return
	}
	p.track(c, s)
	defer p.untrack(c, s)
	go func() { io.Copy(s, c); s.Close() }()
	io.Copy(c, s)
	c.Close()
}

func (p *Proxy) terminate(c net.Conn) {
	p.track(c)
	defer p.untrack(c)
	defer c.Close()
	p.attempts.Add(1)
	tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{*p.cert}, MinVersion: tls.VersionTLS12})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		return // the client refused the certificate (or went away)
	}
	p.completed.Add(1)
	n, _ := io.Copy(io.Discard, tc)
	p.appBytes.Add(n)
}

// untrustedCert is a server certificate for names and ips, issued by a
// fresh CA that no configuration trusts.
func untrustedCert(names []string, ips []net.IP) (tls.Certificate, error) {
	ca, err := testca.New("Untrusted Fault CA")
	if err != nil {
		return tls.Certificate{}, err
	}
	hosts := append([]string(nil), names...)
	for _, ip := range ips {
		hosts = append(hosts, ip.String())
	}
	return ca.ServerCert(hosts...)
}
