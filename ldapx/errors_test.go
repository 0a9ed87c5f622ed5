package ldapx

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"
)

func ldapErr(code uint16, diag string) error {
	return ldap.NewError(code, errors.New(diag))
}

func TestDecode(t *testing.T) {
	for _, tc := range []struct {
		name   string
		err    error
		kind   Kind
		win    uint32
		reason string
	}{
		{"too short", ldapErr(19, "0000052D: Constraint violation - check_password_restrictions: the password is too short. It should be equal or longer than 7 characters!"),
			KindPasswordRestriction, 0x52D, "the password is too short. It should be equal or longer than 7 characters!"},
		{"windows restriction, no reason", ldapErr(19, "0000052D: AtrErr: DSID-03191083, #1:\n\t0: 0000052D: DSID-03191083, problem 1005 (CONSTRAINT_ATT_TYPE), data 0, Att 9005a (unicodePwd)\n\x00"),
			KindPasswordRestriction, 0x52D, ""},
		{"restriction as 53", ldapErr(53, "0000052D: SvcErr: DSID-031A1254, problem 5003 (WILL_NOT_PERFORM), data 0"),
			KindPasswordRestriction, 0x52D, ""},
		{"wrong old password", ldapErr(19, "00000056: Constraint violation - check_password_restrictions: The old password specified doesn't match!"),
			KindWrongPassword, 0x56, "The old password specified doesn't match!"},
		{"access denied", ldapErr(50, "00000005: SecErr: DSID-03152857, problem 4003 (INSUFF_ACCESS_RIGHTS), data 0"),
			KindAccessDenied, 5, ""},
		{"insufficient rights on attribute", ldapErr(50, "00002098: Object CN=x has no write property access"),
			KindAccessDenied, 0x2098, "Object CN=x has no write property access"},
		{"no text, 50", ldapErr(50, "insufficient access rights"), KindAccessDenied, 0, ""},
		{"needs TLS", ldapErr(53, "0000001F: SvcErr: DSID-031A126C, problem 5003 (WILL_NOT_PERFORM), data 0"),
			KindUnwilling, 0x1F, ""},
		{"no such object", ldapErr(32, "0000208D: NameErr: DSID-03100241, problem 2001 (NO_OBJECT), data 0, best match of:"),
			KindNoSuchObject, 0x208D, ""},
		{"pwdLastSet other than 0/-1", ldapErr(80, "00000057: setup_last_set_field: pwdLastSet must be 0 or -1 only!"),
			KindConstraint, 0x57, "pwdLastSet must be 0 or -1 only!"},
		{"locked at bind", ldapErr(49, "80090308: LdapErr: DSID-0C0903A9, comment: AcceptSecurityContext error, data 775, v1db1"),
			KindInvalidCredentials, 0x775, ""},
		{"busy", ldapErr(51, "busy"), KindTransient, 0, ""},
		{"unavailable", ldapErr(52, ""), KindTransient, 0, ""},
		{"network", ldap.NewError(ldap.ErrorNetwork, errors.New("ldap: connection closed")), KindTransient, 0, ""},
		{"net error", &net.OpError{Op: "dial", Err: errors.New("connection refused")}, KindTransient, 0, ""},
		{"deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), KindTransient, 0, ""},
		{"canceled", context.Canceled, KindCanceled, 0, ""},
		{"other", errors.New("something"), KindOther, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := decode("op", "ldaps://dc", tc.err)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("not an *Error: %v", err)
			}
			if e.Kind != tc.kind || e.WinCode != tc.win {
				t.Errorf("kind %v win %X, want %v %X", e.Kind, e.WinCode, tc.kind, tc.win)
			}
			if tc.reason != "" && e.Reason != tc.reason {
				t.Errorf("reason %q, want %q", e.Reason, tc.reason)
			}
			if !errors.Is(err, &kindError{tc.kind}) {
				t.Errorf("errors.Is with the %v sentinel fails", tc.kind)
			}
			if !errors.Is(err, tc.err) {
				t.Error("the cause is not wrapped")
			}
			if strings.Contains(e.Reason, "DSID-") {
				t.Errorf("reason keeps a DSID: %q", e.Reason)
			}
		})
	}
}

func TestDecodeKeepsExisting(t *testing.T) {
	e := &Error{Op: "a", Kind: KindAmbiguous}
	if got := decode("b", "", e); got != e {
		t.Fatal("an *Error was wrapped again")
	}
	if decode("x", "", nil) != nil {
		t.Fatal("nil decoded to an error")
	}
}

func TestSentinelsAreDistinct(t *testing.T) {
	err := decode("op", "", ldapErr(19, "00000056: x"))
	for _, s := range []error{ErrPasswordRestriction, ErrAccessDenied, ErrTransient, ErrNotFound} {
		if errors.Is(err, s) {
			t.Errorf("wrong password matches %v", s)
		}
	}
	if !errors.Is(err, ErrWrongPassword) {
		t.Error("wrong password does not match its sentinel")
	}
}

func TestParseDiagnostic(t *testing.T) {
	for _, tc := range []struct {
		in     string
		code   uint32
		reason string
	}{
		{"", 0, ""},
		{"0000052D", 0x52D, ""},
		{"0000052D:", 0x52D, ""},
		{"0000052Dx: nope", 0, ""},
		{"zzzzzzzz: nope", 0, ""},
		{"0000052D: a: b: the reason ", 0x52D, "the reason"},
		{"0000052D: DSID-0310", 0x52D, ""},
	} {
		code, reason := parseDiagnostic(tc.in)
		if code != tc.code || reason != tc.reason {
			t.Errorf("%q: %X %q, want %X %q", tc.in, code, reason, tc.code, tc.reason)
		}
	}
	if got := parseBindData("AcceptSecurityContext error, data 52e, v4563"); got != 0x52E {
		t.Errorf("bind data %X", got)
	}
	if got := parseBindData("no data here"); got != 0 {
		t.Errorf("bind data %X", got)
	}
}

// FuzzDecode: any result code and diagnostic decodes without panicking, to
// a kind in range, with a reason that is valid UTF-8 without control bytes
// and no longer than the bound.
func FuzzDecode(f *testing.F) {
	f.Add(uint16(19), "0000052D: Constraint violation - check_password_restrictions: the password is too short!")
	f.Add(uint16(49), "80090308: LdapErr: DSID-0C0903A9, comment: AcceptSecurityContext error, data 775, v1db1")
	f.Add(uint16(50), "00002098: x")
	f.Add(uint16(53), "0000001F")
	f.Add(uint16(0), ":::")
	f.Add(uint16(200), "data ")
	f.Fuzz(func(t *testing.T, code uint16, diag string) {
		err := decode("op", "dc", ldap.NewError(code, errors.New(diag)))
		var e *Error
		if !errors.As(err, &e) {
			t.Fatal("not an *Error")
		}
		if int(e.Kind) >= len(kindNames) {
			t.Fatalf("kind %d out of range", e.Kind)
		}
		if len(e.Reason) > 240 {
			t.Fatalf("reason of %d bytes", len(e.Reason))
		}
		for _, r := range e.Reason {
			if r < 0x20 || r == 0x7f || r == 0xFFFD && !strings.ContainsRune(diag, 0xFFFD) {
				t.Fatalf("reason has control or invalid bytes: %q", e.Reason)
			}
		}
		_ = e.Error()
		if code == ldap.LDAPResultInsufficientAccessRights && e.Kind != KindAccessDenied {
			t.Fatalf("result 50 decoded as %v", e.Kind)
		}
	})
}
