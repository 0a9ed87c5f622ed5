package stack

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/adwriteback/adwriteback/integration/entra"
	"github.com/adwriteback/adwriteback/integration/sbemu"
	"github.com/adwriteback/adwriteback/integration/testca"
	"github.com/adwriteback/adwriteback/integration/testdc"
	"github.com/adwriteback/adwriteback/relay/keys"
	"github.com/adwriteback/adwriteback/relay/protocol"
)

// Setup is what New builds: the options edit it, then New starts what it
// describes. A new capability (TLS on the emulator, a proxy, a token
// issuer) is an Option that edits these fields and, if it must run once
// the stack is up, appends to AfterStart.
type Setup struct {
	// DC is the directory; nil: the shared test DC (testdc.Ensure).
	DC *testdc.Info
	// Dir holds the keys, secrets, configs, journals and audit logs; "":
	// the TB's TempDir.
	Dir string
	// Emulator starts the Service Bus emulator.
	Emulator sbemu.Options
	// EmulatorTLS makes the emulator listen with TLS too, for the host
	// name Namespace ("": the package's Namespace), with a certificate
	// from the stack's CA (WithEmulatorTLS).
	EmulatorTLS bool
	Namespace   string
	// Proxy, if set, starts an HTTP CONNECT proxy (tinyproxy) once the
	// emulator is up, before the AfterStart hooks (WithProxy).
	Proxy *ProxyOptions
	// CommandQueue takes the commands; ReplyQueue the results.
	CommandQueue, ReplyQueue Queue
	// KeyDir, if set, holds the keys as `adwriteback keygen` writes them;
	// "": fresh keys are written into Dir.
	KeyDir string
	// Connector options apply to every connector, before its own.
	Connector []ConnectorOption
	// Sender options apply to every sender, before its own.
	Sender []SenderOption
	// Entra, if set, starts a token issuer the emulator trusts (WithEntra).
	Entra *entra.Options
	// AfterStart runs once the DC, the emulator and its queues are up,
	// before the keys and secret files are written: a hook may change
	// Env.ConnectionString (a proxy, another transport), start a server,
	// AddSurface.
	AfterStart []func(*Env)
}

// Option edits the Setup before New builds it.
type Option func(*Setup)

// WithDC uses info (a DC of the test's own) instead of the shared test DC.
func WithDC(info *testdc.Info) Option { return func(s *Setup) { s.DC = info } }

// WithDir keeps the stack's files in dir.
func WithDir(dir string) Option { return func(s *Setup) { s.Dir = dir } }

// WithTier runs the emulator as a namespace of tier.
func WithTier(t sbemu.Tier) Option { return func(s *Setup) { s.Emulator.Tier = t } }

// WithCommandQueue names the command queue and sets its options.
func WithCommandQueue(name string, o sbemu.QueueOptions) Option {
	return func(s *Setup) { s.CommandQueue = Queue{Name: name, Options: o} }
}

// WithReplyQueue names the reply queue and sets its options.
func WithReplyQueue(name string, o sbemu.QueueOptions) Option {
	return func(s *Setup) { s.ReplyQueue = Queue{Name: name, Options: o} }
}

// WithKeyDir uses the keys `adwriteback keygen` wrote into dir.
func WithKeyDir(dir string) Option { return func(s *Setup) { s.KeyDir = dir } }

// ForEveryConnector applies opts to every connector of the stack.
func ForEveryConnector(opts ...ConnectorOption) Option {
	return func(s *Setup) { s.Connector = append(s.Connector, opts...) }
}

// ForEverySender applies opts to every sender of the stack.
func ForEverySender(opts ...SenderOption) Option {
	return func(s *Setup) { s.Sender = append(s.Sender, opts...) }
}

// Env is one running stack: the DC, an emulator of its own with its
// queues, keys and secret files, the connectors started on it, the
// senders, and what they all produce, which the leak scan reads at the
// end and which is kept in the artifacts folder when the test fails.
type Env struct {
	tb    TB
	setup Setup

	// DC is the directory the connectors reset passwords in.
	DC *testdc.Info
	// Emu is the Service Bus emulator.
	Emu *sbemu.Emulator
	// Entra is the token issuer the emulator trusts (WithEntra), or nil.
	Entra *entra.Issuer
	// ConnectionString is how the connectors and senders reach the
	// emulator (its own, unless an AfterStart hook changed it).
	ConnectionString string
	// Dir holds the stack's files.
	Dir string
	// Queue and Replies are the command and reply queue names.
	Queue, Replies string
	// Keys are the connector's and the sender's key pairs.
	Keys Keys
	// Results collects what the test received (results, CLI output,
	// pages): the leak scan reads it.
	Results *Buffer
	// Proxy is the HTTP CONNECT proxy of WithProxy (nil without).
	Proxy *HTTPProxy

	caOnce sync.Once
	ca     *testca.CA
	caErr  error

	mu         sync.Mutex
	queues     []string
	connectors []*Connector
	secrets    [][]byte
	surfaces   []surface
	pageText   bytes.Buffer
}

// New builds a stack for tb: the DC (started if needed), an emulator with
// the command and reply queues, the options' AfterStart hooks, the keys
// and the secret files. At the end of the test it stops every
// connector still running (reading its pages first), scans every surface
// for the passwords the test registered, and on failure keeps the
// evidence in integration/artifacts/<test name>/.
func New(tb TB, opts ...Option) *Env {
	tb.Helper()
	s := Setup{
		CommandQueue: Queue{Name: "commands", Options: sbemu.QueueOptions{LockDuration: 10 * time.Second, MaxDeliveryCount: 10}},
		ReplyQueue:   Queue{Name: "replies"},
	}
	for _, o := range opts {
		o(&s)
	}
	e := &Env{tb: tb, setup: s, DC: s.DC, Dir: s.Dir, Queue: s.CommandQueue.Name, Replies: s.ReplyQueue.Name, Results: &Buffer{}}
	if e.Dir == "" {
		e.Dir = tb.TempDir()
	}
	if e.DC == nil {
		e.DC = ensureDC(tb)
	}
	e.startEntra(&s)
	if s.EmulatorTLS {
		e.setup.Emulator.TLS = e.emulatorTLS(s.Namespace)
	}
	e.Emu = startEmulator(tb, e.setup.Emulator)
	tb.Cleanup(e.finish)
	e.ConnectionString = e.Emu.ConnectionString()
	e.AddQueue(s.CommandQueue.Name, s.CommandQueue.Options)
	e.AddQueue(s.ReplyQueue.Name, s.ReplyQueue.Options)
	e.addSurface("logs", e.connectorLogs)
	e.addSurface("audit", func() ([]byte, error) { return []byte(e.Audit()), nil })
	e.addSurface("results", func() ([]byte, error) { return []byte(e.Results.String()), nil })
	e.addSurface("queues", e.queueTexts)
	e.addSurface("pages", e.pages)
	if s.Proxy != nil {
		e.startProxy(*s.Proxy)
	}
	for _, f := range s.AfterStart {
		f(e)
	}
	e.writeKeys()
	if err := WriteSecrets(e.Dir, e.DC.ServicePass, e.ConnectionString); err != nil {
		tb.Fatalf("%v", err)
	}
	return e
}

// ensureDC is the shared test DC: testdc.Ensure for a test, testdc.Up
// for a program.
func ensureDC(tb TB) *testdc.Info {
	tb.Helper()
	if t, ok := tb.(testing.TB); ok {
		return testdc.Ensure(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	info, err := testdc.Up(ctx, testdc.Config{Log: tb.Logf})
	if err != nil {
		tb.Fatalf("cannot start the Samba test DC: %v", err)
	}
	return info
}

// startEmulator is sbemu.Start for a test; a program's emulator is closed
// by its cleanup.
func startEmulator(tb TB, o sbemu.Options) *sbemu.Emulator {
	tb.Helper()
	if t, ok := tb.(testing.TB); ok {
		return sbemu.Start(t, &o)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	emu, err := sbemu.StartProcess(ctx, o)
	if err != nil {
		tb.Fatalf("start Service Bus emulator: %v", err)
	}
	tb.Cleanup(func() { emu.Close() })
	return emu
}

// writeKeys writes fresh keys into Dir, or loads those of Setup.KeyDir.
func (e *Env) writeKeys() {
	e.tb.Helper()
	if e.setup.KeyDir == "" {
		k, err := WriteKeys(e.Dir)
		if err != nil {
			e.tb.Fatalf("%v", err)
		}
		e.Keys = k
		return
	}
	ck, err := keys.LoadConnectorPrivate(filepath.Join(e.setup.KeyDir, ConnectorKeyFile))
	if err != nil {
		e.tb.Fatalf("stack: %v", err)
	}
	sk, err := keys.LoadSenderPrivate(filepath.Join(e.setup.KeyDir, SenderKeyFile))
	if err != nil {
		e.tb.Fatalf("stack: %v", err)
	}
	e.Keys = Keys{Connector: ck, Sender: sk}
}

// AddQueue creates one more queue on the emulator; the leak scan reads it
// too.
func (e *Env) AddQueue(name string, o sbemu.QueueOptions) {
	e.tb.Helper()
	if err := Queues(context.Background(), e.Emu, Queue{Name: name, Options: o}); err != nil {
		e.tb.Fatalf("%v", err)
	}
	e.mu.Lock()
	e.queues = append(e.queues, name)
	e.mu.Unlock()
}

// Path is name inside Dir.
func (e *Env) Path(name string) string { return filepath.Join(e.Dir, name) }

// WriteFile writes name into Dir.
func (e *Env) WriteFile(name string, b []byte, mode os.FileMode) string {
	e.tb.Helper()
	p := e.Path(name)
	if err := os.WriteFile(p, b, mode); err != nil {
		e.tb.Fatalf("stack: %v", err)
	}
	return p
}

// Secret registers a password for the leak scan and returns it as a
// protocol.Secret.
func (e *Env) Secret(pw string) protocol.Secret {
	e.SecretBytes([]byte(pw))
	return protocol.SecretFromString(pw)
}

// SecretBytes registers bytes the leak scan must not find anywhere.
func (e *Env) SecretBytes(b []byte) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.secrets = append(e.secrets, append([]byte(nil), b...))
}

// QueueState is a snapshot of the queue name (fails the test on error).
func (e *Env) QueueState(name string) *sbemu.QueueState {
	e.tb.Helper()
	st, err := e.Emu.Queue(context.Background(), name)
	if err != nil {
		e.tb.Fatalf("queue %s: %v", name, err)
	}
	return st
}

// finish ends the stack at the end of the test: pages of the connectors
// still running, then stop them, scan, and keep the artifacts on failure.
func (e *Env) finish() {
	e.mu.Lock()
	cs := append([]*Connector(nil), e.connectors...)
	e.mu.Unlock()
	for _, c := range cs {
		c.end()
	}
	e.scan()
	if e.tb.Failed() {
		e.keepArtifacts()
	}
}
