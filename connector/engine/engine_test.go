package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/adwriteback/adwriteback/connector/audit"
	"github.com/adwriteback/adwriteback/connector/journal"
	"github.com/adwriteback/adwriteback/ldapx"
	"github.com/adwriteback/adwriteback/relay/keys"
	"github.com/adwriteback/adwriteback/relay/protocol"
	"github.com/adwriteback/adwriteback/relay/sender"
	"github.com/adwriteback/adwriteback/relay/transport"
)

// fakeDir is an in-memory directory with AD's behaviour where the engine
// depends on it.
type fakeDir struct {
	mu       sync.Mutex
	users    map[string]*ldapx.User // by sAMAccountName
	pol      ldapx.Policy
	now      func() time.Time
	writes   []string // "reset CN=..", ...
	resetErr error
	// applyThenFail: the write happens, then the error is returned (lost answer).
	applyThenFail bool
	groups        map[string][]string // group DN -> member DNs
	groupSIDs     map[string]string   // group DN -> objectSid
	// noTokenGroups: tokenGroups is unreadable (an empty list).
	noTokenGroups bool
	// groupErr, when set, is what GroupSID returns.
	groupErr error
	// polErr, when set, is what EffectivePolicy returns.
	polErr error
}

func (f *fakeDir) find(ref ldapx.UserRef) []*ldapx.User {
	var out []*ldapx.User
	for _, u := range f.users {
		switch ref.Kind {
		case ldapx.RefSAM:
			if strings.EqualFold(u.SAMAccountName, ref.Value) {
				out = append(out, u)
			}
		case ldapx.RefUPN:
			if strings.EqualFold(u.UserPrincipalName, ref.Value) {
				out = append(out, u)
			}
		case ldapx.RefObjectGUID:
			if u.ObjectGUID == ref.Value {
				out = append(out, u)
			}
		}
	}
	return out
}

func (f *fakeDir) FindUser(ctx context.Context, ref ldapx.UserRef) (*ldapx.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := f.find(ref)
	switch len(m) {
	case 0:
		return nil, &ldapx.Error{Op: "find", Kind: ldapx.KindNotFound}
	case 1:
		c := *m[0]
		return &c, nil
	}
	return nil, &ldapx.Error{Op: "find", Kind: ldapx.KindAmbiguous}
}

func (f *fakeDir) ReadUser(ctx context.Context, dn string) (*ldapx.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, u := range f.users {
		if u.DN == dn {
			c := *u
			return &c, nil
		}
	}
	return nil, &ldapx.Error{Op: "read", Kind: ldapx.KindNoSuchObject}
}

// TokenGroups models AD: the primary group Domain Users, then each group
// listing dn as a member.
func (f *fakeDir) TokenGroups(ctx context.Context, dn string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.noTokenGroups {
		return nil, nil
	}
	sids := []string{fakeDomainSID + "-513"}
	for g, members := range f.groups {
		for _, m := range members {
			if m == dn {
				sids = append(sids, f.groupSIDs[g])
			}
		}
	}
	return sids, nil
}

func (f *fakeDir) GroupSID(ctx context.Context, dn string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.groupErr != nil {
		return "", f.groupErr
	}
	if sid, ok := f.groupSIDs[dn]; ok {
		return sid, nil
	}
	return "", &ldapx.Error{Op: "group", Kind: ldapx.KindNoSuchObject}
}

// fakeDomainSID is the fake directory's domain SID.
const fakeDomainSID = "S-1-5-21-1-2-3"

func (f *fakeDir) EffectivePolicy(ctx context.Context, u *ldapx.User) (*ldapx.Policy, error) {
	if f.polErr != nil {
		return nil, f.polErr
	}
	p := f.pol
	return &p, nil
}

// write models AD: a password write raises unicodePwd's version (when the
// account's version is readable, non-zero) and sets pwdLastSet, to 0 for
// must-change.
func (f *fakeDir) write(op, dn string, mustChange bool) (ldapx.Applied, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.resetErr != nil && !f.applyThenFail {
		return ldapx.Applied{}, f.resetErr
	}
	f.writes = append(f.writes, op+" "+dn)
	for _, u := range f.users {
		if u.DN == dn && op != "unlock" {
			u.PwdWrittenAt = f.now()
			u.PwdLastSet, u.MustChange = f.now().Add(time.Second), false
			if mustChange {
				u.PwdLastSet, u.MustChange = time.Time{}, true
			}
			if u.PwdVersion != 0 {
				u.PwdVersion++
			}
		}
	}
	if f.applyThenFail {
		return ldapx.Applied{}, f.resetErr
	}
	return ldapx.Applied{DC: "ldaps://fake-dc"}, nil
}

func (f *fakeDir) Reset(ctx context.Context, dn, pw string, o ldapx.ResetOptions) (ldapx.Applied, error) {
	return f.write("reset", dn, o.MustChange)
}
func (f *fakeDir) Change(ctx context.Context, dn, old, pw string) (ldapx.Applied, error) {
	return f.write("change", dn, false)
}
func (f *fakeDir) Unlock(ctx context.Context, dn string) (ldapx.Applied, error) {
	return f.write("unlock", dn, false)
}

func (f *fakeDir) writeCount() int { f.mu.Lock(); defer f.mu.Unlock(); return len(f.writes) }

// memReporter keeps results; fail makes Report fail.
type memReporter struct {
	mu      sync.Mutex
	results map[string][][]byte
	fail    error
}

func (m *memReporter) Report(ctx context.Context, d *transport.Delivery, id string, body []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	m.results[id] = append(m.results[id], append([]byte(nil), body...))
	return nil
}

type rig struct {
	t      *testing.T
	eng    *Engine
	dir    *fakeDir
	rep    *memReporter
	snd    *sender.Client
	conn   *keys.ConnectorPrivate
	jr     *journal.Journal
	auditB *syncBuf
	now    time.Time
	// waits are the engine's timed waits; duringWait runs inside each.
	waits      []time.Duration
	duringWait func()
	// preps are the commands built, by id (their results are checked
	// against them).
	preps map[string]*sender.Prepared
}

// noLeak fails if any password appears in the audit trail or a result.
func (r *rig) noLeak(pws ...string) {
	r.t.Helper()
	var all strings.Builder
	all.WriteString(r.auditB.String())
	r.rep.mu.Lock()
	for _, bodies := range r.rep.results {
		for _, b := range bodies {
			all.Write(b)
		}
	}
	r.rep.mu.Unlock()
	for _, pw := range pws {
		if strings.Contains(all.String(), pw) {
			r.t.Fatalf("password %q leaked into the audit trail or a result", pw)
		}
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

const scopeOU = "OU=Managed,DC=adw,DC=test"

func newRig(t *testing.T, mutate ...func(*Config, *Domain)) *rig {
	t.Helper()
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	rg := &rig{}
	tc := newTestClock(t, now, func(d time.Duration) {
		// Waits are recorded; a test decides what happened meanwhile
		// through rg.duringWait.
		rg.waits = append(rg.waits, d)
		if rg.duringWait != nil {
			rg.duringWait()
		}
	})
	clock := tc.Now
	conn, err := keys.GenerateConnector(keys.DefaultKEM, now)
	if err != nil {
		t.Fatal(err)
	}
	snd, err := keys.GenerateSender(now)
	if err != nil {
		t.Fatal(err)
	}
	scfg, err := sender.ConfigFromKeys(snd, conn.Public())
	if err != nil {
		t.Fatal(err)
	}
	scfg.Clock = clockwork.NewFakeClockAt(now)
	sc, err := sender.New(scfg)
	if err != nil {
		t.Fatal(err)
	}
	openKeys, _ := keys.OpenKeysOf(conn)
	verify, _ := keys.VerifyKeysOf(snd.Public())
	jr, err := journal.Open(filepath.Join(t.TempDir(), "j.db"), journal.Options{Clock: clockwork.NewFakeClockAt(now), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { jr.Close() })
	dir := &fakeDir{now: clock, users: map[string]*ldapx.User{}, groups: map[string][]string{}, groupSIDs: map[string]string{},
		pol: ldapx.Policy{MinLength: 12, Complexity: true, HistoryLength: 24, MinAge: 24 * time.Hour}}
	for i, u := range []struct{ sam, dn, display string }{
		{"alice", "CN=Alice Liddell," + scopeOU, "Alice Liddell"},
		{"outsider", "CN=Otto,OU=Unmanaged,DC=adw,DC=test", "Otto"},
		{"prot", "CN=Prot," + scopeOU, "Prot"},
		{"off", "CN=Off," + scopeOU, "Off"},
		{"excluded", "CN=Ex," + scopeOU, "Ex"},
	} {
		dir.users[u.sam] = &ldapx.User{DN: u.dn, SAMAccountName: u.sam, UserPrincipalName: u.sam + "@adw.test",
			DisplayName: u.display, ObjectGUID: fmt.Sprintf("00000000-0000-0000-0000-%012d", i),
			PwdLastSet: now.Add(-48 * time.Hour), UserAccountControl: ldapx.UACNormalAccount,
			SID: fmt.Sprintf("%s-%d", fakeDomainSID, 1100+i)}
	}
	dir.users["prot"].AdminCount = 1
	dir.users["off"].UserAccountControl |= ldapx.UACAccountDisable
	dir.groups["CN=NoWriteback,DC=adw,DC=test"] = []string{dir.users["excluded"].DN}
	dir.groupSIDs["CN=NoWriteback,DC=adw,DC=test"] = fakeDomainSID + "-2000"
	rep := &memReporter{results: map[string][][]byte{}}
	ab := &syncBuf{}
	dom := &Domain{Name: "adw.test", Dir: dir, ScopeOUs: []string{scopeOU}, ExcludeGroups: []string{"CN=NoWriteback,DC=adw,DC=test"}}
	cfg := validConfig()
	cfg.Receiver = &protocol.Receiver{Senders: verify, Keys: openKeys, Clock: tc}
	cfg.Signer, cfg.Journal, cfg.Reporter, cfg.Domains = conn.SigningKey(), jr, rep, []*Domain{dom}
	cfg.Audit, cfg.Clock, cfg.Logger = audit.New(ab), tc, slog.New(slog.NewTextHandler(os.Stderr, nil))
	for _, m := range mutate {
		m(&cfg, dom)
	}
	eng, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	*rg = rig{t: t, eng: eng, dir: dir, rep: rep, snd: sc, conn: conn, jr: jr, auditB: ab, now: now, preps: map[string]*sender.Prepared{}}
	return rg
}

// validConfig fills the values connector/config owns with its defaults
// (5 per user in 24h, 4 at once, 5 attempts) and the write window app
// computes for the default 30s LDAP timeout; the rig adds the components.
func validConfig() Config {
	return Config{RateLimit: 5, RateWindow: 24 * time.Hour, Concurrency: 4, MaxAttempts: 5, WriteWindow: 35 * time.Second,
		UnverifiedAuditPerMinute: 10}
}

// testClock is the rig's fake clock. Each wait the engine starts is
// passed to onWait (in the engine's goroutine, before it blocks); a
// goroutine then advances the clock by exactly that wait once the engine
// blocks on it, so a timed wait ends at once, at its time.
type testClock struct {
	*clockwork.FakeClock
	onWait  func(time.Duration)
	mu      sync.Mutex
	pending []time.Duration
}

func newTestClock(t *testing.T, now time.Time, onWait func(time.Duration)) *testClock {
	c := &testClock{FakeClock: clockwork.NewFakeClockAt(now), onWait: onWait}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		for c.BlockUntilContext(ctx, 1) == nil {
			c.mu.Lock()
			d := c.pending[0]
			c.pending = c.pending[1:]
			c.mu.Unlock()
			c.Advance(d)
		}
	}()
	return c
}

func (c *testClock) After(d time.Duration) <-chan time.Time {
	c.onWait(d)
	if d > 0 {
		c.mu.Lock()
		c.pending = append(c.pending, d)
		c.mu.Unlock()
	}
	return c.FakeClock.After(d)
}

// handle hands d to the engine and settles it as the source would, as
// told and successfully; the settlement writes the audit record.
func (r *rig) handle(d *transport.Delivery) transport.Disposition {
	disp := r.eng.Handle(context.Background(), d)
	disp.Report(transport.Settlement{Action: disp.Action})
	return disp
}

// markApplying puts d's command in the journal as a first life left it
// when the process died after marking the write to sam's account.
func (r *rig) markApplying(d *transport.Delivery, sam string) {
	r.t.Helper()
	v, err := protocol.VerifyCommand(d.Body, r.eng.recv.Senders)
	if err != nil {
		r.t.Fatal(err)
	}
	if _, err := r.jr.Claim(context.Background(), v.ID, v.Digest, r.now.Add(time.Hour)); err != nil {
		r.t.Fatal(err)
	}
	u := r.dir.users[sam]
	if err := r.jr.MarkApplying(context.Background(), v.ID, u.DN, u.PwdLastSet, u.PwdVersion); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) build(req sender.Request) *transport.Delivery {
	r.t.Helper()
	p, err := r.snd.Build(req)
	if err != nil {
		r.t.Fatal(err)
	}
	r.preps[p.Command.ID] = p
	return &transport.Delivery{MessageID: p.Envelope.ID, Body: p.Envelope.Body, DeliveryCount: 1, ReplyTo: "replies"}
}

func reset(sam, pw string) sender.Request {
	return sender.Request{Op: protocol.OpReset, User: protocol.UserRef{SAM: sam},
		Actor: protocol.Actor{Kind: protocol.ActorSelfService, ID: "portal"}, NewPassword: protocol.SecretFromString(pw)}
}

func (r *rig) result(id string) *protocol.VerifiedResult {
	r.t.Helper()
	r.rep.mu.Lock()
	bodies := r.rep.results[id]
	r.rep.mu.Unlock()
	if len(bodies) == 0 {
		r.t.Fatalf("no result for %s", id)
	}
	p := r.preps[id]
	if p == nil {
		p = &sender.Prepared{Command: protocol.Command{ID: id}}
	}
	v, err := r.snd.VerifyResult(bodies[len(bodies)-1], p)
	if err != nil {
		r.t.Fatalf("result does not verify: %v", err)
	}
	return v
}

func wantAction(t *testing.T, got transport.Disposition, want transport.Disposition) {
	t.Helper()
	if got.Action != want.Action {
		t.Fatalf("disposition %+v, want %+v", got, want)
	}
}

const goodPw = "Correct!Horse.42"

func TestResetSucceedsOnceAndRedeliveryIsAnsweredFromJournal(t *testing.T) {
	r := newRig(t)
	d := r.build(reset("alice", goodPw))
	wantAction(t, r.handle(d), transport.Complete())
	res := r.result(d.MessageID)
	if res.Code != protocol.CodeSucceeded {
		t.Fatalf("result %+v", res.Result)
	}
	d2 := *d
	d2.DeliveryCount = 2
	wantAction(t, r.handle(&d2), transport.Complete())
	if n := r.dir.writeCount(); n != 1 {
		t.Fatalf("%d writes to AD, want exactly 1", n)
	}
	r.rep.mu.Lock()
	bodies := r.rep.results[d.MessageID]
	r.rep.mu.Unlock()
	if len(bodies) != 2 || !bytes.Equal(bodies[0], bodies[1]) {
		t.Fatalf("redelivery answered with a different result (%d results)", len(bodies))
	}
	if !strings.Contains(r.auditB.String(), `"from_journal":true`) {
		t.Error("audit does not show the journal answer")
	}
	r.noLeak(goodPw)
}

func TestPolicyViolationNamesEveryRule(t *testing.T) {
	r := newRig(t)
	d := r.build(reset("alice", "alice1"))
	wantAction(t, r.handle(d), transport.Complete())
	res := r.result(d.MessageID)
	if res.Code != protocol.CodePolicyViolation {
		t.Fatalf("code %s", res.Code)
	}
	rules := map[string]protocol.Violation{}
	for _, v := range res.Violations {
		rules[v.Rule] = v
	}
	for _, want := range []string{"min_length", "complexity", "contains_account_name"} {
		if _, ok := rules[want]; !ok {
			t.Errorf("rule %s missing from %+v", want, res.Violations)
		}
	}
	if got := rules["min_length"].Fields["required"]; fmt.Sprint(got) != "12" {
		t.Errorf("min_length required %v", got)
	}
	if r.dir.writeCount() != 0 {
		t.Fatal("a refused password reached AD")
	}
	r.noLeak("alice1")
}

func TestRefusalsBeforeTouchingAD(t *testing.T) {
	for _, tc := range []struct {
		sam  string
		code protocol.ResultCode
	}{
		{"nobody", protocol.CodeUserNotFound},
		{"outsider", protocol.CodeOutOfScope},
		{"prot", protocol.CodeProtectedAccount},
		{"off", protocol.CodeAccountDisabled},
		{"excluded", protocol.CodeOutOfScope},
	} {
		t.Run(tc.sam, func(t *testing.T) {
			r := newRig(t)
			d := r.build(reset(tc.sam, goodPw))
			wantAction(t, r.handle(d), transport.Complete())
			if res := r.result(d.MessageID); res.Code != tc.code {
				t.Fatalf("code %s, want %s", res.Code, tc.code)
			}
			if r.dir.writeCount() != 0 {
				t.Fatal("AD was written")
			}
		})
	}
	t.Run("ambiguous", func(t *testing.T) {
		r := newRig(t)
		r.dir.users["alice2"] = &ldapx.User{DN: "CN=A2," + scopeOU, SAMAccountName: "x", UserPrincipalName: "alice@adw.test"}
		d := r.build(sender.Request{Op: protocol.OpReset, User: protocol.UserRef{UPN: "alice@adw.test"},
			Actor: protocol.Actor{Kind: protocol.ActorAdmin, ID: "a"}, NewPassword: protocol.SecretFromString(goodPw)})
		r.handle(d)
		if res := r.result(d.MessageID); res.Code != protocol.CodeAmbiguousUser {
			t.Fatalf("code %s", res.Code)
		}
	})
	t.Run("protected allowed", func(t *testing.T) {
		r := newRig(t, func(_ *Config, d *Domain) { d.AllowProtected = true })
		d := r.build(reset("prot", goodPw))
		r.handle(d)
		if res := r.result(d.MessageID); res.Code != protocol.CodeSucceeded {
			t.Fatalf("code %s", res.Code)
		}
	})
}

func TestRateLimitOnSixthAttempt(t *testing.T) {
	r := newRig(t)
	for i := range 6 {
		d := r.build(reset("alice", fmt.Sprintf("Correct!Horse.%d", 40+i)))
		r.handle(d)
		res := r.result(d.MessageID)
		if i < 5 && res.Code != protocol.CodeSucceeded {
			t.Fatalf("attempt %d: %s", i+1, res.Code)
		}
		if i == 5 {
			if res.Code != protocol.CodeRateLimited || res.RetryAfter <= 0 {
				t.Fatalf("6th attempt: %s retryAfter %d", res.Code, res.RetryAfter)
			}
		}
	}
	if n := r.dir.writeCount(); n != 5 {
		t.Fatalf("%d writes", n)
	}
}

// TestRedeliveryTakesNoSecondAttempt: a command the DC failed
// transiently comes back; each delivery is the same command and counts
// once against the user's limit, whichever delivery succeeds.
func TestRedeliveryTakesNoSecondAttempt(t *testing.T) {
	r := newRig(t, func(c *Config, _ *Domain) { c.RateLimit = 2 })
	r.dir.resetErr = &ldapx.Error{Op: "reset", Kind: ldapx.KindTransient}
	d := r.build(reset("alice", goodPw))
	for i := uint32(1); i <= 3; i++ {
		d.DeliveryCount = i
		if disp := r.handle(d); disp.Action != transport.Abandon().Action {
			t.Fatalf("delivery %d: %s answered %s, want abandoned (transient)", i, disp.Action, r.result(d.MessageID).Code)
		}
	}
	r.dir.resetErr = nil
	d.DeliveryCount = 4
	wantAction(t, r.handle(d), transport.Complete())
	if res := r.result(d.MessageID); res.Code != protocol.CodeSucceeded {
		t.Fatalf("the redelivered command: %s, want succeeded (one attempt)", res.Code)
	}
	d2 := r.build(reset("alice", "Correct!Horse.43"))
	r.handle(d2)
	if res := r.result(d2.MessageID); res.Code != protocol.CodeSucceeded {
		t.Fatalf("a second command: %s, want succeeded (the second attempt)", res.Code)
	}
	d3 := r.build(reset("alice", "Correct!Horse.44"))
	r.handle(d3)
	if res := r.result(d3.MessageID); res.Code != protocol.CodeRateLimited {
		t.Fatalf("a third command: %s, want rate_limited", res.Code)
	}
}

// TestCheckIsRateLimited: a check counts against the user's limit like
// any other operation, else anyone able to send a signed command could
// probe an account without bound.
func TestCheckIsRateLimited(t *testing.T) {
	r := newRig(t, func(c *Config, _ *Domain) { c.RateLimit = 2 })
	for i := range 3 {
		d := r.build(sender.Request{Op: protocol.OpCheck, User: protocol.UserRef{SAM: "alice"},
			Actor: protocol.Actor{Kind: protocol.ActorSelfService, ID: "p"}, NewPassword: protocol.SecretFromString(goodPw)})
		r.handle(d)
		res := r.result(d.MessageID)
		want := protocol.CodeSucceeded
		if i == 2 {
			want = protocol.CodeRateLimited
		}
		if res.Code != want {
			t.Fatalf("check %d: %s, want %s", i+1, res.Code, want)
		}
		// A redelivery of the same check takes no second attempt: the
		// third check below is still the one over the limit.
		if i == 0 {
			d.DeliveryCount = 2
			r.handle(d)
			if res := r.result(d.MessageID); res.Code != protocol.CodeSucceeded {
				t.Fatalf("check 1 redelivered: %s", res.Code)
			}
		}
	}
	if r.dir.writeCount() != 0 {
		t.Fatal("check wrote to AD")
	}
}

// TestUnreadablePSOIsNotUserNotFound: msDS-ResultantPSO names a policy
// the service account may not read (the default: PSOs are readable by
// admins only). The user exists; the connector cannot determine its
// effective policy, and says so.
func TestUnreadablePSOIsNotUserNotFound(t *testing.T) {
	const pso = "CN=Strict,CN=Password Settings Container,CN=System,DC=adw,DC=test"
	r := newRig(t)
	r.dir.users["alice"].ResultantPSO = pso
	// What ldapx.EffectivePolicy returns when the DC hides the PSO: a base
	// search that finds nothing.
	r.dir.polErr = fmt.Errorf("read the resultant PSO: %w",
		&ldapx.Error{Op: "ldapx.EffectivePolicy", Kind: ldapx.KindNoSuchObject, DC: "dc1.adw.test",
			Err: fmt.Errorf("%s not readable", pso)})
	for _, op := range []protocol.Op{protocol.OpReset, protocol.OpCheck} {
		d := r.build(sender.Request{Op: op, User: protocol.UserRef{SAM: "alice"},
			Actor: protocol.Actor{Kind: protocol.ActorAdmin, ID: "helpdesk"}, NewPassword: protocol.SecretFromString(goodPw)})
		r.handle(d)
		res := r.result(d.MessageID)
		if res.Code != protocol.CodeAccessDenied {
			t.Fatalf("%s: %s (%s), want access_denied", op, res.Code, res.Detail)
		}
		// The audit record names the PSO and the fix; the result does not.
		if a := r.auditRecord(d.MessageID).Detail; !strings.Contains(a, "cannot read the fine-grained policy "+pso+" that applies to the user") ||
			!strings.Contains(a, "grant read on the Password Settings Container") {
			t.Fatalf("%s: audit detail %q does not name the PSO and the fix", op, a)
		}
		r.wantUndisclosed(res, pso)
	}
	if r.dir.writeCount() != 0 {
		t.Fatal("written without knowing the policy")
	}
	r.noLeak(goodPw)
}

func TestTransientIsRetriedThenAnswered(t *testing.T) {
	r := newRig(t)
	r.dir.resetErr = &ldapx.Error{Op: "reset", Kind: ldapx.KindTransient}
	d := r.build(reset("alice", goodPw))
	wantAction(t, r.handle(d), transport.Abandon())
	d.DeliveryCount = 5
	wantAction(t, r.handle(d), transport.Complete())
	if res := r.result(d.MessageID); res.Code != protocol.CodeTransient {
		t.Fatalf("code %s", res.Code)
	}
}

func TestLostAnswerRecognisedFromPwdLastSet(t *testing.T) {
	r := newRig(t)
	r.dir.resetErr = &ldapx.Error{Op: "reset", Kind: ldapx.KindTransient}
	r.dir.applyThenFail = true
	d := r.build(reset("alice", goodPw))
	wantAction(t, r.handle(d), transport.Complete())
	if res := r.result(d.MessageID); res.Code != protocol.CodeSucceeded {
		t.Fatalf("code %s, want succeeded (the write happened)", res.Code)
	}
}

// TestUnclassifiedWriteFailureChecksAD: an error ldapx could not classify
// says nothing about the write; when the account shows it landed the
// answer is succeeded, else internal (and nothing is written twice).
func TestUnclassifiedWriteFailureChecksAD(t *testing.T) {
	for _, wrote := range []bool{true, false} {
		r := newRig(t)
		r.dir.resetErr = errors.New("something no one classified")
		r.dir.applyThenFail = wrote
		d := r.build(reset("alice", goodPw))
		wantAction(t, r.handle(d), transport.Complete())
		want := protocol.CodeInternal
		if wrote {
			want = protocol.CodeSucceeded
		}
		if res := r.result(d.MessageID); res.Code != want {
			t.Errorf("written=%v: code %s, want %s", wrote, res.Code, want)
		}
	}
}

func TestCrashAfterApplyIsSettledFromAD(t *testing.T) {
	r := newRig(t)
	d := r.build(reset("alice", goodPw))
	// Simulate the first life: claimed, marked applying, written, then the
	// process died before recording the outcome.
	r.markApplying(d, "alice")
	alice := r.dir.users["alice"]
	if _, err := r.dir.write("reset", alice.DN, false); err != nil {
		t.Fatal(err)
	}
	d.DeliveryCount = 2
	wantAction(t, r.handle(d), transport.Complete())
	if res := r.result(d.MessageID); res.Code != protocol.CodeSucceeded {
		t.Fatalf("code %s", res.Code)
	}
	if n := r.dir.writeCount(); n != 1 {
		t.Fatalf("%d writes; the resumed command must not write again", n)
	}
}

// TestRedeliveryAppliedByAnotherInstance: instances share the queue, not
// the journal. A redelivered command this journal never marked, whose
// account shows a password write after the command was queued (with the
// must-change flag the command sets), was applied by an earlier delivery to
// another instance that stopped before answering: it is answered succeeded
// and not written again. A first delivery, a write from before the command
// was queued, or a flag the command would not set, is written as usual. The
// write's time is pwdLastSet (to 100 ns), or for a must-change reset (which
// sets it to 0) the replication metadata's (whole seconds).
func TestRedeliveryAppliedByAnotherInstance(t *testing.T) {
	for _, tc := range []struct {
		name            string
		deliveries      uint32
		writtenAfter    time.Duration // the account's last write, from the enqueue
		mustChange      bool          // the command's option
		accountMustChng bool
		noMeta          bool // replPropertyMetaData unreadable
		wantWrite       bool
	}{
		{name: "redelivered, written after queued", deliveries: 2, writtenAfter: 3 * time.Second},
		{name: "written just after queued, same second", deliveries: 2, writtenAfter: 300 * time.Millisecond},
		{name: "written just before queued, same second", deliveries: 2, writtenAfter: -300 * time.Millisecond, wantWrite: true},
		{name: "written before queued", deliveries: 2, writtenAfter: -2 * time.Second, wantWrite: true},
		{name: "first delivery", deliveries: 1, writtenAfter: time.Second, wantWrite: true},
		{name: "flag the command does not set", deliveries: 2, writtenAfter: time.Second, accountMustChng: true, wantWrite: true},
		{name: "must-change reset, account must change", deliveries: 3, writtenAfter: time.Second, mustChange: true, accountMustChng: true},
		{name: "must-change reset, written in the second queued", deliveries: 2, writtenAfter: -300 * time.Millisecond, mustChange: true, accountMustChng: true},
		{name: "must-change reset, written the second before", deliveries: 2, writtenAfter: -time.Second, mustChange: true, accountMustChng: true, wantWrite: true},
		{name: "must-change reset, account need not change", deliveries: 2, writtenAfter: time.Second, mustChange: true, wantWrite: true},
		{name: "no metadata, pwdLastSet after queued", deliveries: 2, writtenAfter: time.Second, noMeta: true},
		{name: "no metadata, pwdLastSet before queued", deliveries: 2, writtenAfter: -time.Minute, noMeta: true, wantWrite: true},
		{name: "no metadata, must-change reset", deliveries: 2, writtenAfter: time.Second, noMeta: true, mustChange: true, accountMustChng: true, wantWrite: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			req := reset("alice", goodPw)
			req.Options.MustChange = tc.mustChange
			d := r.build(req)
			d.DeliveryCount = tc.deliveries
			d.EnqueuedTime = r.now.Add(-time.Minute).Add(500 * time.Millisecond)
			written := d.EnqueuedTime.Add(tc.writtenAfter)
			alice := r.dir.users["alice"]
			alice.PwdWrittenAt, alice.PwdLastSet, alice.MustChange = written.Truncate(time.Second), written, tc.accountMustChng
			if tc.accountMustChng {
				alice.PwdLastSet = time.Time{}
			}
			if tc.noMeta {
				alice.PwdWrittenAt = time.Time{}
			}
			wantAction(t, r.handle(d), transport.Complete())
			res := r.result(d.MessageID)
			if res.Code != protocol.CodeSucceeded {
				t.Fatalf("code %s (%s)", res.Code, res.Detail)
			}
			if n := r.dir.writeCount(); (n == 1) != tc.wantWrite || n > 1 {
				t.Fatalf("%d writes, want a write: %v (%s)", n, tc.wantWrite, res.Detail)
			}
			if a := r.auditRecord(d.MessageID).Detail; !tc.wantWrite && !strings.Contains(a, "another instance") {
				t.Errorf("audit detail %q does not say why nothing was written", a)
			}
		})
	}
}

// TestCrashAfterMustChangeResetIsSettledFromAD: a must-change reset sets
// pwdLastSet to 0, so "pwdLastSet moved forward" cannot prove it landed;
// unicodePwd's version does, and without a readable version the move to 0
// from a set value does.
func TestCrashAfterMustChangeResetIsSettledFromAD(t *testing.T) {
	for _, version := range []uint32{0, 12} {
		t.Run(fmt.Sprint("version=", version), func(t *testing.T) {
			r := newRig(t)
			alice := r.dir.users["alice"]
			alice.PwdVersion = version
			req := reset("alice", goodPw)
			req.Options.MustChange = true
			d := r.build(req)
			r.markApplying(d, "alice")
			if _, err := r.dir.write("reset", alice.DN, true); err != nil {
				t.Fatal(err)
			}
			d.DeliveryCount = 2
			wantAction(t, r.handle(d), transport.Complete())
			if res := r.result(d.MessageID); res.Code != protocol.CodeSucceeded {
				t.Fatalf("code %s", res.Code)
			}
			if n := r.dir.writeCount(); n != 1 || len(r.waits) != 0 {
				t.Fatalf("%d writes, waits %v; the landed must-change reset must be recognised at once", n, r.waits)
			}
		})
	}
}

func TestLanded(t *testing.T) {
	set := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	later := set.Add(time.Hour)
	cases := []struct {
		name       string
		version    uint32
		setBefore  time.Time
		now        ldapx.User
		mustChange bool
		want       bool
	}{
		{"version moved", 5, set, ldapx.User{PwdVersion: 6, PwdLastSet: set}, false, true},
		{"version unchanged wins over pwdLastSet", 5, set, ldapx.User{PwdVersion: 5, PwdLastSet: later}, false, false},
		{"no version: pwdLastSet moved", 0, set, ldapx.User{PwdLastSet: later}, false, true},
		{"no version: pwdLastSet unchanged", 0, set, ldapx.User{PwdLastSet: set}, false, false},
		{"no version: must-change set it to 0", 0, set, ldapx.User{MustChange: true}, true, true},
		{"no version: 0 before and after", 0, time.Time{}, ldapx.User{MustChange: true}, true, false},
		{"no version: 0 now but no must-change asked", 0, set, ldapx.User{MustChange: true}, false, false},
	}
	for _, c := range cases {
		if got := landed(c.version, c.setBefore, &c.now, c.mustChange); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// TestResumeWaitsForAnEarlierWriteToLand: a command found "applying" after
// a restart, with pwdLastSet not (yet) moved, is not written again until the
// first write can no longer land; if it landed meanwhile, nothing is
// written again.
func TestResumeWaitsForAnEarlierWriteToLand(t *testing.T) {
	for _, landed := range []bool{true, false} {
		t.Run(fmt.Sprint("landed=", landed), func(t *testing.T) {
			r := newRig(t)
			d := r.build(reset("alice", goodPw))
			r.markApplying(d, "alice")
			alice := r.dir.users["alice"]
			if landed {
				r.duringWait = func() { r.dir.write("reset", alice.DN, false) } // the dead process's write arrives late
			}
			d.DeliveryCount = 2
			wantAction(t, r.handle(d), transport.Complete())
			if len(r.waits) != 1 || r.waits[0] != 35*time.Second {
				t.Fatalf("waits %v, want one of the write window (35s)", r.waits)
			}
			if res := r.result(d.MessageID); res.Code != protocol.CodeSucceeded {
				t.Fatalf("code %s", res.Code)
			}
			if n := r.dir.writeCount(); n != 1 {
				t.Fatalf("%d writes, want exactly 1", n)
			}
		})
	}
}

func TestReportFailureAbandonsAndRedeliveryResends(t *testing.T) {
	r := newRig(t)
	r.rep.fail = errors.New("reply queue down")
	d := r.build(reset("alice", goodPw))
	wantAction(t, r.handle(d), transport.Abandon())
	r.rep.fail = nil
	d.DeliveryCount = 2
	wantAction(t, r.handle(d), transport.Complete())
	if res := r.result(d.MessageID); res.Code != protocol.CodeSucceeded {
		t.Fatalf("code %s", res.Code)
	}
	if n := r.dir.writeCount(); n != 1 {
		t.Fatalf("%d writes", n)
	}
}

func TestUnverifiableIsDeadLetteredAndExpiredIsAnswered(t *testing.T) {
	r := newRig(t)
	d := r.build(reset("alice", goodPw))
	bad := *d
	bad.Body = bytes.Replace(append([]byte(nil), d.Body...), []byte(`"sig"`), []byte(`"sIg"`), 1)
	if bytes.Equal(bad.Body, d.Body) {
		bad.Body = append([]byte(nil), d.Body[:len(d.Body)-2]...)
	}
	disp := r.handle(&bad)
	wantAction(t, disp, transport.DeadLetter("x", "y"))
	if disp.Reason != string(protocol.CodeInvalidCommand) {
		t.Errorf("dead-letter reason %q", disp.Reason)
	}

	r2 := newRig(t, func(c *Config, _ *Domain) {
		later := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
		c.Clock = clockwork.NewFakeClockAt(later)
		c.Receiver.Clock = c.Clock
	})
	d2 := r2.build(reset("alice", goodPw))
	wantAction(t, r2.handle(d2), transport.Complete())
	if res := r2.result(d2.MessageID); res.Code != protocol.CodeExpired {
		t.Fatalf("code %s", res.Code)
	}
	if r2.dir.writeCount() != 0 {
		t.Fatal("expired command applied")
	}
}

func TestCheckAndUnlockAndChange(t *testing.T) {
	r := newRig(t)
	chk := r.build(sender.Request{Op: protocol.OpCheck, User: protocol.UserRef{SAM: "alice"},
		Actor: protocol.Actor{Kind: protocol.ActorSelfService, ID: "p"}, NewPassword: protocol.SecretFromString(goodPw)})
	r.handle(chk)
	if res := r.result(chk.MessageID); res.Code != protocol.CodeSucceeded {
		t.Fatalf("check: %s", res.Code)
	}
	if r.dir.writeCount() != 0 {
		t.Fatal("check wrote to AD")
	}
	un := r.build(sender.Request{Op: protocol.OpUnlock, User: protocol.UserRef{SAM: "alice"},
		Actor: protocol.Actor{Kind: protocol.ActorAdmin, ID: "helpdesk"}})
	r.handle(un)
	if res := r.result(un.MessageID); res.Code != protocol.CodeSucceeded {
		t.Fatalf("unlock: %s", res.Code)
	}
	// The domain minimum age is 1 day and alice's password is 2 days old;
	// after the unlock it still is: a change is allowed, and a DC history
	// refusal comes back as rejected_by_dc/history.
	r.dir.resetErr = &ldapx.Error{Op: "change", Kind: ldapx.KindPasswordRestriction}
	ch := r.build(sender.Request{Op: protocol.OpChange, User: protocol.UserRef{SAM: "alice"},
		Actor: protocol.Actor{Kind: protocol.ActorSelfService, ID: "p"}, NewPassword: protocol.SecretFromString(goodPw),
		OldPassword: protocol.SecretFromString("Old!Password.1")})
	r.handle(ch)
	if res := r.result(ch.MessageID); res.Code != protocol.CodeRejectedByDC || res.DCReason != protocol.DCReasonHistory {
		t.Fatalf("change: %s/%s", res.Code, res.DCReason)
	}
	r.noLeak(goodPw, "Old!Password.1")
}

func TestChangeUnderMinAgeIsPredicted(t *testing.T) {
	r := newRig(t)
	r.dir.users["alice"].PwdLastSet = r.now.Add(-time.Hour)
	ch := r.build(sender.Request{Op: protocol.OpChange, User: protocol.UserRef{SAM: "alice"},
		Actor: protocol.Actor{Kind: protocol.ActorSelfService, ID: "p"}, NewPassword: protocol.SecretFromString(goodPw),
		OldPassword: protocol.SecretFromString("Old!Password.1")})
	r.handle(ch)
	res := r.result(ch.MessageID)
	if res.Code != protocol.CodePolicyViolation || len(res.Violations) != 1 || res.Violations[0].Rule != "min_age" {
		t.Fatalf("result %+v", res.Result)
	}
	if r.dir.writeCount() != 0 {
		t.Fatal("AD was written")
	}
}

func TestInFlightDuplicateIsAbandoned(t *testing.T) {
	r := newRig(t)
	d := r.build(reset("alice", goodPw))
	v, _ := protocol.VerifyCommand(d.Body, r.eng.recv.Senders)
	if !r.eng.enter(v.ID) {
		t.Fatal("enter")
	}
	wantAction(t, r.handle(d), transport.Abandon())
	r.eng.leave(v.ID)
	if r.dir.writeCount() != 0 {
		t.Fatal("written while the first delivery was in flight")
	}
}

func TestInScope(t *testing.T) {
	ous := []string{"OU=Managed, DC=adw,DC=test"}
	for dn, want := range map[string]bool{
		"CN=a,OU=Managed,DC=adw,DC=test":                  true,
		"CN=a,OU=Sub,ou=managed,dc=ADW,dc=test":           true,
		"OU=Managed,DC=adw,DC=test":                       true,
		"ou=managed,dc=adw,dc=test":                       true,
		"CN=a , OU = Managed ,  DC=adw , DC=test":         true,
		"CN=a+sAMAccountName=a,OU=Managed,DC=adw,DC=test": true,
		"CN=a\\,b,OU=Managed,DC=adw,DC=test":              true,
		"CN=a,OU=NotManaged,DC=adw,DC=test":               false,
		"OU=NotManaged,DC=adw,DC=test":                    false,
		"CN=a,OU=Managed,DC=adw,DC=test,DC=evil":          false,
		"CN=OU=Managed\\,DC=adw\\,DC=test,DC=x":           false,
		// An object directly under the domain root whose CN holds an
		// escaped comma: its parent is DC=adw,DC=test, not the OU.
		"CN=evil\\,OU=Managed,DC=adw,DC=test":                         false,
		"CN=evil\\2cOU=Managed,DC=adw,DC=test":                        false,
		"CN=evil\\, OU=Managed,DC=adw,DC=test":                        false,
		"CN=evil,OU=Managed\\,DC=adw,DC=test,CN=Users,DC=adw,DC=test": false,
		// A multi-valued RDN is one level: OU=Managed+CN=x is not the OU.
		"CN=a,OU=Managed+CN=x,DC=adw,DC=test": false,
		"OU=Managed+CN=x,DC=adw,DC=test":      false,
		"DC=adw,DC=test":                      false,
		// A DN that does not parse is out of scope.
		"CN=a,OU=Managed,DC=adw,DC=test,":    false,
		"CN=a,=Managed,DC=adw,DC=test":       false,
		"CN=a\\,OU=Managed,DC=adw,DC=test\\": false,
		"":                                   false,
	} {
		if got := inScope(dn, ous); got != want {
			t.Errorf("%s: %v, want %v", dn, got, want)
		}
	}
	// A scope OU that does not parse admits nobody.
	if inScope("CN=a,OU=Managed,DC=adw,DC=test", []string{"OU=Managed,,DC=adw,DC=test"}) {
		t.Error("an unparsable scope OU admitted a DN")
	}
	// A multi-valued scope RDN matches in any order, case-insensitively.
	if !inScope("CN=a,ou=m+l=x,DC=adw,DC=test", []string{"L=X+OU=M,DC=adw,DC=test"}) {
		t.Error("a multi-valued RDN in another order is not in scope")
	}
}

func TestRoutingAcrossDomains(t *testing.T) {
	r := newRig(t, func(c *Config, d *Domain) {
		d.UPNSuffixes = []string{"corp.example"}
		other := &fakeDir{now: c.Clock.Now, users: map[string]*ldapx.User{}, groups: map[string][]string{}, pol: ldapx.Policy{MinLength: 8}}
		other.users["bob"] = &ldapx.User{DN: "CN=Bob,OU=People,DC=other,DC=test", SAMAccountName: "bob",
			UserPrincipalName: "bob@other.test", ObjectGUID: "11111111-0000-0000-0000-000000000000",
			SID: "S-1-5-21-4-5-6-1500", UserAccountControl: ldapx.UACNormalAccount}
		c.Domains = append(c.Domains, &Domain{Name: "other.test", Dir: other, ScopeOUs: []string{"OU=People,DC=other,DC=test"}})
	})
	other := r.eng.cfg.Domains[1].Dir.(*fakeDir)
	for _, tc := range []struct {
		ref      protocol.UserRef
		code     protocol.ResultCode
		adw, oth int
	}{
		{protocol.UserRef{UPN: "bob@other.test"}, protocol.CodeSucceeded, 0, 1},
		{protocol.UserRef{SAM: "bob", Domain: "OTHER.test"}, protocol.CodeSucceeded, 0, 2},
		{protocol.UserRef{UPN: "alice@corp.example"}, protocol.CodeUserNotFound, 0, 2}, // routed to adw.test by suffix; no such UPN there
		{protocol.UserRef{SAM: "alice", Domain: "adw.test"}, protocol.CodeSucceeded, 1, 2},
		{protocol.UserRef{SAM: "alice"}, protocol.CodeOutOfScope, 1, 2}, // several domains, none named
		{protocol.UserRef{UPN: "alice@nowhere.test"}, protocol.CodeOutOfScope, 1, 2},
	} {
		d := r.build(sender.Request{Op: protocol.OpReset, User: tc.ref, Actor: protocol.Actor{Kind: protocol.ActorAdmin, ID: "a"},
			NewPassword: protocol.SecretFromString(goodPw)})
		r.handle(d)
		if res := r.result(d.MessageID); res.Code != tc.code {
			t.Errorf("%+v: %s (%s), want %s", tc.ref, res.Code, res.Detail, tc.code)
		}
		if r.dir.writeCount() != tc.adw || other.writeCount() != tc.oth {
			t.Errorf("%+v: writes adw=%d other=%d, want %d/%d", tc.ref, r.dir.writeCount(), other.writeCount(), tc.adw, tc.oth)
		}
	}
}

// TestAppliedByAnotherInstanceIsRecognised: with no journal entry (another
// instance applied the command), the DC refuses the password again
// (history) and the account's pwdLastSet is newer than the command: that is
// success, not a false failure.
func TestAppliedByAnotherInstanceIsRecognised(t *testing.T) {
	r := newRig(t)
	d := r.build(reset("alice", goodPw))
	// The other instance applied it a moment after the command was issued.
	r.dir.users["alice"].PwdLastSet = r.now.Add(time.Second)
	r.dir.resetErr = &ldapx.Error{Op: "reset", Kind: ldapx.KindPasswordRestriction}
	wantAction(t, r.handle(d), transport.Complete())
	res := r.result(d.MessageID)
	if res.Code != protocol.CodeSucceeded || !strings.Contains(r.auditRecord(d.MessageID).Detail, "already applied") {
		t.Fatalf("result %+v, audit %+v", res.Result, r.auditRecord(d.MessageID))
	}
	// Without the newer pwdLastSet the same refusal is a real one.
	r2 := newRig(t)
	r2.dir.resetErr = &ldapx.Error{Op: "reset", Kind: ldapx.KindPasswordRestriction}
	d2 := r2.build(reset("alice", goodPw))
	r2.handle(d2)
	if res := r2.result(d2.MessageID); res.Code != protocol.CodeRejectedByDC {
		t.Fatalf("result %+v", res.Result)
	}
}

// flakyJournal fails writes while down is set.
type flakyJournal struct {
	*journal.Journal
	mu   sync.Mutex
	down bool
}

func (f *flakyJournal) isDown() bool { f.mu.Lock(); defer f.mu.Unlock(); return f.down }
func (f *flakyJournal) set(d bool)   { f.mu.Lock(); f.down = d; f.mu.Unlock() }

var errDiskFull = fmt.Errorf("%w: write journal.db: no space left on device", journal.ErrStorage)

func (f *flakyJournal) MarkApplying(ctx context.Context, id, dn string, set time.Time, v uint32) error {
	if f.isDown() {
		return errDiskFull
	}
	return f.Journal.MarkApplying(ctx, id, dn, set, v)
}

func (f *flakyJournal) FinishAsync(ctx context.Context, id, code, dc string, result []byte) func(context.Context) error {
	if f.isDown() {
		return func(context.Context) error { return errDiskFull }
	}
	return f.Journal.FinishAsync(ctx, id, code, dc, result)
}

func (f *flakyJournal) Writable(ctx context.Context) error {
	if f.isDown() {
		return errDiskFull
	}
	return f.Journal.Writable(ctx)
}

// TestJournalFullHoldsTheOutcome: the write to AD happened but the journal
// cannot record it: the engine holds the result (checking the journal
// every few seconds) instead of abandoning, then records, reports and
// completes once the journal is writable again.
func TestJournalFullHoldsTheOutcome(t *testing.T) {
	var fj *flakyJournal
	r := newRig(t, func(c *Config, _ *Domain) {
		fj = &flakyJournal{Journal: c.Journal.(*journal.Journal)}
		c.Journal = fj
	})
	d := r.build(reset("alice", goodPw))
	fj.set(true)
	checks := 0
	r.duringWait = func() {
		checks++
		if checks == 3 {
			fj.set(false) // space freed
		}
	}
	wantAction(t, r.handle(d), transport.Complete())
	if checks != 3 {
		t.Fatalf("the journal was waited for %d times, want 3", checks)
	}
	if res := r.result(d.MessageID); res.Code != protocol.CodeSucceeded {
		t.Fatalf("code %s", res.Code)
	}
	ent, err := r.jr.Get(context.Background(), d.MessageID)
	if err != nil || ent.State != journal.StateDone {
		t.Fatalf("journal entry %+v %v", ent, err)
	}
	if n := r.dir.writeCount(); n != 1 {
		t.Fatalf("%d writes", n)
	}
}

// TestJournalDownStopsTakingWork: a failed journal write holds the command
// before anything is written to AD, the engine says so, takes no new work
// until the journal is writable again, and then finishes the held command
// normally (no abandon, no redelivery needed).
func TestJournalDownStopsTakingWork(t *testing.T) {
	fj := &flakyJournal{down: true}
	r := newRig(t, func(c *Config, _ *Domain) { fj.Journal = c.Journal.(*journal.Journal); c.Journal = fj })
	var logs syncBuf
	r.eng.cfg.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	writesWhileDown := -1
	r.duringWait = func() {
		if len(r.waits) == 3 {
			writesWhileDown = r.dir.writeCount()
			fj.set(false) // space freed
		}
	}
	d := r.build(reset("alice", goodPw))
	wantAction(t, r.handle(d), transport.Complete())
	if writesWhileDown != 0 {
		t.Fatalf("%d writes to AD while the journal was down", writesWhileDown)
	}
	if res := r.result(d.MessageID); res.Code != protocol.CodeSucceeded || r.dir.writeCount() != 1 {
		t.Fatalf("code %s, %d writes", res.Code, r.dir.writeCount())
	}
	if !strings.Contains(logs.String(), "journal not writable: stopped taking work") || !strings.Contains(logs.String(), "journal writable again") {
		t.Fatalf("the engine did not say so:\n%s", logs.String())
	}

	// Down again, now at the outcome: the next delivery is not even
	// decoded until the journal is back.
	r.waits = nil
	fj.set(true)
	r.eng.journalDown.Store(true)
	d2 := r.build(reset("alice", "An0ther!Passphrase"))
	received := false
	r.duringWait = func() {
		// Claimed means received and verified: it must not be yet.
		if _, err := r.jr.Get(context.Background(), d2.MessageID); err == nil {
			received = true
		}
		if len(r.waits) == 2 {
			fj.set(false)
		}
	}
	wantAction(t, r.handle(d2), transport.Complete())
	if received || len(r.waits) != 2 {
		t.Fatalf("work taken while the journal was down (waits %v)", r.waits)
	}
	r.noLeak(goodPw, "An0ther!Passphrase")
}

// expiredJournal has lost every claim (as when a command outlives its
// replay window): nothing can be recorded against it.
type expiredJournal struct {
	*journal.Journal
	markToo bool // MarkApplying fails the same way
}

func (x expiredJournal) MarkApplying(ctx context.Context, id, dn string, set time.Time, v uint32) error {
	if x.markToo {
		return journal.ErrNotFound
	}
	return x.Journal.MarkApplying(ctx, id, dn, set, v)
}

func (x expiredJournal) FinishAsync(context.Context, string, string, string, []byte) func(context.Context) error {
	return func(context.Context) error { return journal.ErrNotFound }
}

// TestMarkWithoutClaimIsNotRetried: an entry error before the write to AD
// is not the journal's storage: the command is not written, not held and
// not retried in place (it once looped, the journal being writable), but
// answered transient so the queue brings it back.
func TestMarkWithoutClaimIsNotRetried(t *testing.T) {
	r := newRig(t, func(c *Config, _ *Domain) {
		c.Journal = expiredJournal{Journal: c.Journal.(*journal.Journal), markToo: true}
	})
	d := r.build(reset("alice", goodPw))
	wantAction(t, r.handle(d), transport.Abandon())
	if r.eng.journalDown.Load() || len(r.waits) != 0 || r.dir.writeCount() != 0 {
		t.Fatalf("down=%v waits=%v writes=%d", r.eng.journalDown.Load(), r.waits, r.dir.writeCount())
	}
}

// TestOutcomeWithoutClaimIsSettled: an outcome that has no entry to go to
// is not a journal failure: the message is settled and work goes on.
func TestOutcomeWithoutClaimIsSettled(t *testing.T) {
	r := newRig(t, func(c *Config, _ *Domain) { c.Journal = expiredJournal{Journal: c.Journal.(*journal.Journal)} })
	d := r.build(reset("alice", goodPw))
	wantAction(t, r.handle(d), transport.Complete())
	if r.eng.journalDown.Load() || len(r.waits) != 0 {
		t.Fatalf("treated as a journal failure (down=%v, waits %v)", r.eng.journalDown.Load(), r.waits)
	}
	if res := r.result(d.MessageID); res.Code != protocol.CodeSucceeded {
		t.Fatalf("code %s", res.Code)
	}
}

// TestNewListsEveryMissingValue: New defaults only the logger, metrics,
// audit and clock; every other missing value is refused, all at once.
func TestNewListsEveryMissingValue(t *testing.T) {
	_, err := New(Config{RateLimit: -1})
	if err == nil {
		t.Fatal("an empty config was accepted")
	}
	for _, want := range []string{"receiver", "journal", "reporter", "domain", "signing key",
		"rate limit -1", "concurrency", "max attempts", "write window"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %q:\n%v", want, err)
		}
	}
	r := newRig(t)
	cfg := r.eng.cfg
	cfg.RateLimit, cfg.RateWindow = 5, 0
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "window") {
		t.Errorf("a rate limit without a window: %v", err)
	}
	cfg.RateLimit = 0 // no limit: no window needed
	cfg.Logger, cfg.Metrics, cfg.Audit, cfg.Clock = nil, nil, nil, nil
	if _, err := New(cfg); err != nil {
		t.Errorf("no limit, default logger/metrics/audit/clock: %v", err)
	}
}

// TestRateLimitZeroIsNoLimit: 0 means no limit, as in the configuration.
func TestRateLimitZeroIsNoLimit(t *testing.T) {
	r := newRig(t, func(c *Config, _ *Domain) { c.RateLimit, c.RateWindow = 0, 0 })
	for i := range 7 {
		d := r.build(reset("alice", fmt.Sprintf("Correct!Horse.%d", 40+i)))
		r.handle(d)
		if res := r.result(d.MessageID); res.Code != protocol.CodeSucceeded {
			t.Fatalf("attempt %d: %s", i+1, res.Code)
		}
	}
}

// TestAuditIsWrittenWhenSettled: the audit record is written once the
// source reports what it did with the message, and says that.
func TestAuditIsWrittenWhenSettled(t *testing.T) {
	r := newRig(t)
	d := r.build(reset("alice", goodPw))
	disp := r.eng.Handle(context.Background(), d)
	wantAction(t, disp, transport.Complete())
	if s := r.auditB.String(); s != "" {
		t.Fatalf("audited before the message was settled:\n%s", s)
	}
	disp.Report(transport.Settlement{Action: disp.Action, Err: fmt.Errorf("complete: %w", transport.ErrLockLost)})
	if s := r.auditB.String(); !strings.Contains(s, `"settlement":"lock_lost"`) || !strings.Contains(s, d.MessageID) {
		t.Fatalf("audit after a lost lock:\n%s", s)
	}

	// Refusals before a command id is known are audited the same way.
	r = newRig(t)
	bad := r.build(reset("alice", goodPw))
	bad.Body = bad.Body[:len(bad.Body)-2]
	disp = r.eng.Handle(context.Background(), bad)
	wantAction(t, disp, transport.DeadLetter("x", "y"))
	if s := r.auditB.String(); s != "" {
		t.Fatalf("audited before the message was dead-lettered:\n%s", s)
	}
	disp.Report(transport.Settlement{Action: disp.Action})
	if s := r.auditB.String(); !strings.Contains(s, `"settlement":"dead_lettered"`) || !strings.Contains(s, `"outcome":"invalid_command"`) {
		t.Fatalf("audit after the dead letter:\n%s", s)
	}
	r.noLeak(goodPw)
}
