// Package wstest runs a Service Bus-shaped WebSocket endpoint in the test process: TLS with a
// certificate for the namespace name, signed by a CA of its own (written to a file, as
// queue.ca_file takes it), accepting only the path /$servicebus/websocket and the "amqp"
// subprotocol, and handing each accepted connection's bytes to a backend: an echo, or a
// pipe to a plain AMQP broker (the emulator) so the real SDK speaks AMQP over it.
package wstest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// Path is the only path the endpoint accepts, as Service Bus serves it.
const Path = "/$servicebus/websocket"

// Subprotocol is the only subprotocol the endpoint accepts.
const Subprotocol = "amqp"

// Request is what the endpoint saw of one upgrade request.
type Request struct {
	Path, Host, ServerName string
	Subprotocols           []string
	Accepted               bool
}

// Server is a running endpoint.
type Server struct {
	// Name is the namespace name its certificate is for.
	Name string
	// CAFile holds the PEM of the CA that signed the certificate.
	CAFile string

	srv     *httptest.Server
	backend func(net.Conn)

	mu    sync.Mutex
	reqs  []Request
	conns map[net.Conn]struct{}
}

// Echo is a backend that writes back what it reads.
func Echo(c net.Conn) { _, _ = io.Copy(c, c) }

// PipeTo is a backend that connects each WebSocket to addr (a plain TCP AMQP broker).
func PipeTo(addr string) func(net.Conn) {
	return func(c net.Conn) {
		up, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return
		}
		defer up.Close()
		go func() { _, _ = io.Copy(up, c); _ = up.Close() }()
		_, _ = io.Copy(c, up)
	}
}

// Start starts an endpoint for the namespace name on 127.0.0.1 with the given backend, and
// stops it when the test ends.
func Start(t testing.TB, name string, backend func(net.Conn)) *Server {
	t.Helper()
	s := &Server{Name: name, backend: backend, conns: map[net.Conn]struct{}{}}
	cert, caFile := Issue(t, name)
	s.CAFile = caFile
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	s.srv.StartTLS()
	t.Cleanup(func() {
		s.CloseConns()
		s.srv.Close()
	})
	return s
}

// Addr is the endpoint's host:port (a custom endpoint for the namespace).
func (s *Server) Addr() string { return s.srv.Listener.Addr().String() }

// Requests returns the upgrade requests seen so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.reqs...)
}

// Accepted counts the WebSockets accepted so far.
func (s *Server) Accepted() int {
	n := 0
	for _, r := range s.Requests() {
		if r.Accepted {
			n++
		}
	}
	return n
}

// CloseConns closes every open WebSocket.
func (s *Server) CloseConns() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		_ = c.Close()
	}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	req := Request{Path: r.URL.Path, Host: r.Host, Subprotocols: websocketProtocols(r)}
	if r.TLS != nil {
		req.ServerName = r.TLS.ServerName
	}
	ok := r.URL.Path == Path && slices.Contains(req.Subprotocols, Subprotocol)
	req.Accepted = ok
	s.mu.Lock()
	s.reqs = append(s.reqs, req)
	s.mu.Unlock()
	if !ok {
		http.Error(w, "not a Service Bus WebSocket request", http.StatusNotFound)
		return
	}
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{Subprotocol}})
	if err != nil {
		return
	}
	ws.SetReadLimit(-1)
	c := websocket.NetConn(context.Background(), ws, websocket.MessageBinary)
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		_ = c.Close()
	}()
	s.backend(c)
}

func websocketProtocols(r *http.Request) []string {
	var out []string
	for _, v := range r.Header.Values("Sec-WebSocket-Protocol") {
		for p := range strings.SplitSeq(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// Issue makes a CA and a certificate for name signed by it; the CA's PEM is written to the
// returned file.
func Issue(t testing.TB, name string) (tls.Certificate, string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "wstest CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: name},
		DNSNames: []string{name}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, caFile
}
