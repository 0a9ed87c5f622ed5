//go:build integration

package sbemu_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/coder/websocket"

	"github.com/adwriteback/adwriteback/integration/sbemu"
	"github.com/adwriteback/adwriteback/integration/testca"
)

// The TLS contract: the emulator listens like Azure for a namespace host name, and the
// unmodified SDK reaches it with its own TLS code, verifying the certificate for that name.
// AMQPS goes through the SDK's own dialer (CustomEndpoint only says where to connect); the
// WebSocket path dials the URL the SDK gives with a real WebSocket client, whose only help is
// a network dialer that resolves the host name to the loopback port, as DNS would.

const namespace = "adwtest.servicebus.windows.net"

// startTLS starts an emulator of the test's own with TLS, its certificate for namespace
// issued by a fresh test CA.
func startTLS(t *testing.T) *sbemu.Emulator {
	t.Helper()
	dir := t.TempDir()
	ca, err := testca.New("sbemu test CA")
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := ca.ServerPEM(namespace)
	if err != nil {
		t.Fatal(err)
	}
	o := &sbemu.TLSOptions{HostName: namespace,
		CAFile: filepath.Join(dir, "ca.pem"), CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem")}
	for path, b := range map[string][]byte{o.CAFile: ca.PEM(), o.CertFile: cert, o.KeyFile: key} {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return sbemu.Start(t, &sbemu.Options{TLS: o})
}

func rootCAs(t *testing.T, e *sbemu.Emulator) *x509.CertPool {
	t.Helper()
	p, err := e.RootCAs()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var quickRetry = azservicebus.RetryOptions{MaxRetries: 1, RetryDelay: 50 * time.Millisecond, MaxRetryDelay: 200 * time.Millisecond}

// amqpsClient is the SDK over AMQPS: the namespace connection string, TLS verified against
// roots, and the loopback listener as CustomEndpoint.
func amqpsClient(t *testing.T, e *sbemu.Emulator, roots *x509.CertPool) *azservicebus.Client {
	t.Helper()
	c, err := azservicebus.NewClientFromConnectionString(e.NamespaceConnectionString(), &azservicebus.ClientOptions{
		TLSConfig:      &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		CustomEndpoint: e.AMQPSEndpoint(),
		RetryOptions:   quickRetry,
	})
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// wsDial is the SDK's NewWebSocketConn: sbemu.WebSocketConn verifying TLS against roots, the
// network dialer resolving the namespace to the emulator. dialed records the URLs the SDK
// gives.
func wsDial(t *testing.T, e *sbemu.Emulator, roots *x509.CertPool, dialed chan<- string) func(context.Context, azservicebus.NewWebSocketConnArgs) (net.Conn, error) {
	hc := &http.Client{Transport: &http.Transport{
		DialContext:     e.DialContext,
		TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
	}}
	t.Cleanup(hc.CloseIdleConnections)
	dial := sbemu.WebSocketConn(hc)
	return func(ctx context.Context, args azservicebus.NewWebSocketConnArgs) (net.Conn, error) {
		if dialed != nil {
			select {
			case dialed <- args.Host:
			default:
			}
		}
		return dial(ctx, args)
	}
}

// errorLog keeps the errors a dialer returned.
type errorLog struct {
	mu   sync.Mutex
	errs []error
}

func (l *errorLog) add(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs = append(l.errs, err)
}

func (l *errorLog) first() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.errs) == 0 {
		return nil
	}
	return l.errs[0]
}

// wssClientRecording is wssClient keeping the dial errors in errs.
func wssClientRecording(t *testing.T, e *sbemu.Emulator, roots *x509.CertPool, errs *errorLog) *azservicebus.Client {
	t.Helper()
	dial := wsDial(t, e, roots, nil)
	c, err := azservicebus.NewClientFromConnectionString(e.NamespaceConnectionString(), &azservicebus.ClientOptions{
		NewWebSocketConn: func(ctx context.Context, args azservicebus.NewWebSocketConnArgs) (net.Conn, error) {
			conn, err := dial(ctx, args)
			if err != nil {
				errs.add(err)
			}
			return conn, err
		},
		RetryOptions: quickRetry,
	})
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

func wssClient(t *testing.T, e *sbemu.Emulator, roots *x509.CertPool, dialed chan<- string) *azservicebus.Client {
	t.Helper()
	c, err := azservicebus.NewClientFromConnectionString(e.NamespaceConnectionString(), &azservicebus.ClientOptions{
		NewWebSocketConn: wsDial(t, e, roots, dialed),
		RetryOptions:     quickRetry,
	})
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// sendReceiveComplete sends one message, receives it peek-lock and completes it, and checks
// the queue is then empty.
func sendReceiveComplete(t *testing.T, e *sbemu.Emulator, c *azservicebus.Client) {
	t.Helper()
	q := newQueue(t, e, sbemu.QueueOptions{LockDuration: 10 * time.Second})
	send(t, c, q, &azservicebus.Message{MessageID: ptr("tls-1"), Body: []byte("over tls")})
	r, err := c.NewReceiverForQueue(q, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	m := receiveOne(t, r)
	if string(m.Body) != "over tls" || m.MessageID != "tls-1" {
		t.Fatalf("got body %q id %q", m.Body, m.MessageID)
	}
	if err := r.CompleteMessage(ctxT(t, 5*time.Second), m, nil); err != nil {
		t.Fatalf("complete: %v", err)
	}
	if qs := queueState(t, e, q); qs.Active != 0 || qs.Locked != 0 || qs.Stats.Completed != 1 {
		t.Fatalf("after complete: active %d locked %d completed %d", qs.Active, qs.Locked, qs.Stats.Completed)
	}
}

// TestTLSAMQPS: send, peek-lock receive and complete over AMQPS with the SDK's own dialer,
// the certificate verified for the namespace host name.
func TestTLSAMQPS(t *testing.T) {
	e := startTLS(t)
	sendReceiveComplete(t, e, amqpsClient(t, e, rootCAs(t, e)))
}

// TestTLSWebSocket: the same over AMQP over WebSockets over TLS, at the URL the SDK gives.
func TestTLSWebSocket(t *testing.T) {
	e := startTLS(t)
	dialed := make(chan string, 1)
	sendReceiveComplete(t, e, wssClient(t, e, rootCAs(t, e), dialed))
	select {
	case u := <-dialed:
		if u != e.WebSocketURL() || u != "wss://"+namespace+sbemu.WebSocketPath {
			t.Fatalf("the SDK dialed %q, want %q", u, e.WebSocketURL())
		}
	default:
		t.Fatal("the SDK never called NewWebSocketConn")
	}
}

// TestTLSWebSocketRefusals: only /$servicebus/websocket with the subprotocol amqp (or
// AMQPWSB10) upgrades;
// the doubled path a dialer that appends the path to the SDK's URL produces is refused 404.
func TestTLSWebSocketRefusals(t *testing.T) {
	e := startTLS(t)
	hc := &http.Client{Transport: &http.Transport{DialContext: e.DialContext,
		TLSClientConfig: &tls.Config{RootCAs: rootCAs(t, e), MinVersion: tls.VersionTLS12}}}
	t.Cleanup(hc.CloseIdleConnections)
	for _, tc := range []struct {
		name, url    string
		subprotocols []string
		status       int
	}{
		{"doubled path", e.WebSocketURL() + sbemu.WebSocketPath, []string{"amqp"}, http.StatusNotFound},
		{"root", "wss://" + namespace + "/", []string{"amqp"}, http.StatusNotFound},
		{"trailing slash", e.WebSocketURL() + "/", []string{"amqp"}, http.StatusNotFound},
		{"no subprotocol", e.WebSocketURL(), nil, http.StatusBadRequest},
		{"other subprotocol", e.WebSocketURL(), []string{"mqtt"}, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, resp, err := websocket.Dial(ctxT(t, 10*time.Second), tc.url, &websocket.DialOptions{HTTPClient: hc, Subprotocols: tc.subprotocols})
			if err == nil {
				c.CloseNow()
				t.Fatalf("%s upgraded", tc.url)
			}
			if resp == nil || resp.StatusCode != tc.status {
				t.Fatalf("%s: response %v, error %v; want HTTP %d", tc.url, resp, err, tc.status)
			}
		})
	}
	// and the right one upgrades with the subprotocol echoed: amqp, or the draft name
	// AMQPWSB10 that Microsoft's other SDKs send
	for _, offer := range [][]string{{"amqp"}, {"AMQPWSB10"}, {"mqtt", "AMQPWSB10"}} {
		c, _, err := websocket.Dial(ctxT(t, 10*time.Second), e.WebSocketURL(), &websocket.DialOptions{HTTPClient: hc, Subprotocols: offer})
		if err != nil {
			t.Fatalf("upgrade at %s offering %v: %v", e.WebSocketURL(), offer, err)
		}
		if want := offer[len(offer)-1]; c.Subprotocol() != want {
			t.Errorf("offering %v: subprotocol %q, want %s", offer, c.Subprotocol(), want)
		}
		c.CloseNow()
	}
}

// TestTLSUntrustedCAFails: a client that does not trust the test CA (the system roots) fails
// TLS on both listeners, and the SDK gets no further; so does one that trusts the CA but
// expects another host name.
func TestTLSUntrustedCAFails(t *testing.T) {
	e := startTLS(t)
	system, err := x509.SystemCertPool()
	if err != nil {
		t.Fatal(err)
	}
	for _, ep := range []string{e.AMQPSEndpoint(), e.WebSocketEndpoint()} {
		d := tls.Dialer{Config: &tls.Config{ServerName: namespace, RootCAs: system, MinVersion: tls.VersionTLS12}}
		c, err := d.DialContext(ctxT(t, 10*time.Second), "tcp", ep)
		if err == nil {
			c.Close()
			t.Fatalf("%s: TLS with the system roots succeeded", ep)
		}
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) {
			t.Fatalf("%s: %v, want an unknown-authority error", ep, err)
		}
		d = tls.Dialer{Config: &tls.Config{ServerName: "other.servicebus.windows.net", RootCAs: rootCAs(t, e), MinVersion: tls.VersionTLS12}}
		c, err = d.DialContext(ctxT(t, 10*time.Second), "tcp", ep)
		if err == nil {
			c.Close()
			t.Fatalf("%s: TLS for another host name succeeded", ep)
		}
		var host x509.HostnameError
		if !errors.As(err, &host) {
			t.Fatalf("%s: %v, want a host name error", ep, err)
		}
	}

	// Through the SDK: azservicebus.Error has no Unwrap, so the SDK says only CodeConnectionLost
	// (classify a TLS failure by probing it, as above); the WebSocket dialer, which is the
	// caller's own code, sees the certificate verification error itself.
	q := newQueue(t, e, sbemu.QueueOptions{})
	var dialErrs errorLog
	for name, c := range map[string]*azservicebus.Client{
		"amqps": amqpsClient(t, e, system),
		"wss":   wssClientRecording(t, e, system, &dialErrs),
	} {
		s, err := c.NewSender(q, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = s.SendMessage(ctxT(t, 20*time.Second), &azservicebus.Message{Body: []byte("x")}, nil)
		_ = s.Close(context.Background())
		if code(err) != azservicebus.CodeConnectionLost {
			t.Fatalf("%s: send without trusting the CA: %v, want CodeConnectionLost", name, err)
		}
	}
	var verr *tls.CertificateVerificationError
	if first := dialErrs.first(); !errors.As(first, &verr) {
		t.Fatalf("WebSocket dial without trusting the CA: %v, want a certificate verification error", first)
	}
	if qs := queueState(t, e, q); qs.Stats.Enqueued != 0 {
		t.Fatalf("%d messages arrived over an unverified connection", qs.Stats.Enqueued)
	}
}

// TestTLSRestartAndDrop: fault injection reaches the TLS listeners too: dropped connections
// and a listener restart leave AMQPS and WebSocket clients able to go on, on the same ports.
func TestTLSRestartAndDrop(t *testing.T) {
	e := startTLS(t)
	amqps, wss := amqpsClient(t, e, rootCAs(t, e)), wssClient(t, e, rootCAs(t, e), nil)
	q := newQueue(t, e, sbemu.QueueOptions{LockDuration: 10 * time.Second})
	send(t, amqps, q, &azservicebus.Message{Body: []byte("one")})
	send(t, wss, q, &azservicebus.Message{Body: []byte("two")})
	n, err := e.DropConnections(context.Background())
	if err != nil || n < 2 {
		t.Fatalf("drop: %d %v, want both connections", n, err)
	}
	if err := e.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	send(t, amqps, q, &azservicebus.Message{Body: []byte("three")})
	send(t, wss, q, &azservicebus.Message{Body: []byte("four")})
	if qs := queueState(t, e, q); qs.Active != 4 {
		t.Fatalf("active %d, want 4", qs.Active)
	}
	select {
	case <-e.Exited():
		t.Fatalf("the emulator died:\n%s", e.Log())
	default:
	}
}
