//go:build integration

package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/adwriteback/adwriteback/connector/app"
	"github.com/adwriteback/adwriteback/connector/config"
	"github.com/adwriteback/adwriteback/integration/sbemu"
	shared "github.com/adwriteback/adwriteback/integration/stack"
	"github.com/adwriteback/adwriteback/integration/testdc"
	"github.com/adwriteback/adwriteback/relay/keys"
	"github.com/adwriteback/adwriteback/relay/protocol"
	"github.com/adwriteback/adwriteback/relay/sender"
)

// stack is one test's world: the shared Samba DC, its own emulator and
// queues, keys, and a config for connector instances.
type stack struct {
	t        *testing.T
	dc       *testdc.Info
	emu      *sbemu.Emulator
	dir      string
	queue    string
	replies  string
	connKey  *keys.ConnectorPrivate
	sendKey  *keys.SenderPrivate
	logs     *shared.Buffer
	audits   *shared.Buffer
	results  *shared.Buffer
	secrets  []string
	secretMu sync.Mutex
}

func newStack(t *testing.T) *stack {
	t.Helper()
	s := &stack{t: t, dc: testdc.Ensure(t), emu: sbemu.Start(t, nil), dir: t.TempDir(),
		queue: "commands", replies: "replies", logs: &shared.Buffer{}, audits: &shared.Buffer{}, results: &shared.Buffer{}}
	ctx := context.Background()
	if err := shared.Queues(ctx, s.emu, shared.Queue{Name: s.queue, Options: sbemu.QueueOptions{LockDuration: 10 * time.Second, MaxDeliveryCount: 10}},
		shared.Queue{Name: s.replies}); err != nil {
		t.Fatal(err)
	}
	k, err := shared.WriteKeys(s.dir)
	if err != nil {
		t.Fatal(err)
	}
	s.connKey, s.sendKey = k.Connector, k.Sender
	if err := shared.WriteSecrets(s.dir, s.dc.ServicePass, s.emu.ConnectionString()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.scanForSecrets()
		if t.Failed() {
			// Leave the evidence for whoever reads the CI log.
			dir := filepath.Join("..", "artifacts")
			_ = os.MkdirAll(dir, 0o755)
			name := filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_")+".log")
			_ = os.WriteFile(name, []byte(s.logs.String()+"\n---- audit\n"+s.audits.String()+"\n---- emulator\n"+s.emu.Log()), 0o644)
			t.Logf("logs in %s", name)
		}
	})
	return s
}

func (s *stack) write(name string, b []byte, mode os.FileMode) {
	if err := os.WriteFile(filepath.Join(s.dir, name), b, mode); err != nil {
		s.t.Fatal(err)
	}
}

// config is the connector's configuration for this stack; instance names
// its journal and audit files.
func (s *stack) config(instance string) shared.ConfigSpec {
	c := shared.DCConfig(s.dc, s.dir)
	c.DialTimeout = 10 * time.Second
	c.MinLength = 12
	c.Queue, c.Concurrency, c.ShutdownGrace = s.queue, 4, 10*time.Second
	c.Journal, c.Audit = s.path("journal-"+instance+".db"), s.path("audit-"+instance+".jsonl")
	c.LogLevel = "debug"
	c.HTTPListen = "127.0.0.1:0"
	return c
}

func (s *stack) path(name string) string { return filepath.Join(s.dir, name) }

// instance is one running connector.
type instance struct {
	app    *app.App
	cancel context.CancelFunc
	done   chan error
}

// start builds and runs a connector from the stack's config.
func (s *stack) start(name string, deps app.Deps) *instance {
	s.t.Helper()
	return s.startSpec(name, s.config(name), deps)
}

// startSpec runs a connector from the given config.
func (s *stack) startSpec(name string, spec shared.ConfigSpec, deps app.Deps) *instance {
	s.t.Helper()
	path := s.path("config-" + name + ".yaml")
	if err := spec.WriteFile(path); err != nil {
		s.t.Fatal(err)
	}
	cfg, err := config.Load(path, os.Getenv)
	if err != nil {
		s.t.Fatalf("config: %v", err)
	}
	deps.Logger = slog.New(slog.NewJSONHandler(s.logs, &slog.HandlerOptions{Level: slog.LevelDebug})).With("instance", name)
	deps.AuditOut = s.audits
	a, err := app.Build(context.Background(), cfg, deps)
	if err != nil {
		s.t.Fatalf("build: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{app: a, cancel: cancel, done: make(chan error, 1)}
	go func() { in.done <- a.Run(ctx) }()
	s.t.Cleanup(func() { in.stop(s.t) })
	return in
}

// stop shuts the instance down gracefully and waits for it.
func (in *instance) stop(t *testing.T) {
	if in.cancel == nil {
		return
	}
	in.cancel()
	in.cancel = nil
	select {
	case err := <-in.done:
		if err != nil {
			t.Errorf("connector run: %v", err)
		}
	case <-time.After(time.Minute):
		t.Error("connector did not stop within a minute")
	}
	if err := in.app.Close(context.Background()); err != nil {
		t.Errorf("close: %v", err)
	}
}

// client is a sender SDK client over the real Service Bus SDK.
func (s *stack) client(mutate ...func(*sender.Config)) *sender.Client {
	s.t.Helper()
	return s.clientOn(s.replies, mutate...)
}

// clientOn is client with results read from replyQueue.
func (s *stack) clientOn(replyQueue string, mutate ...func(*sender.Config)) *sender.Client {
	s.t.Helper()
	snd, err := shared.NewSender(shared.SenderOptions{ConnectionString: s.emu.ConnectionString(), Queue: s.queue, ReplyQueue: replyQueue,
		Keys: shared.Keys{Connector: s.connKey, Sender: s.sendKey}, Configure: func(cfg *sender.Config) {
			for _, m := range mutate {
				m(cfg)
			}
		}})
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { snd.Close(context.Background()) })
	return snd.Client
}

// secret registers a password for the leak scan and returns it sealed-ready.
func (s *stack) secret(pw string) protocol.Secret {
	s.secretMu.Lock()
	s.secrets = append(s.secrets, pw)
	s.secretMu.Unlock()
	return protocol.SecretFromString(pw)
}

// do sends req and waits for its verified result.
func (s *stack) do(c *sender.Client, req sender.Request) *protocol.VerifiedResult {
	s.t.Helper()
	if req.Actor.Kind == "" {
		req.Actor = protocol.Actor{Kind: protocol.ActorSelfService, ID: "e2e"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	res, err := c.Do(ctx, req)
	if err != nil {
		s.t.Fatalf("%s %+v: %v", req.Op, req.User, err)
	}
	s.results.Write([]byte(fmt.Sprintf("%+v\n", res.Result)))
	return res
}

// scanForSecrets fails the test if any password it used appears in any
// log line, audit record, result or dead-letter text it produced.
func (s *stack) scanForSecrets() {
	var hay strings.Builder
	hay.WriteString(s.logs.String())
	hay.WriteString(s.audits.String())
	hay.WriteString(s.results.String())
	for _, q := range []string{s.queue, s.replies} {
		st, err := s.emu.Queue(context.Background(), q)
		if err != nil {
			continue
		}
		for _, m := range append(append(st.DeadLetters, st.Messages...), st.LockedMessages...) {
			hay.WriteString(m.DeadLetterReason)
			hay.WriteString(m.DeadLetterDescription)
			hay.Write(m.Body)
		}
	}
	for _, f := range []string{"audit-a.jsonl", "audit-b.jsonl"} {
		if b, err := os.ReadFile(s.path(f)); err == nil {
			hay.Write(b)
		}
	}
	all := hay.String()
	if len(all) == 0 {
		s.t.Error("leak scan: nothing was produced to scan")
	}
	s.secretMu.Lock()
	defer s.secretMu.Unlock()
	for _, pw := range s.secrets {
		if strings.Contains(all, pw) {
			s.t.Errorf("leak scan: a password used by the test appears in logs, audit, results or dead letters")
		}
	}
}

// auditRecords returns the audit lines mentioning id.
func (s *stack) auditLines(id string) []string {
	var out []string
	for _, l := range strings.Split(s.audits.String(), "\n") {
		if strings.Contains(l, `"command_id":"`+id+`"`) {
			out = append(out, l)
		}
	}
	return out
}
