//go:build integration

package stack

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"github.com/adwriteback/adwriteback/integration/sbemu"
)

func port(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// connect sends CONNECT target through the proxy with the credential auth
// ("" none) and returns the proxy's status and, on 200, the tunnel.
func connect(t *testing.T, p *HTTPProxy, target, auth string) (int, net.Conn) {
	t.Helper()
	c, err := net.DialTimeout("tcp", p.Addr(), 5*time.Second)
	if err != nil {
		t.Fatalf("dial proxy: %v", err)
	}
	req := &http.Request{Method: http.MethodConnect, URL: &url.URL{Opaque: target}, Host: target, Header: http.Header{}}
	if auth != "" {
		req.Header.Set("Proxy-Authorization", auth)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if err := req.Write(c); err != nil {
		c.Close()
		t.Fatalf("CONNECT: %v", err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		c.Close()
		t.Fatalf("CONNECT response: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		c.Close()
		return resp.StatusCode, nil
	}
	c.SetDeadline(time.Time{})
	return resp.StatusCode, c
}

func echoThrough(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write([]byte("ping\n")); err != nil {
		t.Fatalf("write through the tunnel: %v", err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "ping\n" {
		t.Fatalf("read through the tunnel: %q %v", line, err)
	}
}

// TestHTTPProxyAuth: tinyproxy with Basic auth lets CONNECT through with
// the right credential only (no credential 407, a wrong one 401), and only
// to the ports allowed (403); the password file holds the password; the
// log never holds the password.
func TestHTTPProxyAuth(t *testing.T) {
	target := echo(t)
	other := echo(t)
	dir := t.TempDir()
	p := StartProxy(t, dir, ProxyOptions{User: "corp-user", Password: "Right-pass.42", ConnectPorts: []int{port(t, target)}})
	if !strings.HasPrefix(p.URL(), "http://127.0.0.1:") || p.User() != "corp-user" {
		t.Fatalf("URL %s, user %s", p.URL(), p.User())
	}
	if b, err := os.ReadFile(p.PasswordFile()); err != nil || string(b) != "Right-pass.42\n" {
		t.Fatalf("password file: %q %v", b, err)
	}

	status, c := connect(t, p, target, p.BasicCredential())
	if status != http.StatusOK {
		t.Fatalf("right credential: HTTP %d\n%s", status, p.Log())
	}
	echoThrough(t, c)
	c.Close()

	wrong := "Basic " + basic("corp-user", "wrong-pass")
	for _, tc := range []struct {
		name, target, auth string
		want               int
	}{
		{"no credential", target, "", ProxyStatusNoCredentials},
		{"wrong password", target, wrong, ProxyStatusWrongCredentials},
		{"wrong user", target, "Basic " + basic("someone", "Right-pass.42"), ProxyStatusWrongCredentials},
		{"port not allowed", other, p.BasicCredential(), ProxyStatusPortRefused},
	} {
		if status, c := connect(t, p, tc.target, tc.auth); status != tc.want {
			if c != nil {
				c.Close()
			}
			t.Errorf("%s: HTTP %d, want %d", tc.name, status, tc.want)
		}
	}
	if strings.Contains(p.Log(), p.Password()) {
		t.Errorf("the proxy log holds the password")
	}
	if !strings.Contains(p.Log(), "CONNECT") {
		t.Errorf("the proxy log shows no CONNECT:\n%s", p.Log())
	}
}

func basic(user, pass string) string {
	req := &http.Request{Header: http.Header{}}
	req.SetBasicAuth(user, pass)
	return strings.TrimPrefix(req.Header.Get("Authorization"), "Basic ")
}

// TestHTTPProxyGoClient: Go's own HTTP client reaches an HTTPS server
// through the proxy with the credential in the proxy URL, and is refused
// without it.
func TestHTTPProxyGoClient(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "through") }))
	t.Cleanup(srv.Close)
	p := StartProxy(t, t.TempDir(), ProxyOptions{ConnectPorts: []int{port(t, srv.Listener.Addr().String())}})
	get := func(proxy *url.URL) (string, error) {
		tr := &http.Transport{Proxy: http.ProxyURL(proxy), TLSClientConfig: &tls.Config{RootCAs: srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}}
		defer tr.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	u, _ := url.Parse(p.URL())
	u.User = url.UserPassword(p.User(), p.Password())
	if body, err := get(u); err != nil || body != "through" {
		t.Fatalf("through the proxy: %q %v\n%s", body, err, p.Log())
	}
	u.User = nil
	if _, err := get(u); err == nil {
		t.Fatal("no credential: the request went through")
	}
}

// TestHTTPProxyCutsIdleTunnels: a tunnel idle for IdleTimeout is closed
// by the proxy; Down ends the proxy and its tunnels, Up brings it back on
// the same address.
func TestHTTPProxyCutsIdleTunnels(t *testing.T) {
	target := echo(t)
	p := StartProxy(t, t.TempDir(), ProxyOptions{IdleTimeout: time.Second, ConnectPorts: []int{port(t, target)}})
	if p.IdleTimeout() != time.Second {
		t.Fatalf("idle timeout %v", p.IdleTimeout())
	}
	status, c := connect(t, p, target, p.BasicCredential())
	if status != http.StatusOK {
		t.Fatalf("HTTP %d", status)
	}
	defer c.Close()
	echoThrough(t, c)
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, err := c.Read(make([]byte, 1))
	if !errors.Is(err, io.EOF) {
		t.Fatalf("idle tunnel: read %v, want EOF from the proxy cutting it", err)
	}
	if idle := time.Since(start); idle < 500*time.Millisecond {
		t.Fatalf("the tunnel was cut after %v, before the idle timeout", idle)
	}

	status, c2 := connect(t, p, target, p.BasicCredential())
	if status != http.StatusOK {
		t.Fatalf("HTTP %d", status)
	}
	defer c2.Close()
	p.Down()
	c2.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c2.Read(make([]byte, 1)); err == nil {
		t.Fatal("a tunnel outlived the proxy")
	}
	if c, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		c.Close()
		t.Fatal("the proxy still listens after Down")
	}
	p.Up()
	status, c3 := connect(t, p, target, p.BasicCredential())
	if status != http.StatusOK {
		t.Fatalf("after Up: HTTP %d", status)
	}
	echoThrough(t, c3)
	c3.Close()
}

// proxiedClient is the unmodified SDK over a real WebSocket client whose
// only settings are the proxy URL (with the proxy's credential, or none)
// and the stack's CA: it dials wss://<namespace>/$servicebus/websocket as
// the SDK gives it, and the proxy resolves the namespace.
func proxiedClient(t *testing.T, env *Env, withCredential bool) *azservicebus.Client {
	t.Helper()
	roots, err := env.Emu.RootCAs()
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := url.Parse(env.Proxy.URL())
	if err != nil {
		t.Fatal(err)
	}
	if withCredential {
		proxy.User = url.UserPassword(env.Proxy.User(), env.Proxy.Password())
	}
	hc := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxy),
		TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}}
	t.Cleanup(hc.CloseIdleConnections)
	c, err := azservicebus.NewClientFromConnectionString(env.Emu.NamespaceConnectionString(), &azservicebus.ClientOptions{
		RetryOptions:     azservicebus.RetryOptions{MaxRetries: 2, RetryDelay: 50 * time.Millisecond, MaxRetryDelay: 500 * time.Millisecond},
		NewWebSocketConn: sbemu.WebSocketConn(hc),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func sendOne(c *azservicebus.Client, queue, id string) error {
	s, err := c.NewSender(queue, nil)
	if err != nil {
		return err
	}
	defer s.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return s.SendMessage(ctx, &azservicebus.Message{MessageID: to(id), Body: []byte("through the proxy " + id)}, nil)
}

// TestEmulatorTLSThroughProxy: the stack's edge as a deployment meets it.
// With WithEmulatorTLS and WithProxy, the unmodified SDK over a real
// WebSocket client reaches wss://<namespace>/$servicebus/websocket with
// nothing but the proxy URL, its credential and the stack's CA: the proxy
// resolves the namespace (its hosts file) and tunnels to port 443; TLS is
// verified for the namespace. Without the credential the proxy refuses.
func TestEmulatorTLSThroughProxy(t *testing.T) {
	env := New(t, WithEmulatorTLS(), WithProxy(ProxyOptions{IdleTimeout: 30 * time.Second}))
	if env.Emu.HostName() != Namespace || env.Emu.WebSocketURL() != "wss://"+Namespace+"/$servicebus/websocket" {
		t.Fatalf("namespace %q, URL %q", env.Emu.HostName(), env.Emu.WebSocketURL())
	}
	if !strings.HasSuffix(env.Emu.WebSocketEndpoint(), ":443") || !strings.HasSuffix(env.Emu.AMQPSEndpoint(), ":5671") {
		t.Fatalf("endpoints %s %s, want Azure's ports", env.Emu.WebSocketEndpoint(), env.Emu.AMQPSEndpoint())
	}
	if env.Emu.CAFile() != env.CAFile() {
		t.Fatalf("emulator CA %s, stack CA %s", env.Emu.CAFile(), env.CAFile())
	}
	if err := sendOne(proxiedClient(t, env, true), env.Queue, "edge-1"); err != nil {
		t.Fatalf("send through the proxy: %v\n%s", err, env.Proxy.Log())
	}
	if st := env.QueueState(env.Queue); st.Active != 1 || st.Messages[0].MessageID != "edge-1" {
		t.Fatalf("queue after send: %+v", st)
	}
	if !strings.Contains(env.Proxy.Log(), "CONNECT "+Namespace+":443") {
		t.Errorf("the proxy did not tunnel to the namespace:\n%s", env.Proxy.Log())
	}
	if err := sendOne(proxiedClient(t, env, false), env.Queue, "edge-2"); err == nil {
		t.Fatal("send through the proxy without its credential succeeded")
	}
	if st := env.QueueState(env.Queue); st.Stats.Enqueued != 1 {
		t.Fatalf("%d messages enqueued, want 1", st.Stats.Enqueued)
	}
}

// TestProxyIdleCutSDKRecovers: the proxy cuts the SDK's idle WebSocket
// tunnel (the emulator sees no connection left); the same client and
// receiver then send and receive again, and nothing is lost.
func TestProxyIdleCutSDKRecovers(t *testing.T) {
	env := New(t, WithEmulatorTLS(), WithProxy(ProxyOptions{IdleTimeout: 2 * time.Second}))
	c := proxiedClient(t, env, true)
	r, err := c.NewReceiverForQueue(env.Queue, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	receive := func(id string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// after a lost connection ReceiveMessages returns nothing once, then recovers
		for {
			msgs, err := r.ReceiveMessages(ctx, 1, nil)
			if err != nil {
				t.Fatalf("receive %s: %v\n%s", id, err, env.Proxy.Log())
			}
			if len(msgs) == 0 {
				continue
			}
			if msgs[0].MessageID != id {
				t.Fatalf("received %s, want %s", msgs[0].MessageID, id)
			}
			if err := r.CompleteMessage(ctx, msgs[0], nil); err != nil {
				t.Fatalf("complete %s: %v", id, err)
			}
			return
		}
	}
	if err := sendOne(c, env.Queue, "before-cut"); err != nil {
		t.Fatal(err)
	}
	receive("before-cut")
	WaitFor(t, 30*time.Second, "the proxy to cut the idle tunnel", func() bool {
		n, err := env.Emu.Connections(context.Background())
		return err == nil && n == 0
	})
	if err := sendOne(c, env.Queue, "after-cut"); err != nil {
		t.Fatalf("send after the cut: %v", err)
	}
	receive("after-cut")
	st := env.QueueState(env.Queue)
	if st.Active != 0 || st.Locked != 0 || st.Stats.Completed != 2 || len(st.DeadLetters) != 0 {
		t.Fatalf("queue: active %d locked %d completed %d dead %d", st.Active, st.Locked, st.Stats.Completed, len(st.DeadLetters))
	}
}

func to[T any](v T) *T { return &v }

// TestHostsWrapResolves: a program run under HostsWrap resolves the
// namespace to the emulator's TLS address (and localhost still to
// loopback); the machine's own /etc/hosts is left as it was.
func TestHostsWrapResolves(t *testing.T) {
	before, err := os.ReadFile("/etc/hosts")
	if err != nil {
		t.Fatal(err)
	}
	env := New(t, WithEmulatorTLS())
	wrap := env.HostsWrap()
	if len(wrap) == 0 {
		t.Fatal("no HostsWrap with WithEmulatorTLS")
	}
	args := append(append([]string(nil), wrap...), "getent", "hosts", Namespace, "localhost")
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %v\n%s", args, err, out)
	}
	if !strings.Contains(string(out), env.Emu.ListenIP()+" ") || !strings.Contains(string(out), Namespace) {
		t.Fatalf("under HostsWrap %s resolves as:\n%s\nwant %s", Namespace, out, env.Emu.ListenIP())
	}
	if !strings.Contains(string(out), "127.0.0.1") && !strings.Contains(string(out), "::1") {
		t.Errorf("localhost does not resolve under HostsWrap:\n%s", out)
	}
	after, err := os.ReadFile("/etc/hosts")
	if err != nil || string(after) != string(before) {
		t.Fatalf("/etc/hosts changed: %v", err)
	}
}
