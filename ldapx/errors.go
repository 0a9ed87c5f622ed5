package ldapx

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// Kind classifies what went wrong in a way callers can act on.
type Kind int

// The kinds of failure. Transient ones may be retried (on another DC);
// the others are permanent for the request as sent.
const (
	KindOther               Kind = iota
	KindPasswordRestriction      // 0000052D: length, complexity, history, minimum age, filter
	KindWrongPassword            // 00000056: user change with a wrong old password
	KindAccessDenied             // 50 / 00000005 / 00002098: missing right, protected account
	KindNoSuchObject             // 32: the DN is gone
	KindUnwilling                // 53 / 0000001F: needs TLS, bad encoding, wrong modify form
	KindInvalidCredentials       // 49 at bind: wrong service account password, locked, expired
	KindConstraint               // 19 or 80 not about the password (e.g. pwdLastSet other than 0/-1)
	KindTransient                // busy, unavailable, network, timeout: retry, fail over
	KindNotFound                 // user lookup: no match
	KindAmbiguous                // user lookup: more than one match
	KindInvalidInput             // the caller's request is malformed (bad GUID, empty name)
	KindCanceled                 // the context ended
	KindTLS                      // the DC's certificate is not trusted or TLS failed
)

var kindNames = [...]string{
	KindOther: "other", KindPasswordRestriction: "password_restriction",
	KindWrongPassword: "wrong_password", KindAccessDenied: "access_denied",
	KindNoSuchObject: "no_such_object", KindUnwilling: "unwilling",
	KindInvalidCredentials: "invalid_credentials", KindConstraint: "constraint",
	KindTransient: "transient", KindNotFound: "not_found", KindAmbiguous: "ambiguous",
	KindInvalidInput: "invalid_input", KindCanceled: "canceled", KindTLS: "tls",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Sentinel errors, one per kind, for errors.Is.
var (
	ErrPasswordRestriction = &kindError{KindPasswordRestriction}
	ErrWrongPassword       = &kindError{KindWrongPassword}
	ErrAccessDenied        = &kindError{KindAccessDenied}
	ErrNoSuchObject        = &kindError{KindNoSuchObject}
	ErrUnwilling           = &kindError{KindUnwilling}
	ErrInvalidCredentials  = &kindError{KindInvalidCredentials}
	ErrConstraint          = &kindError{KindConstraint}
	ErrTransient           = &kindError{KindTransient}
	ErrNotFound            = &kindError{KindNotFound}
	ErrAmbiguous           = &kindError{KindAmbiguous}
	ErrInvalidInput        = &kindError{KindInvalidInput}
	ErrCanceled            = &kindError{KindCanceled}
	ErrTLS                 = &kindError{KindTLS}
)

type kindError struct{ k Kind }

func (e *kindError) Error() string { return "ldapx: " + e.k.String() }

// Error is a failure of one directory operation.
type Error struct {
	Op         string // e.g. "ldapx.Reset"
	Kind       Kind
	DC         string // the server that answered, when known
	ResultCode uint16 // LDAP result code; 0 when none (network, lookup)
	// WinCode is the Windows error from the start of the diagnostic
	// message (e.g. 0x52D), or the bind sub-code after "data " (0x775 for
	// locked); 0 when absent.
	WinCode uint32
	// Reason is the DC's explanation when it gives one (Samba appends it
	// after the last colon, e.g. "the password is too short. It should be
	// equal or longer than 7 characters!"). Windows gives none. It never
	// holds a password: DCs do not echo values.
	Reason string
	// Restriction refines KindPasswordRestriction where the directory's own
	// data tells (see Client.Change): RestrictionMinAge when pwdLastSet plus
	// the effective minimum age is still in the future.
	Restriction Restriction
	Err         error
}

// Restriction says which password rule the DC applied, when known.
type Restriction int

const (
	RestrictionUnknown Restriction = iota // length, complexity, history or a filter: AD does not say
	RestrictionMinAge                     // the password is too young to change
)

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Op)
	b.WriteString(": ")
	b.WriteString(e.Kind.String())
	if e.DC != "" {
		b.WriteString(" at ")
		b.WriteString(e.DC)
	}
	if e.ResultCode != 0 {
		fmt.Fprintf(&b, " (LDAP %d", e.ResultCode)
		if e.WinCode != 0 {
			fmt.Fprintf(&b, ", %08X", e.WinCode)
		}
		b.WriteString(")")
	}
	if e.Reason != "" {
		b.WriteString(": ")
		b.WriteString(e.Reason)
	} else if e.Err != nil && e.ResultCode == 0 {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Is matches the kind sentinels (errors.Is(err, ldapx.ErrAccessDenied)).
func (e *Error) Is(target error) bool {
	if k, ok := target.(*kindError); ok {
		return k.k == e.Kind
	}
	return false
}

// KindOf returns the kind of err (KindOther when it is not an ldapx error).
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	var k *kindError
	if errors.As(err, &k) {
		return k.k
	}
	return KindOther
}

// IsTransient says whether retrying, possibly on another DC, may succeed.
func IsTransient(err error) bool { return KindOf(err) == KindTransient }

// Windows error codes seen in AD diagnostics.
const (
	WinAccessDenied        = 0x00000005
	WinGenFailure          = 0x0000001F
	WinInvalidPassword     = 0x00000056 // wrong old password on change
	WinPasswordRestriction = 0x0000052D
	WinLogonFailure        = 0x0000052E
	WinAccountRestriction  = 0x0000052F
	WinInvalidLogonHours   = 0x00000530
	WinInvalidWorkstation  = 0x00000531
	WinPasswordExpired     = 0x00000532
	WinAccountDisabled     = 0x00000533
	WinAccountExpired      = 0x00000701
	WinPasswordMustChange  = 0x00000773
	WinAccountLocked       = 0x00000775
	WinInsufficientRights  = 0x00002098
)

// decode turns what go-ldap returned into an *Error. dc names the server.
// It classifies by LDAP result code and the Windows code, never by the
// free text, which is kept only as Reason.
func decode(op, dc string, err error) error {
	if err == nil {
		return nil
	}
	var already *Error
	if errors.As(err, &already) {
		return err
	}
	e := &Error{Op: op, DC: dc, Err: err}
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		if errors.Is(err, context.DeadlineExceeded) {
			e.Kind = KindTransient
		} else {
			e.Kind = KindCanceled
		}
		return e
	}
	if isTLSError(err) {
		e.Kind = KindTLS
		return e
	}
	if errors.Is(err, errConnLost) {
		e.Kind = KindTransient
		return e
	}
	var ke *KerberosError
	if errors.As(err, &ke) {
		// The bind is the connector's to fix, not the command's: transient
		// (another DC, or a later try after the fix, may succeed).
		e.Kind = KindTransient
		return e
	}
	var le *ldap.Error
	if !errors.As(err, &le) {
		var ne net.Error
		if errors.As(err, &ne) {
			e.Kind = KindTransient
			return e
		}
		e.Kind = KindOther
		return e
	}
	e.ResultCode = le.ResultCode
	diag := ""
	if le.Err != nil {
		diag = le.Err.Error()
	}
	e.WinCode, e.Reason = parseDiagnostic(diag)
	if le.ResultCode == ldap.LDAPResultInvalidCredentials {
		e.WinCode = parseBindData(diag)
	}
	e.Kind = classify(le.ResultCode, e.WinCode)
	return e
}

// classify maps an LDAP result code and Windows code to a Kind.
func classify(rc uint16, win uint32) Kind {
	if rc == ldap.LDAPResultInsufficientAccessRights {
		return KindAccessDenied
	}
	switch win {
	case WinPasswordRestriction:
		return KindPasswordRestriction
	case WinInvalidPassword:
		if rc == ldap.LDAPResultConstraintViolation || rc == ldap.LDAPResultUnwillingToPerform {
			return KindWrongPassword
		}
	case WinAccessDenied, WinInsufficientRights:
		if rc == ldap.LDAPResultInsufficientAccessRights || rc == ldap.LDAPResultUnwillingToPerform ||
			rc == ldap.LDAPResultConstraintViolation {
			return KindAccessDenied
		}
	}
	switch rc {
	case ldap.LDAPResultInsufficientAccessRights:
		return KindAccessDenied
	case ldap.LDAPResultNoSuchObject:
		return KindNoSuchObject
	case ldap.LDAPResultInvalidCredentials:
		return KindInvalidCredentials
	case ldap.LDAPResultUnwillingToPerform, ldap.LDAPResultConfidentialityRequired:
		return KindUnwilling
	case ldap.LDAPResultConstraintViolation, ldap.LDAPResultOther, ldap.LDAPResultAttributeOrValueExists,
		ldap.LDAPResultNoSuchAttribute, ldap.LDAPResultInvalidAttributeSyntax:
		return KindConstraint
	case ldap.LDAPResultBusy, ldap.LDAPResultUnavailable, ldap.LDAPResultServerDown,
		ldap.LDAPResultTimeLimitExceeded, ldap.LDAPResultTimeout, ldap.LDAPResultConnectError,
		ldap.ErrorNetwork, ldap.LDAPResultAdminLimitExceeded, ldap.LDAPResultLoopDetect:
		return KindTransient
	}
	return KindOther
}

// parseDiagnostic reads AD's diagnostic message: an 8-hex-digit Windows
// code at the start ("0000052D: Constraint violation - check_password_restrictions:
// the password is too short..."), and Samba's reason after the last colon.
// This parse of the code is the one documented exception to "never match
// error strings". The DSID part is ignored.
func parseDiagnostic(diag string) (uint32, string) {
	if len(diag) < 8 {
		return 0, ""
	}
	code, err := strconv.ParseUint(diag[:8], 16, 32)
	if err != nil || (len(diag) > 8 && diag[8] != ':') {
		return 0, ""
	}
	reason := ""
	if i := strings.LastIndexByte(diag, ':'); i >= 8 {
		reason = sanitizeReason(diag[i+1:])
	}
	return uint32(code), reason
}

// sanitizeReason trims the reason and drops DSID tokens and control bytes.
func sanitizeReason(s string) string {
	s = strings.TrimSpace(strings.TrimRight(s, "\x00"))
	if strings.HasPrefix(s, "DSID-") || s == "" {
		return ""
	}
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
	const max = 240
	if len(s) > max {
		s = s[:max]
	}
	return strings.ToValidUTF8(s, "")
}

// parseBindData reads the sub-code of a failed bind: "..., data 775, v4563".
func parseBindData(diag string) uint32 {
	i := strings.Index(diag, "data ")
	if i < 0 {
		return 0
	}
	s := diag[i+5:]
	j := 0
	for j < len(s) && j < 8 && isHex(s[j]) {
		j++
	}
	if j == 0 {
		return 0
	}
	v, err := strconv.ParseUint(s[:j], 16, 32)
	if err != nil {
		return 0
	}
	return uint32(v)
}

func isTLSError(err error) bool {
	var (
		unknownAuth x509.UnknownAuthorityError
		hostErr     x509.HostnameError
		invalid     x509.CertificateInvalidError
		certErr     *tls.CertificateVerificationError
		alert       tls.AlertError
		recordErr   tls.RecordHeaderError
	)
	return errors.As(err, &unknownAuth) || errors.As(err, &hostErr) || errors.As(err, &invalid) ||
		errors.As(err, &certErr) || errors.As(err, &alert) || errors.As(err, &recordErr)
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}
