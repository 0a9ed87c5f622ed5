//go:build integration

package trust

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
)

// trap is a host that should never get the service account's bind: it
// listens on addr (host:636), terminates TLS with cert and relays each
// LDAP message to the real DC over LDAPS, recording what arrived. A
// client that binds through it has sent the bind password to it.
type trap struct {
	ln net.Listener

	mu         sync.Mutex
	conns      int
	handshakes int
	ops        []int // LDAP protocolOp application tags, in order
}

// newTrap listens on addr with cert, relaying to upstream (the DC's LDAPS
// address, verified with roots).
func newTrap(t *testing.T, addr string, cert tls.Certificate, upstream string, roots *x509.CertPool) *trap {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("trap on %s: %v", addr, err)
	}
	tr := &trap{ln: ln}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				tr.serve(c, cert, upstream, roots)
			}()
		}
	}()
	return tr
}

func (tr *trap) serve(c net.Conn, cert tls.Certificate, upstream string, roots *x509.CertPool) {
	defer c.Close()
	tr.mu.Lock()
	tr.conns++
	tr.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err := tc.HandshakeContext(ctx); err != nil {
		return // the client refused the certificate
	}
	tr.mu.Lock()
	tr.handshakes++
	tr.mu.Unlock()
	host, _, _ := net.SplitHostPort(upstream)
	up, err := (&tls.Dialer{Config: &tls.Config{RootCAs: roots, ServerName: host, MinVersion: tls.VersionTLS12}}).
		DialContext(ctx, "tcp", upstream)
	if err != nil {
		return
	}
	defer up.Close()
	go func() { _, _ = io.Copy(tc, up); tc.Close() }()
	for {
		p, err := ber.ReadPacket(tc)
		if err != nil {
			return
		}
		if len(p.Children) > 1 {
			tr.mu.Lock()
			tr.ops = append(tr.ops, int(p.Children[1].Tag))
			tr.mu.Unlock()
		}
		if _, err := up.Write(p.Bytes()); err != nil {
			return
		}
	}
}

// seen reports the TCP connections accepted, the TLS handshakes the
// client completed, and the binds received.
func (tr *trap) seen() (conns, handshakes, binds int) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for _, op := range tr.ops {
		if op == ldap.ApplicationBindRequest {
			binds++
		}
	}
	return tr.conns, tr.handshakes, binds
}
