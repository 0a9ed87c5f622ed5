//go:build integration

package e2e

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/adwriteback/adwriteback/connector/app"
	"github.com/adwriteback/adwriteback/connector/engine"
	"github.com/adwriteback/adwriteback/integration/stack"
	"github.com/adwriteback/adwriteback/integration/testdc"
	"github.com/adwriteback/adwriteback/ldapx"
	"github.com/adwriteback/adwriteback/relay/keys"
	"github.com/adwriteback/adwriteback/relay/protocol"
	"github.com/adwriteback/adwriteback/relay/sender"
	"github.com/adwriteback/adwriteback/relay/transport"
)

// waitAudited waits until every command of ids has an audit record of
// its apply (the record follows the settlement, after the result).
func waitAudited(t *testing.T, s *stack.Env, ids []string) {
	t.Helper()
	stack.WaitFor(t, time.Minute, "an audit record of every command's apply", func() bool {
		for _, id := range ids {
			if !strings.Contains(strings.Join(s.AuditLines(id), "\n"), `"applied":true`) {
				return false
			}
		}
		return true
	})
}

func sam(u testdc.SeedUser) protocol.UserRef { return protocol.UserRef{SAM: u.SAM} }

func bindErr(t *testing.T, info *testdc.Info, dn, pw string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := testdc.Bind(ctx, info, dn, pw)
	if err == nil {
		c.Close()
	}
	return err
}

func readUser(t *testing.T, info *testdc.Info, dn string) *ldapx.User {
	t.Helper()
	cl, err := ldapx.New(ldapx.Config{Servers: []string{info.LDAPSURL}, BindDN: info.AdminDN, BindPassword: info.AdminPass, CAFile: info.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u, err := cl.ReadUser(ctx, dn)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestEveryOutcomeForReal drives one connector through the real SDK, the
// emulator and the Samba DC, producing each result code from real
// behaviour.
func TestEveryOutcomeForReal(t *testing.T) {
	everyOutcome(t, newEnv(t))
}

// TestKerberosEveryOutcomeForReal is TestEveryOutcomeForReal with the
// connector bound with Kerberos (a keytab of the service account, no
// password in its configuration): the e2e suite's pass with the other
// bind method.
func TestKerberosEveryOutcomeForReal(t *testing.T) {
	everyOutcome(t, newEnv(t, stack.WithKerberos()))
}

// everyOutcome is TestEveryOutcomeForReal's scenario on the stack s.
func everyOutcome(t *testing.T, s *stack.Env) {
	s.Start("a", stack.Configure(func(c *stack.ConfigSpec) { c.PerUser = 5 }))
	c := s.Sender()
	dc := s.DC

	t.Run("succeeded, and the user binds with the new password", func(t *testing.T) {
		u := testdc.NewUser(t, dc, "")
		pw := "E2e!Reset.Pass1"
		res := c.Do(sender.Request{Op: protocol.OpReset, User: protocol.UserRef{UPN: u.UPN}, NewPassword: s.Secret(pw)})
		// The DC that applied it is the audit record's, never the result's.
		if res.Code != protocol.CodeSucceeded || res.DC != "" {
			t.Fatalf("result %+v", res.Result)
		}
		if err := bindErr(t, dc, u.DN, pw); err != nil {
			t.Fatalf("bind with the new password: %v", err)
		}
	})
	t.Run("policy_violation names every rule", func(t *testing.T) {
		u := testdc.NewUser(t, dc, "")
		res := c.Do(sender.Request{Op: protocol.OpReset, User: sam(u), NewPassword: s.Secret(u.SAM + "x")})
		if res.Code != protocol.CodePolicyViolation {
			t.Fatalf("result %+v", res.Result)
		}
		rules := map[string]bool{}
		for _, v := range res.Violations {
			rules[v.Rule] = true
		}
		for _, r := range []string{"min_length", "complexity", "contains_account_name"} {
			if !rules[r] {
				t.Errorf("rule %s not named: %+v", r, res.Violations)
			}
		}
	})
	t.Run("must change and unlock verified in AD", func(t *testing.T) {
		u := testdc.NewUser(t, dc, "", dc.ChangeGroupDN) // lockout after 3 bad passwords
		for range 3 {
			_ = bindErr(t, dc, u.DN, "Wrong!Pass.0")
		}
		if code := testdc.BindData(bindErr(t, dc, u.DN, testdc.UserPass)); code != "775" {
			t.Fatalf("not locked: data %q", code)
		}
		res := c.Do(sender.Request{Op: protocol.OpUnlock, User: sam(u)})
		if res.Code != protocol.CodeSucceeded {
			t.Fatalf("unlock: %+v", res.Result)
		}
		if err := bindErr(t, dc, u.DN, testdc.UserPass); err != nil {
			t.Fatalf("after unlock: %v", err)
		}
		pw := "E2e!Must.Change2"
		res = c.Do(sender.Request{Op: protocol.OpReset, User: sam(u), NewPassword: s.Secret(pw),
			Options: protocol.Options{MustChange: true, Unlock: true}})
		if res.Code != protocol.CodeSucceeded {
			t.Fatalf("reset: %+v", res.Result)
		}
		if !readUser(t, dc, u.DN).MustChange {
			t.Fatal("pwdLastSet is not 0")
		}
		if code := testdc.BindData(bindErr(t, dc, u.DN, pw)); code != "773" {
			t.Fatalf("bind data %q, want 773 (must change)", code)
		}
	})
	t.Run("check applies nothing", func(t *testing.T) {
		u := testdc.NewUser(t, dc, "")
		before := readUser(t, dc, u.DN).PwdLastSet
		res := c.Do(sender.Request{Op: protocol.OpCheck, User: sam(u), NewPassword: s.Secret("E2e!Check.Only3")})
		if res.Code != protocol.CodeSucceeded {
			t.Fatalf("%+v", res.Result)
		}
		if !readUser(t, dc, u.DN).PwdLastSet.Equal(before) {
			t.Fatal("check changed the password")
		}
	})
	t.Run("refusals", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			ref  protocol.UserRef
			code protocol.ResultCode
		}{
			{"user_not_found", protocol.UserRef{SAM: "nobody-here"}, protocol.CodeUserNotFound},
			{"ambiguous_user", protocol.UserRef{ImmutableID: testdc.ConsistencyGUIDDup}, protocol.CodeAmbiguousUser},
			{"out_of_scope", protocol.UserRef{SAM: "outsider"}, protocol.CodeOutOfScope},
			{"protected_account", protocol.UserRef{SAM: "protected"}, protocol.CodeProtectedAccount},
			{"out_of_scope: unknown domain", protocol.UserRef{SAM: "alice", Domain: "other.test"}, protocol.CodeOutOfScope},
		} {
			res := c.Do(sender.Request{Op: protocol.OpReset, User: tc.ref, NewPassword: s.Secret("E2e!Refused.Pw4")})
			if res.Code != tc.code {
				t.Errorf("%s: got %s (%s)", tc.name, res.Code, res.Detail)
			}
		}
	})
	t.Run("account_disabled", func(t *testing.T) {
		u := testdc.NewUser(t, dc, "")
		admin, err := testdc.Admin(context.Background(), dc)
		if err != nil {
			t.Fatal(err)
		}
		m := ldap.NewModifyRequest(u.DN, nil)
		m.Replace("userAccountControl", []string{"514"})
		if err := admin.Modify(m); err != nil {
			t.Fatal(err)
		}
		admin.Close()
		res := c.Do(sender.Request{Op: protocol.OpReset, User: sam(u), NewPassword: s.Secret("E2e!Disabled.Pw5")})
		if res.Code != protocol.CodeAccountDisabled {
			t.Fatalf("%+v", res.Result)
		}
	})
	t.Run("access_denied: wrong old password", func(t *testing.T) {
		u := testdc.NewUser(t, dc, "", dc.ChangeGroupDN)
		res := c.Do(sender.Request{Op: protocol.OpChange, User: sam(u), OldPassword: s.Secret("Not!The.Old.Pw6"),
			NewPassword: s.Secret("E2e!Change.New7")})
		if res.Code != protocol.CodeAccessDenied {
			t.Fatalf("%+v", res.Result)
		}
	})
	t.Run("rejected_by_dc: history on change", func(t *testing.T) {
		u := testdc.NewUser(t, dc, "", dc.ChangeGroupDN) // no minimum age, history 5
		pw := "E2e!History.One8"
		res := c.Do(sender.Request{Op: protocol.OpChange, User: sam(u), OldPassword: s.Secret(testdc.UserPass), NewPassword: s.Secret(pw)})
		if res.Code != protocol.CodeSucceeded {
			t.Fatalf("first change: %+v", res.Result)
		}
		res = c.Do(sender.Request{Op: protocol.OpChange, User: sam(u), OldPassword: s.Secret(pw), NewPassword: s.Secret(testdc.UserPass)})
		if res.Code != protocol.CodeRejectedByDC || res.DCReason != protocol.DCReasonHistory {
			t.Fatalf("change back: %+v", res.Result)
		}
	})
	t.Run("policy_violation: min_age predicted on change", func(t *testing.T) {
		u := testdc.NewUser(t, dc, "") // domain minimum age: 1 day
		res := c.Do(sender.Request{Op: protocol.OpChange, User: sam(u), OldPassword: s.Secret(testdc.UserPass), NewPassword: s.Secret("E2e!Too.Young9")})
		if res.Code != protocol.CodePolicyViolation || len(res.Violations) != 1 || res.Violations[0].Rule != "min_age" {
			t.Fatalf("%+v", res.Result)
		}
	})
	t.Run("rate_limited on the 6th try", func(t *testing.T) {
		u := testdc.NewUser(t, dc, "")
		for i := range 6 {
			res := c.Do(sender.Request{Op: protocol.OpReset, User: sam(u), NewPassword: s.Secret(fmt.Sprintf("E2e!Rate.Limit%d", i))})
			want := protocol.CodeSucceeded
			if i == 5 {
				want = protocol.CodeRateLimited
			}
			if res.Code != want {
				t.Fatalf("try %d: %s", i+1, res.Code)
			}
			if i == 5 && res.RetryAfter <= 0 {
				t.Fatal("no retryAfter")
			}
		}
	})
	t.Run("invalid_command: sealed to an unknown connector key", func(t *testing.T) {
		u := testdc.NewUser(t, dc, "")
		other, err := keys.GenerateConnector(keys.DefaultKEM, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		wrong := s.Sender(stack.SenderConfig(func(cfg *sender.Config) {
			pub := other.Public()
			cfg.SealTo = protocol.SealKey{KID: pub.KID, Key: pub.HPKE}
		}))
		res := wrong.Do(sender.Request{Op: protocol.OpReset, User: sam(u), NewPassword: s.Secret("E2e!Invalid.Pw11")})
		if res.Code != protocol.CodeInvalidCommand {
			t.Fatalf("%+v", res.Result)
		}
	})
}

// TestExpiredWhenClocksDisagree: a command that is already expired by the
// connector's clock (here 30 minutes ahead of the sender's) is answered
// "expired" and not applied.
func TestExpiredWhenClocksDisagree(t *testing.T) {
	s := newEnv(t)
	s.Start("a", stack.ClockAhead(30*time.Minute))
	u := testdc.NewUser(t, s.DC, "")
	before := readUser(t, s.DC, u.DN).PwdLastSet
	res := s.Sender().Do(sender.Request{Op: protocol.OpReset, User: sam(u), NewPassword: s.Secret("E2e!Expired.Pw10"), TTL: 5 * time.Minute})
	if res.Code != protocol.CodeExpired {
		t.Fatalf("%+v", res.Result)
	}
	if !readUser(t, s.DC, u.DN).PwdLastSet.Equal(before) {
		t.Fatal("an expired command was applied")
	}
}

// TestTransientWhenNoDCAnswers: a domain whose only DC refuses connections
// is retried (abandon, redelivery) and finally answered "transient".
func TestTransientWhenNoDCAnswers(t *testing.T) {
	s := newEnv(t)
	s.Start("t", stack.Configure(func(c *stack.ConfigSpec) {
		c.MaxAttempts = 2
		c.Servers = []string{"ldaps://127.0.0.1:1"}
	}))
	res := s.Sender().Do(sender.Request{Op: protocol.OpReset, User: protocol.UserRef{SAM: "alice"}, NewPassword: s.Secret("E2e!Transient.12")})
	if res.Code != protocol.CodeTransient {
		t.Fatalf("%+v", res.Result)
	}
	// The audit record follows the settlement: wait for it.
	if !stack.Eventually(30*time.Second, func() bool { return strings.Contains(s.Audit(), `"settlement":"abandoned"`) }) {
		t.Error("the first attempt was not abandoned for a retry")
	}
}

// blockingReporter journals-then-hangs: the first Report for each id
// blocks until released, like a process that dies after journaling the
// result but before sending it and settling the message.
type blockingReporter struct {
	inner   engine.Reporter
	entered chan string
	release chan struct{}
}

func (b *blockingReporter) Report(ctx context.Context, d *transport.Delivery, id string, body []byte) error {
	select {
	case b.entered <- id:
	default:
	}
	select {
	case <-b.release:
	case <-ctx.Done():
	}
	return errors.New("simulated crash before the result was sent")
}

// TestRedeliveryAfterCrashAppliesOnce: instance A applies a reset and
// journals the result, then "crashes" before reporting and settling; the
// command comes back to instance A' (same journal) and is answered from
// the journal with the same result, without a second write to AD.
func TestRedeliveryAfterCrashAppliesOnce(t *testing.T) {
	s := newEnv(t)
	u := testdc.NewUser(t, s.DC, "")
	br := &blockingReporter{entered: make(chan string, 1), release: make(chan struct{})}
	a := s.Connector("a")
	a.Start(stack.Deps(func(d *app.Deps) {
		d.WrapReporter = func(r engine.Reporter) engine.Reporter { br.inner = r; return br }
	}))
	c := s.Sender()
	pw := "E2e!Crash.Once13"
	p, err := c.Client.Send(context.Background(), sender.Request{Op: protocol.OpReset, User: sam(u), NewPassword: s.Secret(pw),
		Actor: protocol.Actor{Kind: protocol.ActorAdmin, ID: "e2e"}})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-br.entered:
	case <-time.After(time.Minute):
		t.Fatal("the command was never applied")
	}
	applied := testdc.PwdVersion(t, s.DC, u.DN)
	if err := bindErr(t, s.DC, u.DN, pw); err != nil {
		t.Fatalf("not applied before the crash: %v", err)
	}
	close(br.release)
	a.Stop() // the message is abandoned on shutdown

	a.Start() // restarted on the same journal, without the hook
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	res, err := c.Client.Await(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if res.Code != protocol.CodeSucceeded {
		t.Fatalf("%+v", res.Result)
	}
	if now := testdc.PwdVersion(t, s.DC, u.DN); now != applied {
		t.Fatalf("the password's version moved from %d to %d: applied twice", applied, now)
	}
}

// TestTwoInstancesOneQueueNoDoubleApply: two connectors with their own
// journals consume one queue; every command is applied once and answered.
func TestTwoInstancesOneQueueNoDoubleApply(t *testing.T) {
	s := newEnv(t)
	s.Start("a")
	s.Start("b")
	c := s.Sender()
	const n = 12
	var wg sync.WaitGroup
	var failed atomic.Int32
	ids := make([]string, n)
	users := make([]testdc.SeedUser, n)
	v0 := make([]int, n)
	for i := range n {
		u := testdc.NewUser(t, s.DC, "")
		users[i], v0[i] = u, testdc.PwdVersion(t, s.DC, u.DN)
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			res, err := c.Client.Do(ctx, sender.Request{Op: protocol.OpReset, User: sam(u), NewPassword: s.Secret(fmt.Sprintf("E2e!Two.Inst%02d", i)),
				Actor: protocol.Actor{Kind: protocol.ActorSelfService, ID: "e2e"}})
			if err != nil || res.Code != protocol.CodeSucceeded {
				t.Errorf("command %d: %v %+v", i, err, res)
				failed.Add(1)
				return
			}
			ids[i] = res.CommandID
		}()
	}
	wg.Wait()
	if failed.Load() > 0 {
		st, _ := s.Emu.Queue(context.Background(), s.Replies)
		t.Logf("replies queue: %+v", st)
		t.FailNow()
	}
	instances := map[string]bool{}
	waitAudited(t, s, ids)
	for _, id := range ids {
		appliedLines := 0
		for _, l := range s.AuditLines(id) {
			if strings.Contains(l, `"applied":true`) && !strings.Contains(l, `"from_journal":true`) {
				appliedLines++
			}
		}
		if appliedLines != 1 {
			t.Errorf("command %s applied %d times", id, appliedLines)
		}
	}
	for i, u := range users {
		if v := testdc.PwdVersion(t, s.DC, u.DN); v != v0[i]+1 {
			t.Errorf("user %d: password written %d times, want once", i, v-v0[i])
		}
	}
	for _, l := range strings.Split(s.Logs(), "\n") {
		if strings.Contains(l, `"msg":"connector running"`) {
			instances[l[strings.Index(l, `"instance":`):]] = true
		}
	}
	if len(instances) != 2 {
		t.Errorf("expected two running instances, saw %d", len(instances))
	}
}

// TestShutdownMidBurstLosesNothing: a burst is queued, the connector is
// stopped part-way, and a restarted connector (same journal) answers every
// command exactly once in effect.
func TestShutdownMidBurstLosesNothing(t *testing.T) {
	s := newEnv(t)
	c := s.Sender()
	const n = 16
	var users []testdc.SeedUser
	var v0 []int
	var preps []*sender.Prepared
	for i := range n {
		u := testdc.NewUser(t, s.DC, "")
		users = append(users, u)
		v0 = append(v0, testdc.PwdVersion(t, s.DC, u.DN))
		p, err := c.Client.Send(context.Background(), sender.Request{Op: protocol.OpReset, User: sam(u),
			NewPassword: s.Secret(fmt.Sprintf("E2e!Burst.Pw%02d", i)), Actor: protocol.Actor{Kind: protocol.ActorAdmin, ID: "e2e"}})
		if err != nil {
			t.Fatal(err)
		}
		preps = append(preps, p)
	}
	a := s.Start("a")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	first, err := c.Client.Await(ctx, preps[2]) // some work done
	if err != nil {
		t.Fatal(err)
	}
	a.Stop()
	a.Start() // same journal file
	for i, p := range preps {
		res := first
		if i != 2 {
			if res, err = c.Client.Await(ctx, p); err != nil {
				t.Fatalf("command %d lost: %v", i, err)
			}
		}
		if res.Code != protocol.CodeSucceeded {
			t.Errorf("command %d: %+v", i, res.Result)
		}
		if err := bindErr(t, s.DC, users[i].DN, fmt.Sprintf("E2e!Burst.Pw%02d", i)); err != nil {
			t.Errorf("user %d cannot bind with the new password: %v", i, err)
		}
	}
	ids := make([]string, len(preps))
	for i, p := range preps {
		ids[i] = p.Command.ID
	}
	waitAudited(t, s, ids)
	for _, p := range preps {
		n := 0
		for _, l := range s.AuditLines(p.Command.ID) {
			if strings.Contains(l, `"applied":true`) && !strings.Contains(l, `"from_journal":true`) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("command %s applied %d times", p.Command.ID, n)
		}
	}
	for i, u := range users {
		if v := testdc.PwdVersion(t, s.DC, u.DN); v != v0[i]+1 {
			t.Errorf("user %d: password written %d times, want once", i, v-v0[i])
		}
	}
}
