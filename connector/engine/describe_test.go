package engine

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/adwriteback/adwriteback/connector/policy"
	"github.com/adwriteback/adwriteback/ldapx"
	"github.com/adwriteback/adwriteback/relay/protocol"
	"github.com/adwriteback/adwriteback/relay/sender"
	"github.com/adwriteback/adwriteback/relay/transport"
)

func describeReq(sam string) sender.Request {
	return sender.Request{Op: protocol.OpDescribe, User: protocol.UserRef{SAM: sam},
		Actor: protocol.Actor{Kind: protocol.ActorSelfService, ID: "portal"}}
}

// staticBreach is a breached-password list that knows no password.
type staticBreach struct{}

func (staticBreach) Breached(string) (bool, error) { return false, nil }

func TestDescribeAnswersTheDomainPolicy(t *testing.T) {
	banned, err := policy.NewBannedList([]string{"contoso"})
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, func(_ *Config, d *Domain) {
		d.OrgMinLength, d.Banned, d.Breached, d.BannedMode = 14, banned, staticBreach{}, policy.BannedEntra
	})
	r.dir.pol.MaxAge = 42 * 24 * time.Hour
	d := r.build(describeReq("alice"))
	wantAction(t, r.handle(d), transport.Complete())
	res := r.result(d.MessageID)
	if res.Code != protocol.CodeSucceeded || res.Message != describeMessage || res.Detail != describeOnly {
		t.Fatalf("result %+v", res.Result)
	}
	want := protocol.Policy{MinLength: 12, MaxLength: 256, Complexity: true, ComplexityRule: ComplexityRule(), HistoryLength: 24,
		MinAge: 86400, MaxAge: 42 * 86400, Source: protocol.SourceDomain, Org: protocol.OrgPolicy{MinLength: 14, Banned: true, BannedMode: protocol.BannedEntra, Breached: true}}
	if res.Policy == nil || *res.Policy != want {
		t.Fatalf("policy %+v, want %+v", res.Policy, want)
	}
	// Nothing written, nothing marked: the journal holds the answer only.
	if r.dir.writeCount() != 0 {
		t.Fatal("describe wrote to AD")
	}
	ent, err := r.jr.Get(context.Background(), d.MessageID)
	if err != nil || !ent.Applying.IsZero() || ent.Code != string(protocol.CodeSucceeded) {
		t.Fatalf("journal entry %+v (%v)", ent, err)
	}
	if a := r.auditRecord(d.MessageID); a.Op != "describe" || a.Applied || a.Outcome != "succeeded" {
		t.Fatalf("audit %+v", a)
	}
	// A redelivery is answered from the journal, the same policy.
	d.DeliveryCount = 2
	wantAction(t, r.handle(d), transport.Complete())
	if again := r.result(d.MessageID); again.Policy == nil || *again.Policy != want {
		t.Fatalf("redelivery: %+v", again.Policy)
	}
}

// TestDescribeUnderAPSO: the fine-grained policy's values, named only as
// fine_grained, and when the next change is allowed while the minimum
// age holds one back.
func TestDescribeUnderAPSO(t *testing.T) {
	r := newRig(t)
	u := r.dir.users["alice"]
	u.ResultantPSO, u.PwdLastSet = hiddenPSO, r.now.Add(-time.Hour)
	r.dir.pol = ldapx.Policy{MinLength: 16, HistoryLength: 5, MinAge: 24 * time.Hour, PSO: hiddenPSO}
	d := r.build(describeReq("alice"))
	r.handle(d)
	res := r.result(d.MessageID)
	p := res.Policy
	if res.Code != protocol.CodeSucceeded || p == nil {
		t.Fatalf("result %+v", res.Result)
	}
	if p.Source != protocol.SourceFineGrained || p.MinLength != 16 || p.HistoryLength != 5 || p.Complexity || p.ComplexityRule != "" {
		t.Fatalf("policy %+v", p)
	}
	if p.NextChangeAt == nil || !p.NextChangeAt.Equal(r.now.Add(23*time.Hour)) {
		t.Fatalf("nextChangeAt %v, want %v", p.NextChangeAt, r.now.Add(23*time.Hour))
	}
	r.wantUndisclosed(res, hiddenPSO, "Strict", "Password Settings")
}

// TestDescribeRefusesAsCheckDoes: the same refusals as a check, and no
// policy with them; in uniform mode the one uniform refusal.
func TestDescribeRefusesAsCheckDoes(t *testing.T) {
	for _, uniform := range []bool{false, true} {
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
			t.Run(fmt.Sprintf("%s/uniform=%v", tc.sam, uniform), func(t *testing.T) {
				r := newRig(t, func(c *Config, _ *Domain) { c.UniformAccountCodes = uniform })
				d := r.build(describeReq(tc.sam))
				r.handle(d)
				res := r.result(d.MessageID)
				want := tc.code
				if uniform {
					want = protocol.CodeUserNotFound
				}
				if res.Code != want || res.Policy != nil {
					t.Fatalf("code %s policy %v, want %s and none", res.Code, res.Policy, want)
				}
				if a := r.auditRecord(d.MessageID); a.Outcome != string(tc.code) {
					t.Fatalf("audit outcome %s, want %s", a.Outcome, tc.code)
				}
			})
		}
	}
}

// TestDescribeIsRateLimitedLikeCheck: describe and check share the user's
// limit; the attempt over it is rate_limited, without a policy.
func TestDescribeIsRateLimitedLikeCheck(t *testing.T) {
	r := newRig(t, func(c *Config, _ *Domain) { c.RateLimit = 2 })
	check := r.build(sender.Request{Op: protocol.OpCheck, User: protocol.UserRef{SAM: "alice"},
		Actor: protocol.Actor{Kind: protocol.ActorSelfService, ID: "p"}, NewPassword: protocol.SecretFromString(goodPw)})
	r.handle(check)
	for i, want := range []protocol.ResultCode{protocol.CodeSucceeded, protocol.CodeRateLimited} {
		d := r.build(describeReq("alice"))
		r.handle(d)
		res := r.result(d.MessageID)
		if res.Code != want || (want == protocol.CodeRateLimited) != (res.Policy == nil) || (want == protocol.CodeRateLimited && res.RetryAfter <= 0) {
			t.Fatalf("describe %d: %s (policy %v, retryAfter %d), want %s", i+1, res.Code, res.Policy, res.RetryAfter, want)
		}
	}
	r.noLeak(goodPw)
}

// TestDescribeUnreadablePSO: a policy the service account may not read is
// access_denied, as for a check; the result names no PSO.
func TestDescribeUnreadablePSO(t *testing.T) {
	r := newRig(t)
	r.dir.users["alice"].ResultantPSO = hiddenPSO
	r.dir.polErr = &ldapx.Error{Op: "ldapx.EffectivePolicy", Kind: ldapx.KindNoSuchObject, DC: secretDC,
		Err: fmt.Errorf("%s not readable", hiddenPSO)}
	d := r.build(describeReq("alice"))
	r.handle(d)
	res := r.result(d.MessageID)
	if res.Code != protocol.CodeAccessDenied || res.Policy != nil {
		t.Fatalf("code %s policy %v", res.Code, res.Policy)
	}
	r.wantUndisclosed(res, hiddenPSO, secretDCHost)
	if a := r.auditRecord(d.MessageID); !strings.Contains(a.Detail, hiddenPSO) {
		t.Fatalf("audit detail %q does not name the PSO", a.Detail)
	}
}

// TestWirePolicyIsAlwaysSignable: whatever the directory holds, the
// policy fits the protocol's bounds.
func TestWirePolicyIsAlwaysSignable(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, p := range []policy.Policy{
		{},
		{MinLength: -5, HistoryLength: -1, MinAge: -time.Hour, MaxAge: -time.Hour, OrgMinLength: -2},
		{MinLength: 1 << 30, MaxLength: 1 << 30, HistoryLength: 1 << 30, MinAge: 1<<63 - 1, MaxAge: 1<<63 - 1, OrgMinLength: 1 << 30, ComplexityEnabled: true},
	} {
		w := WirePolicy(p, false, now.Add(-time.Minute), now)
		res := protocol.Result{V: 2, CommandID: "x", CommandDigest: protocol.DigestString([32]byte{}), Code: protocol.CodeSucceeded,
			Message: "m", Policy: w, ReceivedAt: protocol.At(now), CompletedAt: protocol.At(now)}
		if err := res.Validate(); err != nil {
			t.Errorf("%+v: %v", p, err)
		}
	}
	// The minimum age holds a change back only while it runs, and never
	// after a must-change (pwdLastSet 0: the zero time).
	p := policy.Policy{MinAge: time.Hour}
	if w := WirePolicy(p, false, now.Add(-30*time.Minute), now); w.NextChangeAt == nil || !w.NextChangeAt.Equal(now.Add(30*time.Minute)) {
		t.Errorf("30 minutes in: %v", w.NextChangeAt)
	}
	for _, set := range []time.Time{now.Add(-time.Hour), {}} {
		if w := WirePolicy(p, false, set, now); w.NextChangeAt != nil {
			t.Errorf("pwdLastSet %v: nextChangeAt %v", set, w.NextChangeAt)
		}
	}
	// Entra mode checks names as banned terms with no list: the policy
	// says banned, in that mode.
	w := WirePolicy(policy.Policy{BannedMode: policy.BannedEntra}, false, now, now)
	if !w.Org.Banned || w.Org.BannedMode != protocol.BannedEntra {
		t.Errorf("entra mode, no list: org %+v", w.Org)
	}
	if w := WirePolicy(policy.Policy{BannedMode: policy.BannedStrict}, false, now, now); w.Org.Banned || w.Org.BannedMode != "" {
		t.Errorf("strict mode, no list: org %+v", w.Org)
	}
	if r := ComplexityRule(); !strings.Contains(r, "3 of") || !strings.Contains(r, "display name") {
		t.Errorf("complexity rule %q", r)
	}
}
