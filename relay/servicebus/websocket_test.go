package servicebus

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"github.com/adwriteback/adwriteback/relay/proxy"
	"github.com/adwriteback/adwriteback/relay/proxy/proxytest"
	"github.com/adwriteback/adwriteback/relay/servicebus/wstest"
	"github.com/adwriteback/adwriteback/relay/transport"
)

// testNamespace is the namespace name the in-process endpoint's certificate is for.
const testNamespace = "adwtest.servicebus.windows.net"

// noEnvProxy keeps the machine's proxy settings out of a test.
func noEnvProxy(t *testing.T) {
	for _, k := range []string{"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"} {
		t.Setenv(k, "")
	}
}

// sdkWebSocketURL is what azservicebus gives NewWebSocketConnArgs.Host for a namespace.
func sdkWebSocketURL(ns string) string { return "wss://" + ns + "/$servicebus/websocket" }

// dialProduction dials the in-process endpoint with the production dialer and checks
// that bytes go both ways.
func dialProduction(t *testing.T, p proxy.Config, ws *wstest.Server) error {
	t.Helper()
	sel, err := proxy.New(p)
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg, err := tlsConfig(ws.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := webSocketDialer(sel, tlsCfg, ws.Addr(), nil)(ctx, azservicebus.NewWebSocketConnArgs{Host: sdkWebSocketURL(testNamespace)})
	if err != nil {
		return err
	}
	defer c.Close()
	want := []byte("AMQP\x00\x01\x00\x00")
	if _, err := c.Write(want); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("echo: %q, %v", got, err)
	}
	return nil
}

// receiveOnce builds the SDK's client from cfg with a SAS connection string for the test
// namespace and no retries, and makes one receive call (whose outcome is not the point).
func receiveOnce(t *testing.T, cfg Config) {
	t.Helper()
	cfg.Auth = AuthConnectionString
	cfg.ConnectionString = "Endpoint=sb://" + testNamespace + "/;SharedAccessKeyName=k;SharedAccessKey=eA=="
	cfg.RetryOptions = azservicebus.RetryOptions{MaxRetries: -1}
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	r, err := c.NewReceiverForQueue("q", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _ = r.ReceiveMessages(ctx, 1, nil)
}

// TestWebSocketDialerUsesSDKURLAsGiven: the SDK's own client, with the production dialer
// (no fake), upgrades at exactly /$servicebus/websocket with the amqp subprotocol, the
// namespace as Host and TLS server name, and TLS verified against queue.ca_file, while the
// TCP connection goes to the custom endpoint.
func TestWebSocketDialerUsesSDKURLAsGiven(t *testing.T) {
	noEnvProxy(t)
	ws := wstest.Start(t, testNamespace, func(c net.Conn) { _ = c.Close() })
	// the endpoint closes after the upgrade, so the receive fails: the request is the point
	receiveOnce(t, Config{Transport: TransportWebSockets, CAFile: ws.CAFile, CustomEndpoint: ws.Addr()})
	reqs := ws.Requests()
	if len(reqs) == 0 {
		t.Fatal("the SDK never reached the endpoint")
	}
	got := reqs[0]
	if got.Path != wstest.Path || got.Host != testNamespace || got.ServerName != testNamespace ||
		!slices.Equal(got.Subprotocols, []string{wstest.Subprotocol}) || !got.Accepted {
		t.Fatalf("upgrade request %+v; want path %s, host and SNI %s, subprotocol %s",
			got, wstest.Path, testNamespace, wstest.Subprotocol)
	}
}

// TestWebSocketDialerVerifiesTLS: without the CA file the endpoint's certificate is refused.
func TestWebSocketDialerVerifiesTLS(t *testing.T) {
	noEnvProxy(t)
	ws := wstest.Start(t, testNamespace, wstest.Echo)
	sel, _ := proxy.New(proxy.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := webSocketDialer(sel, nil, ws.Addr(), nil)(ctx, azservicebus.NewWebSocketConnArgs{Host: sdkWebSocketURL(testNamespace)})
	if err == nil || !errors.Is(err, ErrWebSocket) {
		t.Fatalf("untrusted certificate accepted: %v", err)
	}
	if ws.Accepted() != 0 {
		t.Fatal("upgrade went through an unverified TLS connection")
	}
}

// TestWebSocketThroughProxy: the production dialer through a real CONNECT proxy with basic
// authentication: the right password works (CONNECT goes to the custom endpoint), a wrong
// one is ErrProxyAuth without the password in the text, a NO_PROXY match goes direct, and
// an unreachable proxy is ErrProxyUnreachable.
func TestWebSocketThroughProxy(t *testing.T) {
	noEnvProxy(t)
	ws := wstest.Start(t, testNamespace, wstest.Echo)
	px := proxytest.Start(t, proxytest.Options{Username: "svc-adw", Password: "right-proxy-pw"})

	if err := dialProduction(t, proxy.Config{URL: px.URL(), Username: "svc-adw", Password: "right-proxy-pw"}, ws); err != nil {
		t.Fatalf("right password: %v", err)
	}
	if got := px.Targets(); !slices.Equal(got, []string{ws.Addr()}) {
		t.Fatalf("CONNECT targets %v, want [%s]", got, ws.Addr())
	}

	err := dialProduction(t, proxy.Config{URL: px.URL(), Username: "svc-adw", Password: "wrong-proxy-pw"}, ws)
	if !errors.Is(err, proxy.ErrProxyAuth) || !errors.Is(err, ErrWebSocket) {
		t.Fatalf("wrong password: %v, want ErrProxyAuth", err)
	}
	if strings.Contains(err.Error(), "wrong-proxy-pw") || strings.Contains(err.Error(), "right-proxy-pw") {
		t.Fatalf("the proxy password is in the error: %v", err)
	}
	if px.Refused() != 1 {
		t.Fatalf("proxy refused %d CONNECTs, want 1", px.Refused())
	}

	accepted := ws.Accepted()
	if err := dialProduction(t, proxy.Config{URL: px.URL(), Username: "svc-adw", Password: "wrong-proxy-pw",
		NoProxy: []string{".windows.net"}}, ws); err != nil {
		t.Fatalf("NO_PROXY match: %v", err)
	}
	if len(px.Targets()) != 1 || px.Refused() != 1 || ws.Accepted() != accepted+1 {
		t.Fatalf("NO_PROXY match went through the proxy: targets %v refused %d", px.Targets(), px.Refused())
	}

	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "http://" + dead.Addr().String()
	dead.Close()
	if err := dialProduction(t, proxy.Config{URL: deadURL}, ws); !errors.Is(err, proxy.ErrProxyUnreachable) {
		t.Fatalf("unreachable proxy: %v, want ErrProxyUnreachable", err)
	}
}

// TestWrongProxyPasswordReachesHealth: through the real SDK client, a 407 from the proxy
// reaches the Source's link state (hence /readyz) as ErrProxyAuth, with no password.
func TestWrongProxyPasswordReachesHealth(t *testing.T) {
	noEnvProxy(t)
	ws := wstest.Start(t, testNamespace, wstest.Echo)
	px := proxytest.Start(t, proxytest.Options{Username: "svc-adw", Password: "right-proxy-pw"})
	dials := NewDialTracker()
	c, err := NewClient(Config{
		Auth:             AuthConnectionString,
		ConnectionString: "Endpoint=sb://" + testNamespace + "/;SharedAccessKeyName=k;SharedAccessKey=eA==",
		Transport:        TransportWebSockets, CAFile: ws.CAFile, CustomEndpoint: ws.Addr(),
		Proxy:        proxy.Config{URL: px.URL(), Username: "svc-adw", Password: "wrong-proxy-pw"},
		RetryOptions: azservicebus.RetryOptions{MaxRetries: -1}, Dials: dials,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	lw := &syncWriter{w: &bytes.Buffer{}}
	src, err := NewSource(c, SourceConfig{Queue: "q", Prefetch: 1, Concurrency: 1, ShutdownGrace: time.Second, Dials: dials,
		Logger: slog.New(slog.NewTextHandler(lw, nil))},
		transport.HandlerFunc(func(context.Context, *transport.Delivery) transport.Disposition {
			t.Error("no message can arrive")
			return transport.Disposition{}
		}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx) }()
	waitUntil(t, "the link's last error to be ErrProxyAuth", func() bool {
		return errors.Is(src.Health().LastError, proxy.ErrProxyAuth)
	})
	cancel()
	<-done
	h := src.Health()
	if h.State == LinkUp || strings.Contains(h.LastError.Error(), "wrong-proxy-pw") || strings.Contains(lw.String(), "wrong-proxy-pw") {
		t.Fatalf("state %s, error %v; the password must not show", h.State, h.LastError)
	}
	var sbErr *azservicebus.Error
	if !errors.As(h.LastError, &sbErr) {
		t.Fatalf("the SDK's own error is no longer matched: %v", h.LastError)
	}
	t.Logf("last error: %v", h.LastError)
	if !strings.Contains(lw.String(), "407") {
		t.Fatalf("the log does not say the proxy answered 407: %s", lw.String())
	}
}

// syncWriter serialises writes to a buffer the test reads afterwards.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprint(s.w)
}

// TestEntraTokenRequestsUseTheProxy: the credential's token requests go through the same
// proxy (azcore's transport), not around it, and trust queue.ca_file as the namespace does.
func TestEntraTokenRequestsUseTheProxy(t *testing.T) {
	noEnvProxy(t)
	ws := wstest.Start(t, "login.microsoftonline.com", wstest.Echo) // any TLS server will do
	px := proxytest.Start(t, proxytest.Options{Username: "svc-adw", Password: "right-proxy-pw",
		Resolve: map[string]string{"login.microsoftonline.com:443": ws.Addr()}})
	t.Setenv("AZURE_AUTHORITY_HOST", "")
	cred, err := Credential(Config{Auth: AuthClientSecret, Namespace: testNamespace, TenantID: "00000000-0000-0000-0000-000000000001",
		ClientID: "00000000-0000-0000-0000-000000000002", ClientSecret: "s", Transport: TransportWebSockets,
		Proxy: proxy.Config{URL: px.URL(), Username: "svc-adw", Password: "right-proxy-pw"}, CAFile: ws.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	// the proxy sends Entra's host to a local server, trusted through ca_file, which answers
	// 404: the call fails, after the CONNECT and the verified request the test is about
	_, err = cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://servicebus.azure.net/.default"}})
	if got := px.Targets(); !slices.Contains(got, "login.microsoftonline.com:443") {
		t.Fatalf("CONNECT targets %v, want login.microsoftonline.com:443 (GetToken: %v)", got, err)
	}
	if reqs := ws.Requests(); len(reqs) == 0 || reqs[0].Host != "login.microsoftonline.com" {
		t.Fatalf("no token request reached the server over TLS verified with ca_file: %v (GetToken: %v)", reqs, err)
	}
}

func TestNamespaceHost(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Namespace: "ns.servicebus.windows.net"}, "ns.servicebus.windows.net"},
		{Config{ConnectionString: "Endpoint=sb://cs.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=eA=="}, "cs.servicebus.windows.net"},
		{Config{ConnectionString: "SharedAccessKey=eA=="}, ""},
	} {
		if got := c.cfg.NamespaceHost(); got != c.want {
			t.Errorf("%q: %q, want %q", c.cfg.ConnectionString, got, c.want)
		}
	}
}

// TestAMQPSCustomEndpointVerifiesNamespace: with transport amqp the SDK dials the custom
// endpoint itself, and TLS there names and verifies the namespace with queue.ca_file; without
// the CA file the handshake is refused.
func TestAMQPSCustomEndpointVerifiesNamespace(t *testing.T) {
	cert, caFile := wstest.Issue(t, testNamespace)
	type hello struct {
		sni string
		err error
	}
	hellos := make(chan hello, 16)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tc := c.(*tls.Conn)
			err = tc.Handshake()
			hellos <- hello{tc.ConnectionState().ServerName, err}
			c.Close()
		}
	}()
	dial := func(ca string) hello {
		t.Helper()
		// the listener closes after the handshake, so the receive fails
		receiveOnce(t, Config{Transport: TransportAMQP, CAFile: ca, CustomEndpoint: ln.Addr().String()})
		select {
		case h := <-hellos:
			return h
		case <-time.After(10 * time.Second):
			t.Fatal("the SDK never reached the custom endpoint")
		}
		return hello{}
	}
	if h := dial(caFile); h.err != nil || h.sni != testNamespace {
		t.Fatalf("with ca_file: SNI %q, handshake %v; want %s and success", h.sni, h.err, testNamespace)
	}
	for len(hellos) > 0 { // retries of the same receive
		<-hellos
	}
	if h := dial(""); h.err == nil {
		t.Fatal("without ca_file the client accepted a certificate from an unknown CA")
	}
}

// TestAuthorityHostIsTrustedAsGiven: with queue.authority_host the token request goes to
// that host (through the proxy, TLS verified with ca_file), with no instance discovery at
// the public cloud.
func TestAuthorityHostIsTrustedAsGiven(t *testing.T) {
	noEnvProxy(t)
	t.Setenv("AZURE_AUTHORITY_HOST", "")
	ws := wstest.Start(t, "login.adwtest.example", wstest.Echo)
	px := proxytest.Start(t, proxytest.Options{Resolve: map[string]string{"login.adwtest.example:443": ws.Addr()}})
	cred, err := Credential(Config{Auth: AuthClientSecret, Namespace: testNamespace, TenantID: "00000000-0000-0000-0000-000000000001",
		ClientID: "00000000-0000-0000-0000-000000000002", ClientSecret: "s", Transport: TransportWebSockets,
		Proxy: proxy.Config{URL: px.URL()}, CAFile: ws.CAFile, AuthorityHost: "https://login.adwtest.example/"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://servicebus.azure.net/.default"}})
	if got := px.Targets(); len(got) == 0 || slices.ContainsFunc(got, func(s string) bool { return s != "login.adwtest.example:443" }) {
		t.Fatalf("CONNECT targets %v, want only login.adwtest.example:443 (GetToken: %v)", got, err)
	}
	if len(ws.Requests()) == 0 {
		t.Fatalf("no request reached the authority (GetToken: %v)", err)
	}
	if err := (Config{Auth: AuthClientSecret, Namespace: testNamespace, TenantID: "t", ClientID: "c", ClientSecret: "s",
		AuthorityHost: "http://login.adwtest.example/"}).Validate(); err == nil || !strings.Contains(err.Error(), "authority_host") {
		t.Fatalf("http authority accepted: %v", err)
	}
}
