// Package sbemu starts and drives the project's Azure Service Bus emulator (emulator.js, an
// AMQP 1.0 server on the npm library rhea run with Node.js) for integration tests and
// benchmarks. It owns the emulator's process lifecycle, its connection string, and the
// loopback control channel used to create queues and inject faults.
//
// The emulator speaks plain AMQP over TCP on 127.0.0.1; the azservicebus SDK is pointed at it
// with a connection string carrying UseDevelopmentEmulator=true (see ConnectionString).
//
// With Options.TLS it also listens like Azure, for a namespace host name such as
// adwtest.servicebus.windows.net with a certificate the caller issued for it: AMQPS (AMQP over
// TLS, Azure's port 5671) on AMQPSEndpoint, and AMQP over WebSockets over TLS (Azure's 443) on
// WebSocketEndpoint at exactly WebSocketPath with the subprotocol "amqp" or AMQPWSB10
// (another path is refused with 404, an upgrade without either with 400). The SDK reaches
// them with NamespaceConnectionString and its own TLS code: ClientOptions.TLSConfig trusting
// CAFile and CustomEndpoint = AMQPSEndpoint for AMQPS (the SDK still verifies the
// certificate for the host name), or a NewWebSocketConn that dials the URL the SDK gives
// (WebSocketURL) with DialContext as its network dialer, which resolves the host name to the
// loopback port.
//
// Message size follows the Service Bus quotas of the namespace tier (Options.Tier): Standard
// caps a message at 256 KB; Premium at the queue's MaxMessageSizeInKilobytes (1 MB unless set,
// up to 100 MB). The cap is advertised on link attach, so the SDK refuses a larger message with
// azservicebus.ErrMessageTooLarge, and enforced again when a message arrives.
package sbemu

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// DefaultKeyName is the SAS key name the emulator accepts unless Options say otherwise.
const DefaultKeyName = "RootManageSharedAccessKey"

// Tier is the Service Bus namespace tier the emulator models.
type Tier string

// Namespace tiers.
const (
	// TierStandard caps every message at StandardMaxMessageSize.
	TierStandard Tier = "standard"
	// TierPremium caps a message at its queue's MaxMessageSizeInKilobytes.
	TierPremium Tier = "premium"
)

// Message size quotas, as Service Bus sets them. A message's size is its encoded AMQP form
// (body, properties and annotations).
const (
	StandardMaxMessageSize = 256 << 10
	// PremiumDefaultMaxMessageSizeKB is a Premium queue's cap unless set; Premium allows
	// PremiumMinMaxMessageSizeKB to PremiumMaxMaxMessageSizeKB.
	PremiumDefaultMaxMessageSizeKB = 1024
	PremiumMinMaxMessageSizeKB     = 1024
	PremiumMaxMaxMessageSizeKB     = 102400
	// SnapshotBodyMax is the largest body a Queue snapshot carries; a larger one is reported
	// by size only (MessageState.BodyOmitted).
	SnapshotBodyMax = 256 << 10
)

// ErrNodeMissing is returned when node or npm cannot be found on PATH.
var ErrNodeMissing = errors.New("sbemu: Node.js (node and npm) is required to run the Service Bus emulator; install Node.js 18+ (Debian: apt-get install nodejs npm)")

// Options configure an emulator process. The zero value is usable.
type Options struct {
	// KeyName and Key are the SAS key the emulator verifies put-token signatures against.
	// Empty Key: a random one.
	KeyName string
	Key     string
	// Dir is the directory holding emulator.js and package.json. Empty: this package's
	// source directory.
	Dir string
	// Debug makes the emulator log protocol events to its stderr.
	Debug bool
	// StartTimeout bounds npm ci plus process start. Zero: 2 minutes.
	StartTimeout time.Duration
	// Tier is the namespace tier, which sets the message size cap. Empty: TierStandard.
	Tier Tier
	// TLS, if set, makes the emulator listen with TLS too: AMQPS and WebSockets. Plain AMQP
	// stays on Endpoint.
	TLS *TLSOptions

	// JWT makes the namespace trust Entra ID tokens of one issuer (integration/entra): a CBS
	// put-token of type jwt is checked for its signature, issuer, audience, exp and nbf, and a
	// link opens only if the token's roles allow it. Zero: every jwt put-token is refused.
	JWT JWTOptions
}

// JWTOptions name the token issuer the emulator trusts.
type JWTOptions struct {
	// JWKSFile holds the issuer's signing keys (a JWKS, RSA keys); "": no issuer trusted.
	JWKSFile string
	// Issuer is the iss the tokens must carry.
	Issuer string
	// Audience is the aud they must carry; "": https://servicebus.azure.net.
	Audience string
}

// env is the emulator's environment for o.
func (o JWTOptions) env() []string {
	if o.JWKSFile == "" {
		return nil
	}
	return []string{"SBEMU_JWKS_FILE=" + o.JWKSFile, "SBEMU_JWT_ISSUER=" + o.Issuer, "SBEMU_JWT_AUDIENCE=" + o.Audience}
}

// TLSOptions make the emulator listen like Azure for a namespace host name.
type TLSOptions struct {
	// CertFile and KeyFile are PEM files: a server certificate for HostName and its key.
	CertFile, KeyFile string
	// CAFile is the PEM file of the CA that issued the certificate, for the clients
	// (Emulator.CAFile, RootCAs); the emulator does not read it.
	CAFile string
	// HostName is the namespace host name (e.g. adwtest.servicebus.windows.net): the
	// connection strings' endpoint, the name the clients verify.
	HostName string
	// ListenIP is the loopback address the TLS listeners bind. "": 127.0.0.1.
	ListenIP string
	// AMQPSPort and WebSocketPort are the TLS listeners' ports. 0: free ones. Azure's own
	// (the constants AMQPSPort and WebSocketPort) on a ListenIP of the test's own let a client
	// whose resolver maps HostName to ListenIP (a private /etc/hosts) connect exactly as to
	// Azure.
	AMQPSPort, WebSocketPort int
}

// WebSocketPath is where Service Bus serves AMQP over WebSockets; the SDK dials
// wss://<namespace>/$servicebus/websocket.
const WebSocketPath = "/$servicebus/websocket"

// The ports Azure serves AMQPS and WebSockets on; DialContext maps them on the namespace host
// name to the emulator's loopback ports.
const (
	AMQPSPort     = 5671
	WebSocketPort = 443
)

// ErrNoTLS is returned by what needs the TLS listeners of an emulator started without
// Options.TLS.
var ErrNoTLS = errors.New("sbemu: the emulator was started without TLS (Options.TLS)")

// Emulator is a running emulator process.
type Emulator struct {
	keyName, key string
	amqpPort     int
	controlPort  int
	ctl          *http.Client
	tls          *TLSOptions // nil: plain AMQP only
	amqpsPort    int
	wssPort      int

	cmd     *exec.Cmd
	stdin   io.WriteCloser
	done    chan struct{}
	waitErr error

	logMu sync.Mutex
	log   bytes.Buffer
}

// Start starts an emulator for the test and stops it at test end (t.Cleanup). It fails the test
// with a clear message when Node.js is missing or the emulator cannot start.
func Start(t testing.TB, opts *Options) *Emulator {
	t.Helper()
	var o Options
	if opts != nil {
		o = *opts
	}
	timeout := o.StartTimeout
	if timeout == 0 {
		timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	e, err := StartProcess(ctx, o)
	if err != nil {
		t.Fatalf("start Service Bus emulator: %v", err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Logf("sbemu: stop: %v", err)
		}
		if t.Failed() {
			t.Logf("sbemu stderr:\n%s", e.Log())
		}
	})
	return e
}

// StartProcess starts an emulator without a testing.TB; the caller must Close it.
func StartProcess(ctx context.Context, o Options) (*Emulator, error) {
	if o.KeyName == "" {
		o.KeyName = DefaultKeyName
	}
	if o.Key == "" {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("sbemu: random key: %w", err)
		}
		o.Key = base64.StdEncoding.EncodeToString(b)
	}
	switch o.Tier {
	case "":
		o.Tier = TierStandard
	case TierStandard, TierPremium:
	default:
		return nil, fmt.Errorf("sbemu: unknown tier %q (want %q or %q)", o.Tier, TierStandard, TierPremium)
	}
	dir := o.Dir
	if dir == "" {
		dir = sourceDir()
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, ErrNodeMissing
	}
	if err := ensureDeps(ctx, dir); err != nil {
		return nil, err
	}

	e := &Emulator{keyName: o.KeyName, key: o.Key, done: make(chan struct{}),
		ctl: &http.Client{Timeout: 10 * time.Second}}
	args := []string{filepath.Join(dir, "emulator.js"),
		"--host", "127.0.0.1", "--port", "0", "--control-port", "0",
		"--key-name", o.KeyName, "--key", o.Key, "--tier", string(o.Tier)}
	if o.TLS != nil {
		if o.TLS.CertFile == "" || o.TLS.KeyFile == "" || o.TLS.HostName == "" {
			return nil, fmt.Errorf("sbemu: TLS needs CertFile, KeyFile and HostName")
		}
		t := *o.TLS
		if t.ListenIP == "" {
			t.ListenIP = "127.0.0.1"
		}
		e.tls = &t
		args = append(args, "--tls-cert", t.CertFile, "--tls-key", t.KeyFile, "--tls-host", t.ListenIP,
			"--amqps-port", strconv.Itoa(t.AMQPSPort), "--wss-port", strconv.Itoa(t.WebSocketPort))
	}
	cmd := exec.Command(node, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), o.JWT.env()...)
	if o.Debug {
		cmd.Env = append(cmd.Env, "SBEMU_DEBUG=1")
	}
	cmd.Stderr = &lockedWriter{mu: &e.logMu, w: &e.log}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("sbemu: stdout pipe: %w", err)
	}
	// The emulator exits when its stdin closes, so it never outlives this process.
	e.stdin, err = cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("sbemu: stdin pipe: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("sbemu: start node: %w", err)
	}
	e.cmd = cmd
	go func() {
		e.waitErr = cmd.Wait()
		close(e.done)
	}()

	type ready struct {
		Ready       bool `json:"ready"`
		AMQPPort    int  `json:"amqpPort"`
		AMQPSPort   int  `json:"amqpsPort"`
		WSSPort     int  `json:"wssPort"`
		ControlPort int  `json:"controlPort"`
	}
	lineCh := make(chan ready, 1)
	errCh := make(chan error, 1)
	go func() {
		r := bufio.NewReader(stdout)
		line, err := r.ReadBytes('\n')
		if err != nil {
			errCh <- fmt.Errorf("sbemu: emulator exited before it was ready: %w", err)
			return
		}
		var rd ready
		if err := json.Unmarshal(line, &rd); err != nil || !rd.Ready {
			errCh <- fmt.Errorf("sbemu: unexpected first line from emulator: %q", line)
			return
		}
		lineCh <- rd
		_, _ = io.Copy(io.Discard, r)
	}()
	select {
	case rd := <-lineCh:
		e.amqpPort, e.controlPort = rd.AMQPPort, rd.ControlPort
		e.amqpsPort, e.wssPort = rd.AMQPSPort, rd.WSSPort
	case err := <-errCh:
		_ = e.Close()
		return nil, fmt.Errorf("%w\n%s", err, e.Log())
	case <-ctx.Done():
		_ = e.Close()
		return nil, fmt.Errorf("sbemu: waiting for the emulator to start: %w\n%s", ctx.Err(), e.Log())
	}
	// The ready line is printed after listen(); confirm with one real connection each.
	addrs := []string{e.Endpoint()}
	if e.tls != nil {
		if e.amqpsPort == 0 || e.wssPort == 0 {
			_ = e.Close()
			return nil, fmt.Errorf("sbemu: the emulator did not report its TLS ports\n%s", e.Log())
		}
		addrs = append(addrs, e.AMQPSEndpoint(), e.WebSocketEndpoint())
	}
	d := net.Dialer{}
	for _, a := range addrs {
		c, err := d.DialContext(ctx, "tcp", a)
		if err != nil {
			_ = e.Close()
			return nil, fmt.Errorf("sbemu: emulator does not accept connections: %w", err)
		}
		_ = c.Close()
	}
	return e, nil
}

// Close stops the emulator process and waits for it to exit.
func (e *Emulator) Close() error {
	if e.cmd == nil {
		return nil
	}
	_ = e.stdin.Close()
	select {
	case <-e.done:
	case <-time.After(5 * time.Second):
		_ = e.cmd.Process.Kill()
		<-e.done
	}
	var ee *exec.ExitError
	if e.waitErr != nil && !errors.As(e.waitErr, &ee) {
		return e.waitErr
	}
	return nil
}

// Exited is closed when the emulator process has exited.
func (e *Emulator) Exited() <-chan struct{} { return e.done }

// Log returns what the emulator wrote to stderr so far.
func (e *Emulator) Log() string {
	e.logMu.Lock()
	defer e.logMu.Unlock()
	return e.log.String()
}

// Endpoint is host:port of the AMQP listener.
func (e *Emulator) Endpoint() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(e.amqpPort)) }

// KeyName and Key are the SAS credentials the emulator accepts.
func (e *Emulator) KeyName() string { return e.keyName }

// Key is the SAS key the emulator accepts.
func (e *Emulator) Key() string { return e.key }

// ConnectionString is a Service Bus connection string for the emulator with the right key.
func (e *Emulator) ConnectionString() string { return e.ConnectionStringWithKey(e.key) }

// ConnectionStringWithKey is a connection string carrying another key (e.g. a wrong one).
func (e *Emulator) ConnectionStringWithKey(key string) string {
	return fmt.Sprintf("Endpoint=sb://%s;SharedAccessKeyName=%s;SharedAccessKey=%s;UseDevelopmentEmulator=true",
		e.Endpoint(), e.keyName, key)
}

// HostName is the namespace host name of a TLS emulator ("" without TLS).
func (e *Emulator) HostName() string {
	if e.tls == nil {
		return ""
	}
	return e.tls.HostName
}

// CAFile is the CA file of a TLS emulator, as given in TLSOptions ("" without TLS).
func (e *Emulator) CAFile() string {
	if e.tls == nil {
		return ""
	}
	return e.tls.CAFile
}

// RootCAs is a pool holding the certificates of CAFile: what a client that trusts the
// emulator's CA, and only it, verifies against.
func (e *Emulator) RootCAs() (*x509.CertPool, error) {
	if e.tls == nil {
		return nil, ErrNoTLS
	}
	b, err := os.ReadFile(e.tls.CAFile)
	if err != nil {
		return nil, fmt.Errorf("sbemu: CA file: %w", err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("sbemu: no certificate in CA file %s", e.tls.CAFile)
	}
	return p, nil
}

// ListenIP is the address the TLS listeners bind ("" without TLS): what a resolver maps
// HostName to.
func (e *Emulator) ListenIP() string {
	if e.tls == nil {
		return ""
	}
	return e.tls.ListenIP
}

// AMQPSEndpoint is host:port of the AMQPS listener ("" without TLS): the SDK's
// ClientOptions.CustomEndpoint.
func (e *Emulator) AMQPSEndpoint() string {
	if e.tls == nil {
		return ""
	}
	return net.JoinHostPort(e.tls.ListenIP, strconv.Itoa(e.amqpsPort))
}

// WebSocketEndpoint is host:port of the AMQP-over-WebSockets-over-TLS listener ("" without
// TLS).
func (e *Emulator) WebSocketEndpoint() string {
	if e.tls == nil {
		return ""
	}
	return net.JoinHostPort(e.tls.ListenIP, strconv.Itoa(e.wssPort))
}

// WebSocketURL is the URL the SDK gives NewWebSocketConn (NewWebSocketConnArgs.Host):
// wss://<host name>/$servicebus/websocket ("" without TLS).
func (e *Emulator) WebSocketURL() string {
	if e.tls == nil {
		return ""
	}
	return "wss://" + e.tls.HostName + WebSocketPath
}

// NamespaceConnectionString is a connection string for the namespace host name, as Azure's
// portal gives it (no UseDevelopmentEmulator, so the SDK uses TLS), with the right key. It
// reaches the emulator only with CustomEndpoint (AMQPS) or DialContext (WebSockets). ""
// without TLS.
func (e *Emulator) NamespaceConnectionString() string {
	return e.NamespaceConnectionStringWithKey(e.key)
}

// NamespaceConnectionStringWithKey is NamespaceConnectionString carrying another key.
func (e *Emulator) NamespaceConnectionStringWithKey(key string) string {
	if e.tls == nil {
		return ""
	}
	return fmt.Sprintf("Endpoint=sb://%s/;SharedAccessKeyName=%s;SharedAccessKey=%s", e.tls.HostName, e.keyName, key)
}

// Resolve maps an address on the namespace host name to the emulator's listener: port 443
// (or none) to the WebSocket listener, 5671 to AMQPS. Any other address is returned as it
// is, with false.
func (e *Emulator) Resolve(addr string) (string, bool) {
	if e.tls == nil {
		return addr, false
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		host, port = addr, strconv.Itoa(WebSocketPort)
	}
	if !strings.EqualFold(host, e.tls.HostName) {
		return addr, false
	}
	switch port {
	case strconv.Itoa(WebSocketPort), "https", "wss":
		return e.WebSocketEndpoint(), true
	case strconv.Itoa(AMQPSPort), "amqps":
		return e.AMQPSEndpoint(), true
	}
	return addr, false
}

// DialContext dials addr over the network after Resolve: the namespace host name resolves to
// the emulator as DNS would resolve it to Azure (the ports mapped too). Use it as the network
// dialer of an HTTP transport under a WebSocket client; TLS and the upgrade stay the client's.
func (e *Emulator) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	a, _ := e.Resolve(addr)
	var d net.Dialer
	return d.DialContext(ctx, network, a)
}

// QueueOptions describe a queue. Zero values take Service Bus defaults (lock 60 s,
// MaxDeliveryCount 10, no TTL, no sessions, no duplicate detection).
type QueueOptions struct {
	LockDuration             time.Duration
	MaxDeliveryCount         int
	DefaultTTL               time.Duration
	RequiresSession          bool
	DuplicateDetectionWindow time.Duration
	// NoDeadLetterOnExpiry drops expired messages instead of dead-lettering them.
	NoDeadLetterOnExpiry bool
	// MaxMessageSizeInKilobytes is the message size cap of a queue on a Premium namespace
	// (PremiumMinMaxMessageSizeKB..PremiumMaxMaxMessageSizeKB). Zero: the tier's cap. Setting it
	// on a Standard namespace is refused, as Service Bus does.
	MaxMessageSizeInKilobytes int64
}

// MessageState is a message as the control endpoint reports it.
type MessageState struct {
	SequenceNumber        int64  `json:"sequenceNumber"`
	MessageID             string `json:"messageId"`
	SessionID             string `json:"sessionId"`
	DeliveryCount         int    `json:"deliveryCount"`
	Locked                bool   `json:"locked"`
	DeadLetterReason      string `json:"deadLetterReason"`
	DeadLetterDescription string `json:"deadLetterDescription"`
	// Body is nil when the body is larger than SnapshotBodyMax (BodyOmitted); BodySize is the
	// body's length either way.
	Body        []byte `json:"body"`
	BodySize    int    `json:"bodySize"`
	BodyOmitted bool   `json:"bodyOmitted"`
}

// QueueState is a snapshot of a queue.
type QueueState struct {
	Name           string         `json:"name"`
	Tier           Tier           `json:"tier"`
	MaxMessageSize int64          `json:"maxMessageSizeBytes"` // the cap in bytes
	Active         int            `json:"active"`
	Locked         int            `json:"locked"`
	DeadLettered   int            `json:"deadLettered"`
	Waiting        int            `json:"waiting"` // accept-next-session receivers waiting
	Consumers      int            `json:"consumers"`
	Messages       []MessageState `json:"messages"`
	LockedMessages []MessageState `json:"lockedMessages"`
	DeadLetters    []MessageState `json:"deadLetters"`
	Stats          struct {
		Enqueued     int `json:"enqueued"`
		Completed    int `json:"completed"`
		DeadLettered int `json:"deadLettered"`
		Duplicates   int `json:"duplicates"`
		Expired      int `json:"expired"`
		// TooLarge counts deliveries the emulator rejected as over the size cap (a sender
		// that honours the attach's max-message-size never sends them).
		TooLarge int `json:"tooLarge"`
		// Refused counts transfers rejected while RefuseSends was on.
		Refused int `json:"refused"`
	} `json:"stats"`
	// RefuseSends is whether sends to the queue are being refused (Emulator.RefuseSends).
	RefuseSends bool `json:"refuseSends"`

	// Deferred messages are set aside by defer and reached by sequence number; scheduled ones
	// wait for their scheduled enqueue time.
	Deferred          int            `json:"deferred"`
	Scheduled         int            `json:"scheduled"`
	DeferredMessages  []MessageState `json:"deferredMessages"`
	ScheduledMessages []MessageState `json:"scheduledMessages"`
}

// CreateQueue creates a queue (and its dead-letter sub-queue).
func (e *Emulator) CreateQueue(ctx context.Context, name string, q QueueOptions) error {
	body := map[string]any{
		"lockDurationMs":             q.LockDuration.Milliseconds(),
		"maxDeliveryCount":           q.MaxDeliveryCount,
		"defaultTtlMs":               q.DefaultTTL.Milliseconds(),
		"requiresSession":            q.RequiresSession,
		"duplicateDetectionWindowMs": q.DuplicateDetectionWindow.Milliseconds(),
		"deadLetterOnExpiry":         !q.NoDeadLetterOnExpiry,
	}
	if q.MaxDeliveryCount == 0 {
		delete(body, "maxDeliveryCount")
	}
	if q.MaxMessageSizeInKilobytes != 0 {
		body["maxMessageSizeInKilobytes"] = q.MaxMessageSizeInKilobytes
	}
	return e.control(ctx, http.MethodPut, "/queues/"+url.PathEscape(name), body, nil)
}

// SetMaxMessageSize changes a Premium queue's message size cap, as updating the queue's
// MaxMessageSizeInKilobytes does. Links already attached keep the max-message-size they were
// told; the new cap applies when a message arrives (a larger one is rejected with
// amqp:link:message-size-exceeded).
func (e *Emulator) SetMaxMessageSize(ctx context.Context, queue string, kilobytes int64) error {
	return e.control(ctx, http.MethodPatch, "/queues/"+url.PathEscape(queue),
		map[string]any{"maxMessageSizeInKilobytes": kilobytes}, nil)
}

// Queue returns a snapshot of a queue with its active, locked and dead-lettered messages.
func (e *Emulator) Queue(ctx context.Context, name string) (*QueueState, error) {
	var qs QueueState
	if err := e.control(ctx, http.MethodGet, "/queues/"+url.PathEscape(name), nil, &qs); err != nil {
		return nil, err
	}
	return &qs, nil
}

// Connections is the number of client TCP connections open now, on every listener: a test
// waits on it for a connection to go away (a proxy cutting an idle tunnel) or to come back.
func (e *Emulator) Connections(ctx context.Context) (int, error) {
	var r struct{ Connections int }
	err := e.control(ctx, http.MethodGet, "/healthz", nil, &r)
	return r.Connections, err
}

// DropConnections closes every client connection at the TCP level (state is kept).
func (e *Emulator) DropConnections(ctx context.Context) (int, error) {
	var r struct{ Dropped int }
	err := e.control(ctx, http.MethodPost, "/faults/drop-connections", nil, &r)
	return r.Dropped, err
}

// DetachLinks force-detaches (amqp:link:detach-forced) every receiver link of a queue; an empty
// queue name detaches all. Locks held by those links are lost.
func (e *Emulator) DetachLinks(ctx context.Context, queue string) (int, error) {
	var r struct{ Detached int }
	err := e.control(ctx, http.MethodPost, "/faults/detach-links?queue="+url.QueryEscape(queue), nil, &r)
	return r.Detached, err
}

// ExpireLocks expires every lock on the queue now (as if the lock duration had passed): the
// messages become available again and settling them fails with lock lost.
func (e *Emulator) ExpireLocks(ctx context.Context, queue string) (int, error) {
	var r struct{ Expired int }
	err := e.control(ctx, http.MethodPost, "/faults/expire-locks?queue="+url.QueryEscape(queue), nil, &r)
	return r.Expired, err
}

// RefuseSends turns on (or off) refusing sends to a queue as Service Bus does for an entity
// whose sending is disabled: each transfer to it is rejected with com.microsoft:entity-disabled,
// which azservicebus reports at once as a failed send (a fatal error, not retried); the link
// stays attached, so sends succeed again as soon as it is turned off. Receiving is unaffected.
func (e *Emulator) RefuseSends(ctx context.Context, queue string, on bool) error {
	v := "0"
	if on {
		v = "1"
	}
	return e.control(ctx, http.MethodPost, "/faults/refuse-sends?queue="+url.QueryEscape(queue)+"&on="+v, nil, nil)
}

// StopListener stops accepting connections and drops existing ones; queues are kept, as a
// broker restart with durable storage would.
func (e *Emulator) StopListener(ctx context.Context) error {
	return e.control(ctx, http.MethodPost, "/listener/stop", nil, nil)
}

// StartListener listens again on the same port.
func (e *Emulator) StartListener(ctx context.Context) error {
	return e.control(ctx, http.MethodPost, "/listener/start", nil, nil)
}

// Restart stops and restarts the listener (StopListener then StartListener).
func (e *Emulator) Restart(ctx context.Context) error {
	if err := e.StopListener(ctx); err != nil {
		return err
	}
	return e.StartListener(ctx)
}

// ControlError is a non-2xx answer from the control endpoint.
type ControlError struct {
	Status int
	Body   string
}

func (e *ControlError) Error() string {
	return fmt.Sprintf("sbemu control: HTTP %d: %s", e.Status, e.Body)
}

// maxControlReply bounds a control reply (a snapshot carries bodies up to SnapshotBodyMax).
const maxControlReply = 64 << 20

func (e *Emulator) control(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	u := "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(e.controlPort)) + path
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return err
	}
	resp, err := e.ctl.Do(req)
	if err != nil {
		return fmt.Errorf("sbemu control %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxControlReply+1))
	if err != nil {
		return fmt.Errorf("sbemu control %s %s: read: %w", method, path, err)
	}
	if len(b) > maxControlReply {
		return fmt.Errorf("sbemu control %s %s: reply larger than %d bytes", method, path, maxControlReply)
	}
	if resp.StatusCode/100 != 2 {
		return &ControlError{Status: resp.StatusCode, Body: string(b)}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("sbemu control %s %s: decode: %w", method, path, err)
		}
	}
	return nil
}

func sourceDir() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "."
	}
	return filepath.Dir(file)
}

// ensureDeps runs npm ci when node_modules lacks a package that package.json names. A file
// lock serialises concurrent test binaries (go test runs packages in parallel).
func ensureDeps(ctx context.Context, dir string) error {
	ok, err := depsInstalled(dir)
	if err != nil {
		return err
	}
	if ok {
		return nil
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return ErrNodeMissing
	}
	sum := sha256.Sum256([]byte(dir))
	unlock, err := lockFile(filepath.Join(os.TempDir(), "sbemu-npm-"+hex.EncodeToString(sum[:8])+".lock"))
	if err != nil {
		return fmt.Errorf("sbemu: lock for npm ci: %w", err)
	}
	defer unlock()
	if ok, err := depsInstalled(dir); err != nil || ok {
		return err
	}
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("sbemu: npm ci in %s failed: %w\n%s", dir, err, out)
	}
	return nil
}

// depsInstalled reports whether every package that package.json in dir names (dependencies
// and devDependencies, as npm ci installs them) is in node_modules.
func depsInstalled(dir string) (bool, error) {
	b, err := os.ReadFile(filepath.Join(dir, "package.json"))
	if err != nil {
		return false, fmt.Errorf("sbemu: %w", err)
	}
	var pkg struct {
		Dependencies    map[string]string `json:"dependencies"`
		DevDependencies map[string]string `json:"devDependencies"`
	}
	if err := json.Unmarshal(b, &pkg); err != nil {
		return false, fmt.Errorf("sbemu: package.json: %w", err)
	}
	for _, deps := range []map[string]string{pkg.Dependencies, pkg.DevDependencies} {
		for name := range deps {
			if _, err := os.Stat(filepath.Join(dir, "node_modules", filepath.FromSlash(name), "package.json")); err != nil {
				return false, nil
			}
		}
	}
	return true, nil
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.w.Len() > 4<<20 {
		return len(p), nil
	}
	return l.w.Write(p)
}
