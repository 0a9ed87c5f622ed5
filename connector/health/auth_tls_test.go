package health

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/adwriteback/adwriteback/integration/testca"
)

// mtls is a TLS listener serving NewHandler with a client CA: the server's
// CA (what clients trust), the client CA (what the listener trusts) and
// the listener's address.
type mtls struct {
	serverCA, clientCA *testca.CA
	addr               string
}

// serveMTLS starts Serve on a loopback port with a server certificate for
// 127.0.0.1 and the client CA file as tf's ClientCAFile (unless plain),
// serving the sample state guarded by o; it stops with the test.
func serveMTLS(t *testing.T, o Options, plain bool) *mtls {
	t.Helper()
	m := &mtls{serverCA: newCA(t, "server CA"), clientCA: newCA(t, "client CA")}
	dir := t.TempDir()
	certPEM, keyPEM, err := m.serverCA.ServerPEM("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	tf := TLSFiles{CertFile: writeFile(t, dir, "cert.pem", certPEM), KeyFile: writeFile(t, dir, "key.pem", keyPEM)}
	if !plain {
		tf.ClientCAFile = writeFile(t, dir, "client-ca.pem", m.clientCA.PEM())
	}
	recent := NewRecent(10)
	for _, r := range sampleRecords() {
		recent.Add(r)
	}
	st := &state{s: healthy()}
	o.Snapshot, o.Recent, o.Version = st.get, recent, "v1.2.3"
	o.Metrics = promhttp.HandlerFor(prometheus.NewRegistry(), promhttp.HandlerOpts{})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, tf, NewHandler(o)) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	m.addr = ln.Addr().String()
	return m
}

func newCA(t *testing.T, name string) *testca.CA {
	t.Helper()
	ca, err := testca.New(name)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// client is an HTTPS client trusting the server CA that presents cert (if
// given) whatever CAs the server names, as a hostile client would.
func (m *mtls) client(cert ...tls.Certificate) *http.Client {
	cfg := &tls.Config{RootCAs: m.serverCA.Pool()}
	if len(cert) > 0 {
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert[0], nil }
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
}

// get fetches path with c, with "Authorization: Bearer token" unless
// token is empty. A refused handshake is an error.
func (m *mtls) get(t *testing.T, c *http.Client, path, token string) (*http.Response, string, error) {
	t.Helper()
	req, err := http.NewRequest("GET", "https://"+m.addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

// outcome is what a test failure says of a request: the error, or the
// status, the WWW-Authenticate header and the body (its start).
func outcome(resp *http.Response, body string, err error) string {
	if err != nil {
		return "error " + err.Error()
	}
	if len(body) > 60 {
		body = body[:60] + "..."
	}
	return fmt.Sprintf("%d (WWW-Authenticate %q) %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
}

func clientCert(t *testing.T, ca *testca.CA, cn string, names ...string) tls.Certificate {
	t.Helper()
	c, err := ca.ClientCert(cn, names...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var guardedPaths = []string{"/status", "/", "/metrics", "/readyz"}

// TestClientCertGuardsAdminPages: with a client CA, a client without a
// certificate gets /livez but 401 on /status (and /), /metrics and
// /readyz, with a body that says a certificate is needed and nothing of
// the page; a certificate from the client CA reads every page; one from
// another CA, or one from the client CA made for servers only, does not
// get through the handshake.
func TestClientCertGuardsAdminPages(t *testing.T) {
	m := serveMTLS(t, Options{RequireClientCert: true}, false)
	anon := m.client()
	if resp, body, err := m.get(t, anon, "/livez", ""); err != nil || resp.StatusCode != 200 || body != "ok\n" {
		t.Fatalf("/livez without a certificate: %s, want 200", outcome(resp, body, err))
	}
	for _, path := range guardedPaths {
		resp, body, err := m.get(t, anon, path, "")
		if err != nil {
			t.Fatalf("%s without a certificate: %v", path, err)
		}
		if resp.StatusCode != http.StatusUnauthorized || body != "client certificate required\n" {
			t.Errorf("%s without a certificate: %s, want 401 %q", path, outcome(resp, body, nil), "client certificate required\n")
		}
	}
	good := m.client(clientCert(t, m.clientCA, "prometheus"))
	for _, path := range append(guardedPaths, "/livez") {
		resp, body, err := m.get(t, good, path, "")
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("%s with a client CA certificate: %s, want 200", path, outcome(resp, body, err))
		}
		if path == "/status" && !strings.Contains(body, "CN=Alice Martin") {
			t.Errorf("/status with a certificate lacks the page")
		}
	}
	serverOnly, err := m.clientCA.ServerCert("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*http.Client{
		"another CA's certificate":            m.client(clientCert(t, newCA(t, "rogue CA"), "prometheus")),
		"a server-only certificate of the CA": m.client(serverOnly),
	} {
		for _, path := range []string{"/metrics", "/livez"} {
			if resp, _, err := m.get(t, c, path, ""); err == nil {
				t.Errorf("%s with %s: %d, want the handshake refused", path, name, resp.StatusCode)
			}
		}
	}
}

// TestClientNames: with client names, a certificate of the client CA
// that carries one of them (as a DNS name or as its common name, in any
// case) reads the pages; one that carries none is 403 on each.
func TestClientNames(t *testing.T) {
	m := serveMTLS(t, Options{RequireClientCert: true, ClientNames: []string{"prometheus", "Scraper.Corp.Example"}}, false)
	for name, cert := range map[string]tls.Certificate{
		"CN":       clientCert(t, m.clientCA, "PROMETHEUS"),
		"DNS name": clientCert(t, m.clientCA, "scraper", "other.corp.example", "scraper.corp.example"),
	} {
		for _, path := range guardedPaths {
			if resp, body, err := m.get(t, m.client(cert), path, ""); err != nil || resp.StatusCode != http.StatusOK {
				t.Errorf("%s with the name as %s: %s, want 200", path, name, outcome(resp, body, err))
			}
		}
	}
	// The CN matches only as the CN: a DNS name of "prometheus" elsewhere
	// is a DNS name, and the name must match whole.
	for name, cert := range map[string]tls.Certificate{
		"an unlisted name":       clientCert(t, m.clientCA, "intruder", "intruder.corp.example"),
		"a name's suffix":        clientCert(t, m.clientCA, "x", "evil.scraper.corp.example"),
		"a listed name's prefix": clientCert(t, m.clientCA, "prometheus.evil.example"),
	} {
		for _, path := range guardedPaths {
			resp, body, err := m.get(t, m.client(cert), path, "")
			if err != nil || resp.StatusCode != http.StatusForbidden || body != "client certificate not allowed\n" {
				t.Errorf("%s with %s: %s, want 403 %q", path, name, outcome(resp, body, err), "client certificate not allowed\n")
			}
		}
	}
}

// TestClientCertAndBearerBothRequired: with a client CA and a token, a
// request needs both: the certificate alone is 401 asking for the token,
// the token alone is 401 asking for a certificate.
func TestClientCertAndBearerBothRequired(t *testing.T) {
	m := serveMTLS(t, Options{RequireClientCert: true, BearerToken: testToken}, false)
	cert := m.client(clientCert(t, m.clientCA, "prometheus"))
	for _, path := range guardedPaths {
		if resp, body, err := m.get(t, cert, path, testToken); err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("%s with both: %s, want 200", path, outcome(resp, body, err))
		}
		if resp, body, err := m.get(t, cert, path, ""); err != nil || resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != "Bearer" {
			t.Errorf("%s with the certificate only: %s, want 401 asking for the token", path, outcome(resp, body, err))
		}
		if resp, body, err := m.get(t, m.client(), path, testToken); err != nil || resp.StatusCode != http.StatusUnauthorized || body != "client certificate required\n" {
			t.Errorf("%s with the token only: %s, want 401 asking for a certificate", path, outcome(resp, body, err))
		}
	}
}

// TestClientCertFailsClosed: a handler that requires client certificates
// on a listener that verifies none (no client CA) refuses every guarded
// page, even to a client that presents a certificate.
func TestClientCertFailsClosed(t *testing.T) {
	m := serveMTLS(t, Options{RequireClientCert: true}, true)
	for _, path := range guardedPaths {
		resp, body, err := m.get(t, m.client(clientCert(t, m.clientCA, "prometheus")), path, "")
		if err != nil || resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: %s, want 401", path, outcome(resp, body, err))
		}
	}
}

// TestServeClientCAErrors: a client CA without a certificate and key, an
// unreadable one and one holding no certificate fail before serving.
func TestServeClientCAErrors(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, "server CA")
	certPEM, keyPEM, err := ca.ServerPEM("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	cert, key := writeFile(t, dir, "cert.pem", certPEM), writeFile(t, dir, "key.pem", keyPEM)
	caFile := writeFile(t, dir, "ca.pem", ca.PEM())
	ctx := context.Background()
	h := NewHandler(Options{})
	if err := ListenAndServe(ctx, "127.0.0.1:0", TLSFiles{ClientCAFile: caFile}, h); err == nil || !strings.Contains(err.Error(), "client certificates need TLS") {
		t.Errorf("client CA without TLS: %v", err)
	}
	if err := ListenAndServe(ctx, "127.0.0.1:0", TLSFiles{CertFile: cert, KeyFile: key, ClientCAFile: filepath.Join(dir, "none.pem")}, h); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing client CA: %v", err)
	}
	if err := ListenAndServe(ctx, "127.0.0.1:0", TLSFiles{CertFile: cert, KeyFile: key, ClientCAFile: key}, h); !errors.Is(err, errNoCertificate) {
		t.Errorf("client CA file holding a key: %v", err)
	}
}
