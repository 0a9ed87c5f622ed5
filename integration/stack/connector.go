package stack

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/adwriteback/adwriteback/connector/app"
	"github.com/adwriteback/adwriteback/connector/config"
)

// ConnectorSetup is how one run of a connector is made; ConnectorOptions
// edit it.
type ConnectorSetup struct {
	// Spec is its configuration (the stack's defaults, see Env.Spec).
	Spec ConfigSpec
	// Binary runs this built binary (see Binaries) instead of the
	// connector in this process (app.Build and Run).
	Binary string
	// Wrap is a command the binary runs under (e.g. prlimit ... --).
	Wrap []string
	// ProcessEnv is added to the binary's environment.
	ProcessEnv []string
	// Deps edit the in-process connector's dependencies.
	Deps []func(*app.Deps)
	// ClockAhead sets the in-process connector's clock this far ahead of
	// the real one.
	ClockAhead time.Duration
	// DiscardLogs drops the in-process connector's log (the benchmark).
	DiscardLogs bool
	// PageClient reads its pages for the leak scan and Readyz (nil: a
	// plain client with a 10 s timeout).
	PageClient *http.Client

	// late run after every option, for an option whose choice depends on
	// options that may follow it (ViaEdge: binary or in process).
	late []func(*ConnectorSetup)
}

// ConnectorOption edits a ConnectorSetup.
type ConnectorOption func(*ConnectorSetup)

// Configure edits the connector's configuration.
func Configure(f func(*ConfigSpec)) ConnectorOption { return func(s *ConnectorSetup) { f(&s.Spec) } }

// Binary runs the connector as the built binary at path.
func Binary(path string) ConnectorOption { return func(s *ConnectorSetup) { s.Binary = path } }

// Wrap runs the binary under a command (e.g. "prlimit", "--fsize=40960", "--").
func Wrap(cmd ...string) ConnectorOption { return func(s *ConnectorSetup) { s.Wrap = cmd } }

// ProcessEnv adds KEY=value pairs to the binary's environment.
func ProcessEnv(kv ...string) ConnectorOption {
	return func(s *ConnectorSetup) { s.ProcessEnv = append(s.ProcessEnv, kv...) }
}

// Deps edits the in-process connector's app.Deps.
func Deps(f func(*app.Deps)) ConnectorOption {
	return func(s *ConnectorSetup) { s.Deps = append(s.Deps, f) }
}

// ClockAhead sets the in-process connector's clock d ahead of real time.
func ClockAhead(d time.Duration) ConnectorOption { return func(s *ConnectorSetup) { s.ClockAhead = d } }

// ReadPagesWith makes the stack read the connector's pages (the leak
// scan, Readyz) with client: one that trusts its listener's certificate
// and presents what the listener requires.
func ReadPagesWith(client *http.Client) ConnectorOption {
	return func(s *ConnectorSetup) { s.PageClient = client }
}

// DiscardLogs drops the in-process connector's log.
func DiscardLogs() ConnectorOption { return func(s *ConnectorSetup) { s.DiscardLogs = true } }

// Spec is the stack's default configuration for the connector name: the
// test DC with its scope, the stack's keys, secrets and command queue, an
// organisation minimum of 12, a journal and an audit log of its own, its
// health listener on a free loopback port, debug logs.
func (e *Env) Spec(name string) ConfigSpec {
	e.tb.Helper()
	c := DCConfig(e.DC, e.Dir)
	if e.setup.KeyDir != "" {
		c.ConnectorKeys = []string{e.keyPath(ConnectorKeyFile)}
		c.SenderKeys = []string{e.keyPath(SenderPubFile)}
	}
	c.MinLength = 12
	c.Queue, c.ReplyQueue = e.Queue, e.Replies
	c.Journal, c.Audit = e.Path("journal-"+name+".db"), e.Path("audit-"+name+".jsonl")
	c.HTTPListen = FreeAddr(e.tb)
	c.LogLevel = "debug"
	return c
}

// Connector is one connector of the stack, by name: its configuration,
// journal and audit log stay the same across Stop, Kill and Start (a
// restart on the same journal). Several connectors of one stack consume
// the same queue.
type Connector struct {
	env  *Env
	name string
	opts []ConnectorOption
	spec ConfigSpec // the stack's default for name, fixed once
	logs *Buffer

	run *running // nil when not running
}

// running is one run of a connector.
type running struct {
	setup  ConnectorSetup
	app    *app.App  // in process
	cancel func()    // in process
	proc   *exec.Cmd // binary
	exited chan struct{}
	err    error // once exited: Run's error or the process's exit
}

// Connector makes the connector name (not started); opts follow the
// stack's ForEveryConnector options.
func (e *Env) Connector(name string, opts ...ConnectorOption) *Connector {
	e.tb.Helper()
	c := &Connector{env: e, name: name, opts: append(append([]ConnectorOption(nil), e.setup.Connector...), opts...),
		spec: e.Spec(name), logs: &Buffer{}}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, o := range e.connectors {
		if o.name == name {
			e.tb.Fatalf("stack: a connector %q already exists", name)
		}
	}
	e.connectors = append(e.connectors, c)
	return c
}

// Start makes the connector name and starts it.
func (e *Env) Start(name string, opts ...ConnectorOption) *Connector {
	e.tb.Helper()
	c := e.Connector(name, opts...)
	c.Start()
	return c
}

// Name is the connector's name.
func (c *Connector) Name() string { return c.name }

// ConfigPath is where its configuration file is written.
func (c *Connector) ConfigPath() string { return c.env.Path("config-" + c.name + ".yaml") }

// Setup is the connector's setup with its options and extra applied.
func (c *Connector) Setup(extra ...ConnectorOption) ConnectorSetup {
	s := ConnectorSetup{Spec: c.spec}
	for _, o := range append(append([]ConnectorOption(nil), c.opts...), extra...) {
		o(&s)
	}
	for _, f := range s.late {
		f(&s)
	}
	return s
}

// WriteConfig writes the connector's configuration file (as Start does,
// extra options applying to it as to a run) and returns its path.
func (c *Connector) WriteConfig(extra ...ConnectorOption) string {
	c.env.tb.Helper()
	c.writeConfig(c.Setup(extra...))
	return c.ConfigPath()
}

func (c *Connector) writeConfig(s ConnectorSetup) {
	c.env.tb.Helper()
	if err := s.Spec.WriteFile(c.ConfigPath()); err != nil {
		c.env.tb.Fatalf("%v", err)
	}
}

// Start writes the configuration and runs the connector; extra options
// apply to this run only (a restart without a test's hook).
func (c *Connector) Start(extra ...ConnectorOption) {
	tb := c.env.tb
	tb.Helper()
	if c.Running() {
		tb.Fatalf("stack: connector %s is already running", c.name)
	}
	c.Stop() // a run that ended by itself: close it
	s := c.Setup(extra...)
	c.writeConfig(s)
	r := &running{setup: s, exited: make(chan struct{})}
	var err error
	if s.Binary != "" {
		err = c.startBinary(r)
	} else {
		err = c.startInProcess(r)
	}
	if err != nil {
		tb.Fatalf("stack: start connector %s: %v", c.name, err)
	}
	c.run = r
}

func (c *Connector) startInProcess(r *running) error {
	cfg, err := config.Load(c.ConfigPath(), os.Getenv)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	a, err := app.Build(context.Background(), cfg, c.deps(r.setup))
	if err != nil {
		return fmt.Errorf("build: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.app, r.cancel = a, cancel
	go func() {
		r.err = a.Run(ctx)
		close(r.exited)
	}()
	return nil
}

// deps are the in-process connector's dependencies: its log (JSON, debug,
// tagged with its name) and the test's edits. The only place the harness
// sets the connector's clock.
func (c *Connector) deps(s ConnectorSetup) app.Deps {
	d := app.Deps{ConfigPath: c.ConfigPath(), Getenv: os.Getenv}
	d.Logger = slog.New(slog.NewJSONHandler(c.logs, &slog.HandlerOptions{Level: slog.LevelDebug})).With("instance", c.name)
	if s.DiscardLogs {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if ahead := s.ClockAhead; ahead != 0 {
		d.Clock = aheadClock{clockwork.NewRealClock(), ahead}
	}
	for _, f := range s.Deps {
		f(&d)
	}
	return d
}

func (c *Connector) startBinary(r *running) error {
	args := append(append([]string(nil), r.setup.Wrap...), r.setup.Binary, "run", "--config", c.ConfigPath())
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), r.setup.ProcessEnv...)
	cmd.Stdout, cmd.Stderr = c.logs, c.logs
	if err := cmd.Start(); err != nil {
		return err
	}
	r.proc = cmd
	go func() {
		r.err = cmd.Wait()
		close(r.exited)
	}()
	return nil
}

// Running reports whether the connector runs (it may have exited by
// itself).
func (c *Connector) Running() bool {
	if c.run == nil {
		return false
	}
	select {
	case <-c.run.exited:
		return false
	default:
		return true
	}
}

// Err is how the last run ended (nil while running or after a clean stop).
func (c *Connector) Err() error {
	if c.Running() || c.run == nil {
		return nil
	}
	return c.run.err
}

// App is the in-process connector's app (nil for a binary).
func (c *Connector) App() *app.App {
	if c.run == nil {
		return nil
	}
	return c.run.app
}

// HTTPAddr is its health, metrics and status listener.
func (c *Connector) HTTPAddr() string {
	if a := c.App(); a != nil {
		return a.HTTPAddr()
	}
	if c.run != nil {
		return c.run.setup.Spec.HTTPListen
	}
	return c.Setup().Spec.HTTPListen
}

// URL is http://HTTPAddr followed by path (https:// when its listener has
// a certificate).
func (c *Connector) URL(path string) string {
	if c.setup().Spec.HTTPTLSCertFile != "" {
		return "https://" + c.HTTPAddr() + path
	}
	return "http://" + c.HTTPAddr() + path
}

// setup is the running connector's setup, else the next run's.
func (c *Connector) setup() ConnectorSetup {
	if c.run != nil {
		return c.run.setup
	}
	return c.Setup()
}

// pageClient is what reads the connector's pages (ReadPagesWith).
func (c *Connector) pageClient() *http.Client {
	if pc := c.setup().PageClient; pc != nil {
		return pc
	}
	return &http.Client{Timeout: 10 * time.Second}
}

// Stop shuts the connector down gracefully (in process: Run's context
// ends; a binary: SIGTERM) after reading its pages for the leak scan, and
// waits up to a minute. A run that ends with an error (now or before, by
// itself) fails the test.
func (c *Connector) Stop() {
	tb := c.env.tb
	tb.Helper()
	r := c.run
	if r == nil {
		return
	}
	if c.Running() {
		c.env.capturePages(c)
		if r.proc != nil {
			_ = r.proc.Process.Signal(syscall.SIGTERM)
		}
	}
	if r.cancel != nil {
		r.cancel()
	}
	select {
	case <-r.exited:
		if r.err != nil {
			tb.Errorf("stack: connector %s run: %v", c.name, r.err)
		}
	case <-time.After(time.Minute):
		tb.Errorf("stack: connector %s did not stop within a minute", c.name)
		if r.proc != nil {
			_ = r.proc.Process.Kill()
			<-r.exited
		}
	}
	if r.app != nil {
		if err := r.app.Close(context.Background()); err != nil {
			tb.Errorf("stack: connector %s close: %v", c.name, err)
		}
	}
	c.run = nil
}

// Kill ends the binary with SIGKILL and waits for it (a crash: nothing is
// flushed, nothing settled). An in-process connector cannot be killed.
func (c *Connector) Kill() {
	tb := c.env.tb
	tb.Helper()
	if c.run == nil {
		return
	}
	if c.run.proc == nil {
		tb.Fatalf("stack: connector %s runs in this process: it can be stopped, not killed", c.name)
	}
	_ = c.run.proc.Process.Kill()
	<-c.run.exited
	c.run = nil
}

// Signal sends sig to the running binary (SIGHUP: reload, reopen the
// audit log). An in-process connector has no process of its own.
func (c *Connector) Signal(sig os.Signal) {
	tb := c.env.tb
	tb.Helper()
	if c.run == nil || c.run.proc == nil {
		tb.Fatalf("stack: connector %s is not a running binary: it cannot be signalled", c.name)
	}
	if err := c.run.proc.Process.Signal(sig); err != nil {
		tb.Fatalf("stack: signal connector %s: %v", c.name, err)
	}
}

// WaitExit waits up to timeout for the binary to end by itself and
// returns its state.
func (c *Connector) WaitExit(timeout time.Duration) *os.ProcessState {
	tb := c.env.tb
	tb.Helper()
	if c.run == nil || c.run.proc == nil {
		tb.Fatalf("stack: connector %s is not a running binary", c.name)
	}
	select {
	case <-c.run.exited:
	case <-time.After(timeout):
		tb.Fatalf("stack: connector %s was still running after %s", c.name, timeout)
	}
	st := c.run.proc.ProcessState
	c.run = nil
	return st
}

// end is the end of the test for this connector: its pages, then a
// graceful stop in process, SIGKILL for a binary.
func (c *Connector) end() {
	if c.run == nil {
		return
	}
	if c.run.proc == nil {
		c.Stop()
		return
	}
	if c.Running() {
		c.env.capturePages(c)
	}
	c.Kill()
}

// Logs is everything the connector logged, across its runs.
func (c *Connector) Logs() string { return c.logs.String() }

// Audit is its audit log (the file, across its runs).
func (c *Connector) Audit() string {
	b, _ := os.ReadFile(c.Setup().Spec.Audit)
	return string(b)
}

// AuditCount is how many records its audit log holds.
func (c *Connector) AuditCount() int { return strings.Count(c.Audit(), "\n") }

// AuditRecord is the part of an audit record the tests read.
type AuditRecord struct {
	CommandID   string `json:"command_id"`
	Outcome     string `json:"outcome"`
	Detail      string `json:"detail"`
	Applied     bool   `json:"applied"`
	FromJournal bool   `json:"from_journal"`
	Settlement  string `json:"settlement"`
	// Event and MessageID are set on records kept apart from commands
	// (event "unverified_message": a message refused before its
	// signature was checked, under the MessageId its sender chose).
	Event     string `json:"event"`
	MessageID string `json:"message_id"`
}

// AuditRecords parses its audit log; a line that does not parse fails the
// test.
func (c *Connector) AuditRecords() []AuditRecord {
	tb := c.env.tb
	tb.Helper()
	var out []AuditRecord
	for _, l := range strings.Split(c.Audit(), "\n") {
		if l == "" {
			continue
		}
		var r AuditRecord
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			tb.Fatalf("audit line %q: %v", l, err)
		}
		out = append(out, r)
	}
	return out
}

// Audit is every connector's audit log, one after another.
func (e *Env) Audit() string { return e.join((*Connector).Audit) }

// AuditLines are the audit records of every connector about command id.
func (e *Env) AuditLines(id string) []string {
	var out []string
	for _, l := range strings.Split(e.Audit(), "\n") {
		if strings.Contains(l, `"command_id":"`+id+`"`) {
			out = append(out, l)
		}
	}
	return out
}

// Logs is every connector's log, one after another.
func (e *Env) Logs() string { return e.join((*Connector).Logs) }

// join is f of every connector, one after another.
func (e *Env) join(f func(*Connector) string) string {
	var b strings.Builder
	for _, c := range e.all() {
		b.WriteString(f(c))
	}
	return b.String()
}

func (e *Env) connectorLogs() ([]byte, error) { return []byte(e.Logs()), nil }

func (e *Env) all() []*Connector {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]*Connector(nil), e.connectors...)
}

// keyPath is name in the key directory.
func (e *Env) keyPath(name string) string {
	if e.setup.KeyDir != "" {
		return filepath.Join(e.setup.KeyDir, name)
	}
	return e.Path(name)
}

// aheadClock is the real clock, read ahead by d: its timers still fire in
// real time (a fake clock's would never fire in a running connector).
type aheadClock struct {
	clockwork.Clock
	d time.Duration
}

func (c aheadClock) Now() time.Time { return c.Clock.Now().Add(c.d) }
