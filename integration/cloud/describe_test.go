//go:build integration

package cloud

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/adwriteback/adwriteback/integration/stack"
	"github.com/adwriteback/adwriteback/integration/testdc"
	"github.com/adwriteback/adwriteback/relay/protocol"
	"github.com/adwriteback/adwriteback/relay/sender"
)

// orgMinLength is the organisation minimum the describe tests configure.
const orgMinLength = 10

func describe(u protocol.UserRef) sender.Request {
	return sender.Request{Op: protocol.OpDescribe, User: u, Actor: protocol.Actor{Kind: protocol.ActorSelfService, ID: "sspr-page"}}
}

// TestCloudDescribe: a describe through the real queue answers the Samba
// DC's own values, read here from the DC: the domain's for a user in no
// PSO, the PSO's for a user in a PSO's group (named only fine_grained);
// and refuses out-of-scope and protected accounts as a check does.
func TestCloudDescribe(t *testing.T) {
	env := stack.New(t)
	env.Start("a", stack.Configure(func(c *stack.ConfigSpec) { c.MinLength = orgMinLength }))
	dc := env.DC
	snd := env.Sender()

	t.Run("domain policy", func(t *testing.T) {
		u := testdc.NewUser(t, dc, "")
		res := snd.Do(describe(protocol.UserRef{SAM: u.SAM}))
		want := domainPolicy(t, dc)
		wantPolicy(t, res, want, nextChange(t, dc, u.DN, want.MinAge))
	})
	t.Run("fine-grained policy", func(t *testing.T) {
		u := testdc.NewUser(t, dc, "", dc.StrictGroupDN)
		res := snd.Do(describe(protocol.UserRef{UPN: u.UPN}))
		want := psoPolicy(t, dc, dc.StrictPSODN)
		wantPolicy(t, res, want, nextChange(t, dc, u.DN, want.MinAge))
		if want.MinLength != 16 {
			t.Errorf("the seed's strict PSO has minimum length %d, want 16", want.MinLength)
		}
	})
	for name, tc := range map[string]struct {
		user testdc.SeedUser
		code protocol.ResultCode
	}{
		"out of scope": {dc.Users["outsider"], protocol.CodeOutOfScope},
		"protected":    {dc.Users["protected"], protocol.CodeProtectedAccount},
	} {
		t.Run(name, func(t *testing.T) {
			res := snd.Do(describe(protocol.UserRef{SAM: tc.user.SAM}))
			if res.Code != tc.code || res.Policy != nil {
				t.Fatalf("code %s, policy %+v; want %s and none", res.Code, res.Policy, tc.code)
			}
		})
	}
}

// TestCloudDescribeIsRateLimitedLikeCheck: describe and check take
// attempts from the same per-user limit.
func TestCloudDescribeIsRateLimitedLikeCheck(t *testing.T) {
	env := stack.New(t)
	env.Start("a", stack.Configure(func(c *stack.ConfigSpec) { c.PerUser = 2 }))
	snd := env.Sender()
	u := testdc.NewUser(t, env.DC, "")
	ref := protocol.UserRef{SAM: u.SAM}
	if res := snd.Do(sender.Request{Op: protocol.OpCheck, User: ref, NewPassword: env.Secret("Cloud!Check.Pass7")}); res.Code != protocol.CodeSucceeded {
		t.Fatalf("check: %+v", res.Result)
	}
	if res := snd.Do(describe(ref)); res.Code != protocol.CodeSucceeded || res.Policy == nil {
		t.Fatalf("describe within the limit: %+v", res.Result)
	}
	res := snd.Do(describe(ref))
	if res.Code != protocol.CodeRateLimited || res.RetryAfter <= 0 || res.Policy != nil {
		t.Fatalf("describe over the limit: %+v", res.Result)
	}
}

// TestCloudDescribeInV1IsInvalid: version 1 defines four operations; a
// correctly signed v1 command with op describe is answered
// invalid_command, in version 1.
func TestCloudDescribeInV1IsInvalid(t *testing.T) {
	env := stack.New(t)
	env.Start("a")
	now := time.Now().UTC()
	const id = "cloud-v1-describe"
	payload, err := json.Marshal(map[string]any{"v": 1, "id": id, "op": "describe", "user": map[string]string{"sam": "alice"},
		"actor":    map[string]string{"kind": "self_service", "id": "sspr-page"},
		"issuedAt": now.Format(time.RFC3339), "expiresAt": now.Add(5 * time.Minute).Format(time.RFC3339)})
	if err != nil {
		t.Fatal(err)
	}
	k := env.Keys.Sender.SigningKey()
	body, err := json.Marshal(map[string]any{"v": 1, "type": protocol.TypeCommand, "kid": k.KID,
		"sig":     base64.StdEncoding.EncodeToString(ed25519.Sign(k.Key, protocol.SigningInput(protocol.TypeCommand, payload))),
		"payload": base64.StdEncoding.EncodeToString(payload)})
	if err != nil {
		t.Fatal(err)
	}
	raw := env.Raw()
	if err := raw.Send(id, body); err != nil {
		t.Fatal(err)
	}
	out := raw.Await(t, id, id)
	if out.Result == nil || out.Result.V != 1 || out.Result.Code != protocol.CodeInvalidCommand || out.Result.Policy != nil {
		t.Fatalf("outcome %+v", out)
	}
}

// adPolicy are the values a describe must report, as read from the DC.
type adPolicy struct {
	MinLength, HistoryLength int
	Complexity               bool
	MinAge, MaxAge           int64 // seconds
	Source                   protocol.PolicySource
}

// domainPolicy reads the domain object's password settings.
func domainPolicy(t *testing.T, dc *testdc.Info) adPolicy {
	read := func(attr string) string { return string(testdc.ReadAttr(t, dc, dc.BaseDN, attr)) }
	return adPolicy{
		MinLength: atoi(t, read("minPwdLength")), HistoryLength: atoi(t, read("pwdHistoryLength")),
		Complexity: atoi(t, read("pwdProperties"))&1 != 0,
		MinAge:     adSeconds(t, read("minPwdAge")), MaxAge: adSeconds(t, read("maxPwdAge")), Source: protocol.SourceDomain,
	}
}

// psoPolicy reads a PSO's settings.
func psoPolicy(t *testing.T, dc *testdc.Info, dn string) adPolicy {
	read := func(attr string) string { return string(testdc.ReadAttr(t, dc, dn, attr)) }
	return adPolicy{
		MinLength: atoi(t, read("msDS-MinimumPasswordLength")), HistoryLength: atoi(t, read("msDS-PasswordHistoryLength")),
		Complexity: read("msDS-PasswordComplexityEnabled") == "TRUE",
		MinAge:     adSeconds(t, read("msDS-MinimumPasswordAge")), MaxAge: adSeconds(t, read("msDS-MaximumPasswordAge")),
		Source: protocol.SourceFineGrained,
	}
}

// nextChange is when the user at dn may next change the password: its
// pwdLastSet plus the minimum age, or nil when none holds it back.
func nextChange(t *testing.T, dc *testdc.Info, dn string, minAge int64) *time.Time {
	set := atoi64(t, string(testdc.ReadAttr(t, dc, dn, "pwdLastSet")))
	if minAge == 0 || set == 0 {
		return nil
	}
	const unixFrom1601 = 11644473600 // seconds from 1601-01-01 (FILETIME's epoch) to 1970-01-01
	at := time.Unix(set/10_000_000-unixFrom1601+minAge, set%10_000_000*100).UTC()
	if !time.Now().Before(at) {
		return nil
	}
	return &at
}

func wantPolicy(t *testing.T, res *protocol.VerifiedResult, want adPolicy, next *time.Time) {
	t.Helper()
	p := res.Policy
	if res.Code != protocol.CodeSucceeded || p == nil {
		t.Fatalf("result %+v", res.Result)
	}
	t.Logf("policy %+v (next change %v)", *p, p.NextChangeAt)
	got := adPolicy{MinLength: p.MinLength, HistoryLength: p.HistoryLength, Complexity: p.Complexity, MinAge: p.MinAge, MaxAge: p.MaxAge, Source: p.Source}
	if got != want {
		t.Errorf("policy %+v, want the DC's %+v", got, want)
	}
	if p.MaxLength != 256 || p.Org != (protocol.OrgPolicy{MinLength: orgMinLength}) || p.Complexity != (p.ComplexityRule != "") {
		t.Errorf("policy %+v", p)
	}
	switch {
	case next == nil && p.NextChangeAt != nil:
		t.Errorf("nextChangeAt %v, want none", p.NextChangeAt)
	case next != nil && (p.NextChangeAt == nil || p.NextChangeAt.Sub(*next).Abs() > time.Second):
		t.Errorf("nextChangeAt %v, want %v", p.NextChangeAt, *next)
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	return int(atoi64(t, s))
}

func atoi64(t *testing.T, s string) int64 {
	t.Helper()
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return v
}

// adSeconds is an AD interval (negative 100 ns units; the most negative
// value "never") in whole seconds, 0 for never.
func adSeconds(t *testing.T, s string) int64 {
	t.Helper()
	v := atoi64(t, s)
	if v == math.MinInt64 || v >= 0 {
		return 0
	}
	return -v / 10_000_000
}
