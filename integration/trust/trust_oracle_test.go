//go:build integration

package trust

import (
	"bytes"
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/adwriteback/adwriteback/integration/stack"
	"github.com/adwriteback/adwriteback/integration/testdc"
	"github.com/adwriteback/adwriteback/relay/protocol"
	"github.com/adwriteback/adwriteback/relay/sender"
)

// TestTrustAccountOracle: with results.account_codes: uniform, a check
// of a missing, ambiguous, out-of-scope, protected or disabled account
// (the connector's real lookups and refusals on the Samba DC, through
// the real queue) gets one result, the same in every member but the
// command id and the times, while each audit record keeps the true code.
// And a DC's refusal (a change back to a password in the history) is
// answered without the DC's name or its error text, both of which the
// audit record holds.
func TestTrustAccountOracle(t *testing.T) {
	s := stack.New(t)
	disabled := testdc.NewUser(t, s.DC, "")
	disable(t, s.DC, disabled.DN)
	changer := testdc.NewUser(t, s.DC, "", s.DC.ChangeGroupDN) // no minimum age, history 5
	s.Start("a", stack.Configure(func(c *stack.ConfigSpec) { c.AccountCodes = "uniform"; c.PerUser = 20 }))
	snd := s.Sender()

	var first []byte
	for _, tc := range []struct {
		name string
		ref  protocol.UserRef
		code protocol.ResultCode
	}{
		{"missing", protocol.UserRef{SAM: "nobody-" + disabled.SAM}, protocol.CodeUserNotFound},
		{"ambiguous", protocol.UserRef{ImmutableID: testdc.ConsistencyGUIDDup}, protocol.CodeAmbiguousUser},
		{"outside the OUs", protocol.UserRef{SAM: "outsider"}, protocol.CodeOutOfScope},
		{"protected", protocol.UserRef{SAM: "protected"}, protocol.CodeProtectedAccount},
		{"disabled", protocol.UserRef{SAM: disabled.SAM}, protocol.CodeAccountDisabled},
	} {
		res := snd.Do(sender.Request{Op: protocol.OpCheck, User: tc.ref, NewPassword: s.Secret("Trust!Oracle.Check1")})
		if res.Code != protocol.CodeUserNotFound {
			t.Errorf("%s: %s (%s), want %s", tc.name, res.Code, res.Detail, protocol.CodeUserNotFound)
		}
		b := withoutIDs(t, res.Result)
		if first == nil {
			first = b
		} else if !bytes.Equal(b, first) {
			t.Errorf("%s is told apart from a missing account:\n%s\n%s", tc.name, b, first)
		}
		if rec := auditOf(t, s, res.CommandID); rec.Outcome != string(tc.code) {
			t.Errorf("%s: audit outcome %s, want the true code %s", tc.name, rec.Outcome, tc.code)
		}
	}
	t.Logf("every refusal answered %s", first)

	pw := "Trust!History.One2"
	res := snd.Do(sender.Request{Op: protocol.OpChange, User: protocol.UserRef{SAM: changer.SAM},
		OldPassword: s.Secret(testdc.UserPass), NewPassword: s.Secret(pw)})
	if res.Code != protocol.CodeSucceeded {
		t.Fatalf("first change: %+v", res.Result)
	}
	res = snd.Do(sender.Request{Op: protocol.OpChange, User: protocol.UserRef{SAM: changer.SAM},
		OldPassword: s.Secret(pw), NewPassword: s.Secret(testdc.UserPass)})
	if res.Code != protocol.CodeRejectedByDC {
		t.Fatalf("change back: %+v", res.Result)
	}
	rec := auditOf(t, s, res.CommandID)
	t.Logf("result %+v; audit dc %q, detail %q", res.Result, rec.DC, rec.Detail)
	u, err := url.Parse(s.DC.LDAPSURL)
	if err != nil {
		t.Fatal(err)
	}
	// What the DC said, as the audit record has it: its URL, and the LDAP
	// code with the Windows error Samba answers a password in the history.
	for _, want := range []string{s.DC.LDAPSURL, "LDAP 19", "0000052D", "(in history)"} {
		if !strings.Contains(rec.DC+" "+rec.Detail, want) {
			t.Errorf("the audit record lacks %q", want)
		}
	}
	b, err := json.Marshal(res.Result)
	if err != nil {
		t.Fatal(err)
	}
	if res.DC != "" {
		t.Errorf("the result names the DC %q", res.DC)
	}
	for _, leak := range []string{u.Hostname(), s.DC.Host, "LDAP", "0000052D", "ldapx", "DC=", rec.Detail} {
		if strings.Contains(string(b), leak) {
			t.Errorf("the result holds %q: %s", leak, b)
		}
	}
}

// disable sets ACCOUNTDISABLE on dn.
func disable(t *testing.T, dc *testdc.Info, dn string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := testdc.Admin(ctx, dc)
	if err != nil {
		t.Fatalf("admin bind: %v", err)
	}
	defer c.Close()
	m := ldap.NewModifyRequest(dn, nil)
	m.Replace("userAccountControl", []string{"514"})
	if err := c.Modify(m); err != nil {
		t.Fatalf("disable %s: %v", dn, err)
	}
}

// auditRecord is the part of an audit record this test reads.
type auditRecord struct {
	Outcome string `json:"outcome"`
	DC      string `json:"dc"`
	Detail  string `json:"detail"`
}

// auditOf waits for command id's audit record (written once the message
// is settled, just after the result is sent) and returns it.
func auditOf(t *testing.T, s *stack.Env, id string) auditRecord {
	t.Helper()
	var lines []string
	stack.WaitFor(t, time.Minute, "the audit record of "+id, func() bool {
		lines = s.AuditLines(id)
		return len(lines) > 0
	})
	var r auditRecord
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &r); err != nil {
		t.Fatalf("audit line %q: %v", lines[len(lines)-1], err)
	}
	return r
}

// withoutIDs is res as JSON without its command id and times.
func withoutIDs(t *testing.T, res protocol.Result) []byte {
	t.Helper()
	res.CommandID, res.CommandDigest, res.ReceivedAt, res.CompletedAt = "", "", protocol.Timestamp{}, protocol.Timestamp{}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
