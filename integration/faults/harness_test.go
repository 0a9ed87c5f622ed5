//go:build integration

// Package faults injects faults into a running adwriteback binary (a
// subprocess built once per test binary) wired to a real Samba DC and the
// Service Bus emulator, and checks the invariants after recovery: every
// command ends with exactly one effect in AD (unicodePwd written once,
// counted from replPropertyMetaData) and one verified result for the
// sender, and no password leaks into logs, audit or dead letters.
package faults

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/adwriteback/adwriteback/integration/sbemu"
	"github.com/adwriteback/adwriteback/integration/stack"
	"github.com/adwriteback/adwriteback/integration/testdc"
	"github.com/adwriteback/adwriteback/relay/protocol"
	"github.com/adwriteback/adwriteback/relay/sender"
)

// bins are the production binary and one built with -tags faultinject
// (the crash points of connector/engine are live in it), built once for
// this test binary.
var bins *stack.Binaries

func TestMain(m *testing.M) {
	os.Exit(stack.RunWithBinaries(m, &bins, stack.Production, stack.FaultInject))
}

// world is one test's world: a stack (integration/stack) whose connectors
// run the built binary, the first of them (a), and a sender.
type world struct {
	*stack.Env
	t      *testing.T
	a      *stack.Connector
	client *sender.Client
	// resetOpts are the options of every reset a burst sends.
	resetOpts protocol.Options
}

// newWorld builds the world on dc, the command queue's lock lasting lock;
// opts configure connector a.
func newWorld(t *testing.T, dc *testdc.Info, lock time.Duration, opts ...stack.ConnectorOption) *world {
	t.Helper()
	env := stack.New(t, stack.WithDC(dc),
		stack.WithCommandQueue("commands", sbemu.QueueOptions{LockDuration: lock, MaxDeliveryCount: 50}),
		stack.ForEveryConnector(stack.Binary(bins.Path(stack.Production)), stack.Configure(func(c *stack.ConfigSpec) {
			c.DialTimeout, c.OperationTimeout = 2*time.Second, 10*time.Second
			c.Concurrency, c.ShutdownGrace = 4, 5*time.Second
			c.PerUser, c.MaxAttempts = 1000, 40
		})))
	return &world{Env: env, t: t, a: env.Connector("a", opts...),
		client: env.Sender(stack.MaxPending(4096), stack.TTL(30*time.Minute)).Client}
}

// servers configures the connector's DCs (and the name their certificates
// must hold, "" for the URL's host).
func servers(serverName string, urls ...string) stack.ConnectorOption {
	return stack.Configure(func(c *stack.ConfigSpec) { c.Servers, c.ServerName = urls, serverName })
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
func (s *world) users(n int) []testdc.SeedUser {
	out := make([]testdc.SeedUser, n)
	for i := range out {
		out[i] = testdc.NewUser(s.t, s.DC, "")
	}
	return out
}

// burst sends one reset per user and starts awaiting each result.
func (s *world) burst(users []testdc.SeedUser) []*job { return s.burstWith(users, true) }

func (s *world) burstWith(users []testdc.SeedUser, readVersion bool) []*job {
	s.t.Helper()
	jobs := make([]*job, len(users))
	for i, u := range users {
		j := &job{user: u, pw: fmt.Sprintf("Fault!Reset.%d.%04d", time.Now().UnixNano()%1e6, i), awaited: make(chan struct{})}
		if readVersion {
			j.v0 = testdc.PwdVersion(s.t, s.DC, u.DN)
		} else {
			j.v0 = -1
		}
		sec := s.Secret(j.pw)
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
			j.result, j.err = s.client.Await(ctx, p)
		}()
	}
	return jobs
}

// check waits for every result and checks exactly one effect per command.
func (s *world) check(jobs []*job) {
	s.t.Helper()
	for _, j := range jobs {
		<-j.awaited
		if j.err != nil {
			s.t.Errorf("%s: no result: %v", j.user.SAM, j.err)
			continue
		}
		fmt.Fprintf(s.Results, "%+v\n", j.result.Result)
		if j.result.Code != protocol.CodeSucceeded {
			s.t.Errorf("%s: %s (%s)", j.user.SAM, j.result.Code, j.result.Detail)
		}
		if d := testdc.PwdVersion(s.t, s.DC, j.user.DN) - j.v0; d != 1 {
			s.t.Errorf("%s: unicodePwd written %d times, want exactly 1", j.user.SAM, d)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		c, err := testdc.Bind(ctx, s.DC, j.user.DN, j.pw)
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
