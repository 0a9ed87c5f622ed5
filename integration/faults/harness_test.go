//go:build integration

// Package faults injects faults into a running adwriteback binary (a
// subprocess built once per test binary) wired to a real Samba DC and the
// Service Bus emulator, and checks the invariants after recovery: every
// command ends with exactly one effect in AD (unicodePwd written once,
// counted from replPropertyMetaData) and one verified result for the
// sender, and no password leaks into logs, audit or dead letters.
package faults

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/adwriteback/adwriteback/integration/sbemu"
	shared "github.com/adwriteback/adwriteback/integration/stack"
	"github.com/adwriteback/adwriteback/integration/testdc"
	"github.com/adwriteback/adwriteback/relay/keys"
	"github.com/adwriteback/adwriteback/relay/protocol"
	"github.com/adwriteback/adwriteback/relay/sender"
)

// binPath is the production binary; faultBinPath is built with -tags
// faultinject (the crash points of connector/engine are live in it).
var binPath, faultBinPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "adwriteback-faults-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "adwriteback")
	faultBinPath = filepath.Join(dir, "adwriteback-faultinject")
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, args := range [][]string{
		{"build", "-o", binPath, "../../connector/cmd/adwriteback"},
		{"build", "-tags", "faultinject", "-o", faultBinPath, "../../connector/cmd/adwriteback"},
	} {
		wg.Go(func() {
			cmd := exec.Command("go", args...)
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0") // as the shipped binary is built
			if out, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// stack is one test's world.
type stack struct {
	t       *testing.T
	dc      *testdc.Info
	emu     *sbemu.Emulator
	dir     string
	connKey *keys.ConnectorPrivate
	sendKey *keys.SenderPrivate
	logs    *shared.Buffer
	proc    *exec.Cmd
	exited  chan struct{}
	servers []string
	lock    time.Duration
	secrets []string
	client  *sender.Client
	results *shared.Buffer
	// httpAddr is the connector's health/metrics listener (a fixed free
	// port, so instances in parallel tests do not collide).
	httpAddr string
	// bin is the binary start runs (binPath unless set); env is added to
	// its environment.
	bin string
	env []string
	// concurrency is queue.concurrency (0: 4).
	concurrency int
	// serverName is tls.server_name ("": the URL's host).
	serverName string
	// resetOpts are the options of every reset a burst sends.
	resetOpts protocol.Options
}

const (
	queue   = "commands"
	replies = "replies"
)

func newStack(t *testing.T, dc *testdc.Info, lock time.Duration) *stack {
	t.Helper()
	s := &stack{t: t, dc: dc, emu: sbemu.Start(t, nil), dir: t.TempDir(), logs: &shared.Buffer{}, results: &shared.Buffer{},
		servers: []string{dc.LDAPSURL}, lock: lock, httpAddr: shared.FreeAddr(t)}
	ctx := context.Background()
	if err := shared.Queues(ctx, s.emu, shared.Queue{Name: queue, Options: sbemu.QueueOptions{LockDuration: lock, MaxDeliveryCount: 50}},
		shared.Queue{Name: replies}); err != nil {
		t.Fatal(err)
	}
	k, err := shared.WriteKeys(s.dir)
	if err != nil {
		t.Fatal(err)
	}
	s.connKey, s.sendKey = k.Connector, k.Sender
	if err := shared.WriteSecrets(s.dir, dc.ServicePass, s.emu.ConnectionString()); err != nil {
		t.Fatal(err)
	}
	snd, err := shared.NewSender(shared.SenderOptions{ConnectionString: s.emu.ConnectionString(), Queue: queue, ReplyQueue: replies,
		MaxPending: 4096, Keys: k, TTL: 30 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { snd.Close(context.Background()) })
	s.client = snd.Client
	t.Cleanup(func() {
		s.scanForSecrets()
		s.kill()
		if t.Failed() {
			f, err := os.CreateTemp("", "adwriteback-faults-"+t.Name()+"-*.log")
			if err == nil {
				f.WriteString(s.logs.String())
				f.WriteString("\n--- audit ---\n")
				f.WriteString(readFile(s.path("audit.jsonl")))
				f.Close()
				t.Logf("full connector log and audit kept in %s", f.Name())
			}
			t.Logf("connector log (tail):\n%s", tail(s.logs.String(), 3000))
		}
	})
	return s
}

func (s *stack) path(n string) string { return filepath.Join(s.dir, n) }

func (s *stack) config() shared.ConfigSpec {
	c := shared.DCConfig(s.dc, s.dir)
	c.Servers, c.ServerName = s.servers, s.serverName
	c.DialTimeout, c.OperationTimeout = 2*time.Second, 10*time.Second
	c.MinLength = 12
	c.Queue, c.Concurrency, c.ShutdownGrace = queue, s.concurrency, 5*time.Second
	if c.Concurrency == 0 {
		c.Concurrency = 4
	}
	c.PerUser, c.MaxAttempts = 1000, 40
	c.HTTPListen = s.httpAddr
	c.LogLevel = "debug"
	return c
}

// start runs the binary; prefix (e.g. prlimit) wraps it.
func (s *stack) start(prefix ...string) {
	s.t.Helper()
	if err := s.config().WriteFile(s.path("config.yaml")); err != nil {
		s.t.Fatal(err)
	}
	bin := s.bin
	if bin == "" {
		bin = binPath
	}
	args := append(append([]string{}, prefix...), bin, "run", "--config", s.path("config.yaml"))
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), s.env...)
	cmd.Stdout, cmd.Stderr = s.logs, s.logs
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.proc = cmd
	s.exited = make(chan struct{})
	go func(c *exec.Cmd, ch chan struct{}) { c.Wait(); close(ch) }(cmd, s.exited)
}

// kill sends SIGKILL and waits for the process.
func (s *stack) kill() {
	if s.proc == nil {
		return
	}
	_ = s.proc.Process.Kill()
	<-s.exited
	s.proc = nil
}

// running reports whether the connector process is alive.
func (s *stack) running() bool {
	if s.proc == nil {
		return false
	}
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// auditCount is how many audit records mention settlement (any outcome).
func (s *stack) auditCount() int {
	b, _ := os.ReadFile(s.path("audit.jsonl"))
	return bytes.Count(b, []byte("\n"))
}

// job is one reset command of a burst, to its own user.
type job struct {
	user    testdc.SeedUser
	pw      string
	v0      int
	id      string
	result  *protocol.VerifiedResult
	err     error
	awaited chan struct{}
}

// users creates n users for this test.
func (s *stack) users(n int) []testdc.SeedUser {
	out := make([]testdc.SeedUser, n)
	for i := range out {
		out[i] = testdc.NewUser(s.t, s.dc, "")
	}
	return out
}

// burst sends one reset per user and starts awaiting each result.
func (s *stack) burst(users []testdc.SeedUser) []*job { return s.burstWith(users, true) }

func (s *stack) burstWith(users []testdc.SeedUser, readVersion bool) []*job {
	s.t.Helper()
	jobs := make([]*job, len(users))
	for i, u := range users {
		j := &job{user: u, pw: fmt.Sprintf("Fault!Reset.%d.%04d", time.Now().UnixNano()%1e6, i), awaited: make(chan struct{})}
		if readVersion {
			j.v0 = pwdVersion(s.t, s.dc, u.DN)
		} else {
			j.v0 = -1
		}
		s.secrets = append(s.secrets, j.pw)
		sec := protocol.SecretFromString(j.pw)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		p, err := s.client.Send(ctx, sender.Request{Op: protocol.OpReset, User: protocol.UserRef{SAM: u.SAM}, NewPassword: sec,
			Options: s.resetOpts, Actor: protocol.Actor{Kind: protocol.ActorSelfService, ID: "faults"}})
		cancel()
		if err != nil {
			s.t.Fatalf("send: %v", err)
		}
		j.id = p.Command.ID
		jobs[i] = j
		go func() {
			defer close(j.awaited)
			ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
			defer cancel()
			j.result, j.err = s.client.Await(ctx, j.id)
		}()
	}
	return jobs
}

// check waits for every result and checks exactly one effect per command.
func (s *stack) check(jobs []*job) {
	s.t.Helper()
	for _, j := range jobs {
		<-j.awaited
		if j.err != nil {
			s.t.Errorf("%s: no result: %v", j.user.SAM, j.err)
			continue
		}
		s.results.Write([]byte(fmt.Sprintf("%+v\n", j.result.Result)))
		if j.result.Code != protocol.CodeSucceeded {
			s.t.Errorf("%s: %s (%s)", j.user.SAM, j.result.Code, j.result.Detail)
		}
		if d := pwdVersion(s.t, s.dc, j.user.DN) - j.v0; d != 1 {
			s.t.Errorf("%s: unicodePwd written %d times, want exactly 1", j.user.SAM, d)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		c, err := testdc.Bind(ctx, s.dc, j.user.DN, j.pw)
		cancel()
		switch {
		case err == nil:
			c.Close()
		case s.resetOpts.MustChange && testdc.BindData(err) == "773":
			// The password is right; the user must change it first.
		default:
			s.t.Errorf("%s: bind with the new password: %v", j.user.SAM, err)
		}
	}
}

func (s *stack) scanForSecrets() {
	var hay strings.Builder
	hay.WriteString(s.logs.String())
	hay.WriteString(s.results.String())
	if b, err := os.ReadFile(s.path("audit.jsonl")); err == nil {
		hay.Write(b)
	}
	for _, q := range []string{queue, replies} {
		if st, err := s.emu.Queue(context.Background(), q); err == nil {
			for _, m := range st.DeadLetters {
				hay.WriteString(m.DeadLetterReason)
				hay.WriteString(m.DeadLetterDescription)
			}
		}
	}
	if s.running() {
		if b, err := shared.HTTPGet("http://" + s.httpAddr + "/metrics"); err == nil {
			hay.Write(b)
		} else {
			s.t.Logf("leak scan: /metrics not scanned: %v", err)
		}
	}
	all := hay.String()
	if all == "" {
		s.t.Error("leak scan: nothing to scan")
	}
	for _, pw := range s.secrets {
		if strings.Contains(all, pw) {
			s.t.Error("leak scan: a password used by the test appears in logs, audit, results or dead letters")
		}
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// pwdVersion counts password writes to dn (testdc.PwdVersion).
func pwdVersion(t *testing.T, info *testdc.Info, dn string) int {
	return testdc.PwdVersion(t, info, dn)
}
