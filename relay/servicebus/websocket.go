package servicebus

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/coder/websocket"

	"github.com/adwriteback/adwriteback/relay/proxy"
)

// WebSocketSubprotocol is the subprotocol the connector asks for on the namespace's
// WebSocket endpoint: "amqp", the OASIS AMQP WebSocket Binding's name, which Service Bus
// accepts (the SDK's own WebSocket example uses it; older clients send "AMQPWSB10").
const WebSocketSubprotocol = "amqp"

// ErrWebSocket marks a failed WebSocket connection to the namespace (a proxy failure also
// matches proxy.ErrProxyAuth, ErrProxyRefused or ErrProxyUnreachable).
var ErrWebSocket = errors.New("servicebus: websocket connection failed")

// webSocketDialer connects AMQP over WebSockets. The SDK gives the full URL in args.Host
// (wss://<namespace>/$servicebus/websocket, see azservicebus internal/namespace.go): it is
// used as given, except that with a custom endpoint the TCP connection (through the proxy, if
// one applies) goes to that address while the Host header and the TLS server name stay the
// namespace's. The proxy is chosen, and NO_PROXY matched, for the namespace name.
func webSocketDialer(sel *proxy.Selector, tlsCfg *tls.Config, customEndpoint string, track *DialTracker) func(context.Context, azservicebus.NewWebSocketConnArgs) (net.Conn, error) {
	return func(ctx context.Context, args azservicebus.NewWebSocketConnArgs) (net.Conn, error) {
		c, err := DialWebSocket(ctx, sel, tlsCfg, customEndpoint, args.Host)
		track.record(err)
		if err != nil {
			return nil, err
		}
		return websocket.NetConn(context.Background(), c, websocket.MessageBinary), nil
	}
}

// DialWebSocket opens the WebSocket the AMQP connection runs on (see webSocketDialer); the
// doctor uses it to check the proxy and TLS path as the connector takes it. Errors wrap
// ErrWebSocket and are classified by proxy.Classify.
func DialWebSocket(ctx context.Context, sel *proxy.Selector, tlsCfg *tls.Config, customEndpoint, wsURL string) (*websocket.Conn, error) {
	u, err := url.Parse(wsURL)
	if err != nil || u.Scheme != "wss" || u.Host == "" {
		return nil, fmt.Errorf("%w: the SDK gave %q, not a wss:// URL", ErrWebSocket, wsURL)
	}
	name := u.Hostname()
	dialURL := *u
	if customEndpoint != "" {
		dialURL.Host = customEndpoint
		if _, _, err := net.SplitHostPort(customEndpoint); err != nil {
			dialURL.Host = net.JoinHostPort(customEndpoint, "443")
		}
	}
	var cfg *tls.Config
	if tlsCfg != nil {
		cfg = tlsCfg.Clone()
	} else {
		cfg = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	cfg.ServerName = name
	cfg.NextProtos = []string{"http/1.1"} // the upgrade is HTTP/1.1 only
	// choose the proxy (and match NO_PROXY) for the namespace, as the admin names it
	tr, err := sel.Fixed(&url.URL{Scheme: "https", Host: u.Host}, cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrWebSocket, err)
	}
	tr.ForceAttemptHTTP2 = false
	hc := &http.Client{Transport: tr}
	defer hc.CloseIdleConnections()
	c, resp, err := websocket.Dial(ctx, dialURL.String(), &websocket.DialOptions{
		HTTPClient: hc, Host: u.Host, Subprotocols: []string{WebSocketSubprotocol},
	})
	if err != nil {
		status := ""
		if resp != nil {
			status = fmt.Sprintf(" (HTTP %d)", resp.StatusCode)
		}
		return nil, fmt.Errorf("%w: %s%s: %w", ErrWebSocket, u.Host, status, proxy.Classify(err))
	}
	c.SetReadLimit(-1)
	return c, nil
}

// DialTracker remembers why the last WebSocket connection attempt failed. The SDK reports a
// failed dial as its own error (code connlost) without wrapping the cause, so the proxy's
// 407 would be lost on the way; a Source (and the doctor) given the same tracker as the
// client's Config explains its link errors with it (Explain). Safe for concurrent use; a
// nil tracker records nothing.
type DialTracker struct {
	mu   sync.Mutex
	last error
}

// NewDialTracker returns an empty tracker.
func NewDialTracker() *DialTracker { return &DialTracker{} }

func (t *DialTracker) record(err error) {
	if t == nil {
		return
	}
	t.mu.Lock()
	t.last = err
	t.mu.Unlock()
}

// Last is the error of the last connection attempt, or nil if it succeeded (or none was
// made).
func (t *DialTracker) Last() error {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.last
}

// Explain wraps err with the last connection failure, if the last attempt failed, so that
// errors.Is finds its cause (proxy.ErrProxyAuth, ErrWebSocket, ...).
func (t *DialTracker) Explain(err error) error {
	last := t.Last()
	if err == nil || last == nil || errors.Is(err, last) {
		return err
	}
	return &explained{cause: last, sdk: err}
}

// explained is an SDK error explained by the connection failure behind it: it reads as the
// cause (the SDK's text repeats it) and matches both.
type explained struct{ cause, sdk error }

func (e *explained) Error() string   { return e.cause.Error() }
func (e *explained) Unwrap() []error { return []error{e.cause, e.sdk} }
