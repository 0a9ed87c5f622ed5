//go:build integration

package faults

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// tlsProxy listens on a loopback port in front of a DC's LDAPS port. In
// passthrough mode it copies bytes both ways (the client talks TLS to the
// DC itself). In untrusted mode it terminates TLS with a certificate from
// a CA nobody trusts (right names, wrong issuer: a DC whose certificate was
// replaced by an untrusted one, or a machine in the middle) and counts what
// it gets: handshakes begun, handshakes completed, and application bytes
// read after one. Switching modes closes every open connection, so the
// client must connect (and verify) again.
type tlsProxy struct {
	addr   string
	target string
	cert   tls.Certificate

	untrusted atomic.Bool

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}

	// Untrusted mode only.
	attempts  atomic.Int64 // TLS handshakes begun
	completed atomic.Int64 // TLS handshakes the client finished
	appBytes  atomic.Int64 // application data read after a handshake
}

func newTLSProxy(t *testing.T, target string, names []string, ips []net.IP) *tlsProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tlsProxy{addr: ln.Addr().String(), target: target, ln: ln, conns: map[net.Conn]struct{}{},
		cert: untrustedCert(t, names, ips)}
	t.Cleanup(p.close)
	go p.serve(ln)
	return p
}

// untrustedCert is a server certificate for names and ips, issued by a
// fresh CA that no configuration trusts.
func untrustedCert(t *testing.T, names []string, ips []net.IP) tls.Certificate {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Untrusted Fault CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: names[0]},
		DNSNames: names, IPAddresses: ips,
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der, caDER}, PrivateKey: key}
}

// setUntrusted switches the mode and drops every open connection.
func (p *tlsProxy) setUntrusted(on bool) {
	p.untrusted.Store(on)
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

func (p *tlsProxy) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ln.Close()
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

func (p *tlsProxy) track(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
}

func (p *tlsProxy) untrack(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		delete(p.conns, c)
	}
}

func (p *tlsProxy) serve(ln net.Listener) {
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
}

func (p *tlsProxy) pass(c net.Conn) {
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

func (p *tlsProxy) terminate(c net.Conn) {
	p.track(c)
	defer p.untrack(c)
	defer c.Close()
	p.attempts.Add(1)
	tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{p.cert}, MinVersion: tls.VersionTLS12})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		return // the client refused the certificate (or went away)
	}
	p.completed.Add(1)
	n, _ := io.Copy(io.Discard, tc)
	p.appBytes.Add(n)
}
