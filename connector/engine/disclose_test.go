package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/adwriteback/adwriteback/connector/audit"
	"github.com/adwriteback/adwriteback/ldapx"
	"github.com/adwriteback/adwriteback/relay/protocol"
	"github.com/adwriteback/adwriteback/relay/sender"
)

// failingFind is a directory whose lookups fail with err.
type failingFind struct {
	*fakeDir
	err error
}

func (f failingFind) FindUser(context.Context, ldapx.UserRef) (*ldapx.User, error) { return nil, f.err }

// The DC of the failures below, and the DN of a policy the service account
// may not read: internal names that belong in the audit record only.
const (
	secretDC     = "ldaps://dc7.branch-kiel.adw.test:636"
	secretDCHost = "dc7.branch-kiel.adw.test"
	hiddenPSO    = "CN=Strict,CN=Password Settings Container,CN=System,DC=adw,DC=test"
)

// TestResultNeverCarriesInternalDetail: whatever the DC answers, the
// signed result names neither the DC nor any DN, and carries no LDAP,
// Windows, Samba or Go error text; the audit record has all of it.
func TestResultNeverCarriesInternalDetail(t *testing.T) {
	for _, tc := range []struct {
		name string
		// setup makes the directory fail; deliveries is the delivery
		// count (a transient failure is answered at the last attempt).
		setup      func(r *rig)
		deliveries uint32
		code       protocol.ResultCode
		// inAudit: texts the audit record's detail holds.
		inAudit []string
	}{{
		name: "password refused by the DC",
		setup: func(r *rig) {
			r.dir.resetErr = &ldapx.Error{Op: "ldapx.Reset", Kind: ldapx.KindPasswordRestriction, DC: secretDC,
				ResultCode: 19, WinCode: 0x52D,
				Reason: "check_password_restrictions: the password does not meet the complexity criteria!"}
		},
		code: protocol.CodeRejectedByDC, inAudit: []string{secretDCHost, "check_password_restrictions", "0000052D"},
	}, {
		name: "write denied",
		setup: func(r *rig) {
			r.dir.resetErr = &ldapx.Error{Op: "ldapx.Reset", Kind: ldapx.KindAccessDenied, DC: secretDC, ResultCode: 50,
				WinCode: 0x2098, Reason: "SecErr: DSID-03150F94, problem 4003 (INSUFF_ACCESS_RIGHTS), data 0"}
		},
		code: protocol.CodeAccessDenied, inAudit: []string{secretDCHost, "INSUFF_ACCESS_RIGHTS"},
	}, {
		name: "constraint",
		setup: func(r *rig) {
			r.dir.resetErr = &ldapx.Error{Op: "ldapx.Reset", Kind: ldapx.KindConstraint, DC: secretDC, ResultCode: 19,
				WinCode: 0x216D, Reason: "AtrErr: DSID-03190F80, #1: 0: 0000216D: unicodePwd"}
		},
		code: protocol.CodeRejectedByDC, inAudit: []string{secretDCHost, "DSID-03190F80"},
	}, {
		name: "DC unreachable at the last attempt",
		setup: func(r *rig) {
			r.dir.resetErr = &ldapx.Error{Op: "ldapx.Reset", Kind: ldapx.KindTransient, DC: secretDC,
				Err: errors.New("dial tcp 10.9.8.7:636: connect: connection refused")}
		},
		deliveries: 5,
		code:       protocol.CodeTransient, inAudit: []string{secretDCHost, "connection refused"},
	}, {
		name: "an error nobody classified",
		setup: func(r *rig) {
			r.dir.resetErr = fmt.Errorf("write CN=Alice Liddell,%s: %w", scopeOU, errors.New("unexpected EOF from 10.9.8.7:636"))
		},
		code: protocol.CodeInternal, inAudit: []string{"unexpected EOF from 10.9.8.7:636"},
	}, {
		name: "policy not readable",
		setup: func(r *rig) {
			r.dir.users["alice"].ResultantPSO = hiddenPSO
			r.dir.polErr = &ldapx.Error{Op: "ldapx.EffectivePolicy", Kind: ldapx.KindNoSuchObject, DC: secretDC,
				ResultCode: 32, WinCode: 0x208D, Reason: "NameErr: DSID-03100241, problem 2001 (NO_OBJECT)"}
		},
		code: protocol.CodeAccessDenied, inAudit: []string{hiddenPSO, secretDCHost, "NO_OBJECT"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			tc.setup(r)
			d := r.build(reset("alice", goodPw))
			if tc.deliveries > 0 {
				d.DeliveryCount = tc.deliveries
			}
			r.handle(d)
			res := r.result(d.MessageID)
			if res.Code != tc.code {
				t.Fatalf("code %s, want %s", res.Code, tc.code)
			}
			r.wantUndisclosed(res, tc.inAudit...)
			r.wantAudited(d.MessageID, string(tc.code), tc.inAudit...)
		})
	}
}

// TestLookupFailureNeverCarriesInternalDetail: the same for a failed
// lookup, whose error names the DC and the search base.
func TestLookupFailureNeverCarriesInternalDetail(t *testing.T) {
	cause := &ldapx.Error{Op: "ldapx.FindUser", Kind: ldapx.KindAccessDenied, DC: secretDC, ResultCode: 50,
		WinCode: 0x2098, Reason: "SecErr: DSID-03150F94, problem 4003 (INSUFF_ACCESS_RIGHTS) on " + scopeOU}
	r := newRig(t, func(_ *Config, dom *Domain) { dom.Dir = failingFind{dom.Dir.(*fakeDir), cause} })
	d := r.build(reset("alice", goodPw))
	r.handle(d)
	res := r.result(d.MessageID)
	if res.Code != protocol.CodeAccessDenied {
		t.Fatalf("code %s, want %s", res.Code, protocol.CodeAccessDenied)
	}
	r.wantUndisclosed(res, secretDCHost, "INSUFF_ACCESS_RIGHTS", scopeOU)
	r.wantAudited(d.MessageID, string(protocol.CodeAccessDenied), secretDCHost, "INSUFF_ACCESS_RIGHTS", scopeOU)
}

// TestSucceededResultNamesNoDC: the DC that applied a password is the
// audit record's, not the result's.
func TestSucceededResultNamesNoDC(t *testing.T) {
	r := newRig(t)
	d := r.build(reset("alice", goodPw))
	r.handle(d)
	res := r.result(d.MessageID)
	if res.Code != protocol.CodeSucceeded {
		t.Fatalf("code %s", res.Code)
	}
	r.wantUndisclosed(res, "fake-dc")
	r.wantAudited(d.MessageID, string(protocol.CodeSucceeded))
	if rec := r.auditRecord(d.MessageID); rec.DC != "ldaps://fake-dc" {
		t.Errorf("audit dc %q, want the DC that applied it", rec.DC)
	}
}

// internalMarks are texts that only an internal name or error carries.
var internalMarks = []string{"CN=", "DC=", "OU=", "ldap", "LDAP", "DSID", "dial tcp", "ldapx", "0000"}

// wantUndisclosed fails when the result has a DC or when its JSON holds
// any of secrets or an internal mark.
func (r *rig) wantUndisclosed(res *protocol.VerifiedResult, secrets ...string) {
	r.t.Helper()
	if res.DC != "" {
		r.t.Errorf("result names the DC %q", res.DC)
	}
	b, err := json.Marshal(res.Result)
	if err != nil {
		r.t.Fatal(err)
	}
	var held []string
	for _, s := range append(secrets, internalMarks...) {
		if strings.Contains(string(b), s) {
			held = append(held, s)
		}
	}
	if len(held) > 0 {
		r.t.Errorf("the result holds %q: %s", held, b)
	}
}

// wantAudited fails unless id's audit record has outcome code and a
// detail and DC that together hold each of texts.
func (r *rig) wantAudited(id, code string, texts ...string) {
	r.t.Helper()
	rec := r.auditRecord(id)
	if rec.Outcome != code {
		r.t.Errorf("audit outcome %s, want %s", rec.Outcome, code)
	}
	for _, s := range texts {
		if !strings.Contains(rec.Detail+" "+rec.DC, s) {
			r.t.Errorf("the audit record lacks %q: detail %q, dc %q", s, rec.Detail, rec.DC)
		}
	}
}

// auditRecord is the last audit record about command id.
func (r *rig) auditRecord(id string) audit.Record {
	r.t.Helper()
	var found *audit.Record
	for _, l := range strings.Split(r.auditB.String(), "\n") {
		var rec audit.Record
		if l == "" || json.Unmarshal([]byte(l), &rec) != nil || rec.CommandID != id {
			continue
		}
		found = &rec
	}
	if found == nil {
		r.t.Fatalf("no audit record for %s", id)
	}
	return *found
}

// TestWrongOldPasswordIsTheMessage: the user who typed a wrong current
// password for a change is told so in the message, now that the detail
// is a fixed phrase; the DC's words stay in the audit record.
func TestWrongOldPasswordIsTheMessage(t *testing.T) {
	r := newRig(t, func(_ *Config, dom *Domain) { dom.Dir.(*fakeDir).pol.MinAge = 0 })
	r.dir.resetErr = &ldapx.Error{Op: "ldapx.Change", Kind: ldapx.KindWrongPassword, DC: secretDC, ResultCode: 19,
		WinCode: 0x56, Reason: "check_password_restrictions: the old password is not correct!"}
	d := r.build(sender.Request{Op: protocol.OpChange, User: protocol.UserRef{SAM: "alice"},
		Actor: protocol.Actor{Kind: protocol.ActorSelfService, ID: "portal"}, NewPassword: protocol.SecretFromString(goodPw),
		OldPassword: protocol.SecretFromString("Old!Password.41")})
	r.handle(d)
	res := r.result(d.MessageID)
	if res.Code != protocol.CodeAccessDenied || res.Message != "The current password is not correct." {
		t.Fatalf("result %+v", res.Result)
	}
	r.wantUndisclosed(res, secretDCHost, "check_password_restrictions")
	r.wantAudited(d.MessageID, string(protocol.CodeAccessDenied), secretDCHost, "check_password_restrictions")
}

// metricsRec records the codes the engine counts.
type metricsRec struct {
	noMetrics
	mu    sync.Mutex
	codes []string
}

func (m *metricsRec) Command(_, outcome string, _ time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.codes = append(m.codes, outcome)
}

// TestUniformAccountCodes: with uniform account codes, a check of a
// missing, ambiguous, out-of-scope (outside the OUs, in an excluded
// group, in a domain not served), protected or disabled account gets one
// result, equal in every member but the command id and the times; the
// audit record and the metrics keep the true code. Without, each keeps
// its code.
func TestUniformAccountCodes(t *testing.T) {
	refs := []struct {
		ref  protocol.UserRef
		code protocol.ResultCode
	}{
		{protocol.UserRef{SAM: "nobody"}, protocol.CodeUserNotFound},
		{protocol.UserRef{SAM: "twin"}, protocol.CodeAmbiguousUser},
		{protocol.UserRef{SAM: "outsider"}, protocol.CodeOutOfScope},
		{protocol.UserRef{SAM: "excluded"}, protocol.CodeOutOfScope},
		{protocol.UserRef{SAM: "alice", Domain: "other.test"}, protocol.CodeOutOfScope},
		{protocol.UserRef{SAM: "prot"}, protocol.CodeProtectedAccount},
		{protocol.UserRef{SAM: "off"}, protocol.CodeAccountDisabled},
	}
	for _, uniform := range []bool{true, false} {
		t.Run(fmt.Sprintf("uniform=%v", uniform), func(t *testing.T) {
			m := &metricsRec{}
			r := newRig(t, func(cfg *Config, _ *Domain) { cfg.UniformAccountCodes, cfg.Metrics = uniform, m })
			for _, sam := range []string{"twin1", "twin2"} {
				u := *r.dir.users["alice"]
				u.DN, u.SAMAccountName, u.ObjectGUID = "CN="+sam+","+scopeOU, "twin", "guid-"+sam
				r.dir.users[sam] = &u
			}
			var first []byte
			for i, tc := range refs {
				d := r.build(sender.Request{Op: protocol.OpCheck, User: tc.ref,
					Actor: protocol.Actor{Kind: protocol.ActorSelfService, ID: "portal"}, NewPassword: protocol.SecretFromString(goodPw)})
				r.handle(d)
				res := r.result(d.MessageID)
				if rec := r.auditRecord(d.MessageID); rec.Outcome != string(tc.code) {
					t.Errorf("%+v: audit outcome %s, want %s", tc.ref, rec.Outcome, tc.code)
				}
				if got := m.codes[len(m.codes)-1]; got != string(tc.code) {
					t.Errorf("%+v: counted as %s, want %s", tc.ref, got, tc.code)
				}
				if !uniform {
					if res.Code != tc.code {
						t.Errorf("%+v: %s, want %s", tc.ref, res.Code, tc.code)
					}
					continue
				}
				if res.Code != protocol.CodeUserNotFound {
					t.Errorf("%+v: %s, want %s", tc.ref, res.Code, protocol.CodeUserNotFound)
				}
				b := withoutIDs(t, res.Result)
				if i == 0 {
					first = b
				} else if !bytes.Equal(b, first) {
					t.Errorf("%+v (%s) is told apart from a missing account:\n%s\n%s", tc.ref, tc.code, b, first)
				}
			}
		})
	}
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

// TestAuditSaysWhoWasNotFound: the audit record of user_not_found and
// ambiguous_user carries the reference as sent (kind, value, domain), so
// the admin can answer "who?"; no other outcome's record does, and the
// result upstream does not change.
func TestAuditSaysWhoWasNotFound(t *testing.T) {
	for _, tc := range []struct {
		ref             protocol.UserRef
		code            protocol.ResultCode
		kind, value, dm string
	}{
		{protocol.UserRef{SAM: "nobody-here"}, protocol.CodeUserNotFound, "sam", "nobody-here", ""},
		{protocol.UserRef{UPN: "ghost@adw.test", Domain: "adw.test"}, protocol.CodeUserNotFound, "upn", "ghost@adw.test", "adw.test"},
		{protocol.UserRef{ObjectGUID: "11111111-2222-3333-4444-555555555555"}, protocol.CodeUserNotFound, "objectGUID", "11111111-2222-3333-4444-555555555555", ""},
		{protocol.UserRef{SAM: "twin"}, protocol.CodeAmbiguousUser, "sam", "twin", ""},
		{protocol.UserRef{SAM: "outsider"}, protocol.CodeOutOfScope, "sam", "", ""},
		{protocol.UserRef{SAM: "alice"}, protocol.CodeSucceeded, "sam", "", ""},
	} {
		for _, uniform := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/%s/uniform=%v", tc.code, tc.kind, uniform), func(t *testing.T) {
				r := newRig(t, func(cfg *Config, _ *Domain) { cfg.UniformAccountCodes = uniform })
				for _, sam := range []string{"twin1", "twin2"} {
					u := *r.dir.users["alice"]
					u.DN, u.SAMAccountName, u.ObjectGUID = "CN="+sam+","+scopeOU, "twin", "guid-"+sam
					r.dir.users[sam] = &u
				}
				d := r.build(sender.Request{Op: protocol.OpCheck, User: tc.ref,
					Actor: protocol.Actor{Kind: protocol.ActorSelfService, ID: "portal"}, NewPassword: protocol.SecretFromString(goodPw)})
				r.handle(d)
				rec := r.auditRecord(d.MessageID)
				if rec.Outcome != string(tc.code) {
					t.Fatalf("outcome %s, want %s", rec.Outcome, tc.code)
				}
				if rec.UserRefKind != tc.kind || rec.UserRef != tc.value || rec.UserRefDomain != tc.dm {
					t.Errorf("audit ref %q %q %q, want %q %q %q", rec.UserRefKind, rec.UserRef, rec.UserRefDomain, tc.kind, tc.value, tc.dm)
				}
				res := r.result(d.MessageID)
				b, err := json.Marshal(res.Result)
				if err != nil {
					t.Fatal(err)
				}
				if tc.value != "" && strings.Contains(string(b), tc.value) {
					t.Errorf("the result upstream names the reference: %s", b)
				}
				r.noLeak(goodPw)
			})
		}
	}
}
