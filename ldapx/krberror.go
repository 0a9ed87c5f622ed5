package ldapx

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/messages"
)

// KerberosReason says why a Kerberos bind failed, in terms an operator can
// act on. Each has a fix line (KerberosError.Fix).
type KerberosReason int

// The reasons a Kerberos bind fails.
const (
	KerberosOther            KerberosReason = iota
	KerberosClockSkew                       // KRB_AP_ERR_SKEW (37), or the KDC's time seen here
	KerberosPrincipalUnknown                // KDC_ERR_C_PRINCIPAL_UNKNOWN (6)
	KerberosServiceUnknown                  // KDC_ERR_S_PRINCIPAL_UNKNOWN (7): no account has ldap/<dc>
	KerberosKeyMismatch                     // KDC_ERR_PREAUTH_FAILED (24), KRB_AP_ERR_BADKEYVER (44), KRB_AP_ERR_MODIFIED (41)
	KerberosKDCUnreachable                  // no KDC answered
	KerberosEncryptionType                  // KDC_ERR_ETYPE_NOSUPP (14), or no key of the KDC's type in the keytab
	KerberosAccountRevoked                  // KDC_ERR_CLIENT_REVOKED (18): disabled, locked out or expired
	KerberosKeytab                          // the keytab cannot be read or lacks the principal
	KerberosWrongRealm                      // KDC_ERR_WRONG_REALM (68)
	KerberosPasswordExpired                 // KDC_ERR_KEY_EXPIRED (23): the account's password expired
)

var kerberosReasonNames = [...]string{
	KerberosOther: "kerberos", KerberosClockSkew: "clock skew", KerberosPrincipalUnknown: "principal unknown",
	KerberosServiceUnknown: "service principal unknown", KerberosKeyMismatch: "key version mismatch",
	KerberosKDCUnreachable: "KDC unreachable", KerberosEncryptionType: "encryption type",
	KerberosAccountRevoked: "account revoked", KerberosKeytab: "keytab",
	KerberosWrongRealm: "wrong realm", KerberosPasswordExpired: "password expired",
}

func (r KerberosReason) String() string {
	if int(r) < len(kerberosReasonNames) {
		return kerberosReasonNames[r]
	}
	return fmt.Sprintf("kerberos reason %d", int(r))
}

// KerberosError is a failed Kerberos bind, classified: Reason, the
// protocol's error code when the KDC or the DC sent one, and a one-line
// Fix. It never holds key material. decode makes it KindTransient: a bind
// that fails is the connector's problem, not the command's; the DC's
// state (and so /readyz) shows its text.
type KerberosError struct {
	Reason KerberosReason
	// Code is the KRB_ERROR code (0 when the failure was seen here).
	Code int32
	// Stage is where it failed: "AS" (logging in with the keytab), "TGS"
	// (the DC's service ticket), "AP" (the DC accepting it), "keytab" or
	// "KDC".
	Stage string
	Fix   string
	// KDCTime is the KDC's (or the DC's) clock as it said it in the
	// exchange (a KRB_ERROR's stime, the ticket's auth time), or zero.
	KDCTime time.Time
	Err     error
}

func (e *KerberosError) Error() string {
	var b strings.Builder
	b.WriteString("kerberos ")
	b.WriteString(e.Reason.String())
	if e.Code != 0 {
		fmt.Fprintf(&b, " (%s)", errorcode.Lookup(e.Code))
	}
	if e.Stage != "" {
		fmt.Fprintf(&b, " at %s", e.Stage)
	}
	if e.Fix != "" {
		b.WriteString(": ")
		b.WriteString(e.Fix)
	}
	return b.String()
}

func (e *KerberosError) Unwrap() error { return e.Err }

// KerberosReasonOf returns the reason of a Kerberos bind failure in err's
// chain, and false when there is none.
func KerberosReasonOf(err error) (KerberosReason, bool) {
	var ke *KerberosError
	if errors.As(err, &ke) {
		return ke.Reason, true
	}
	return KerberosOther, false
}

// krbFacts is what the classifier knows besides the KDC's answer, for
// the fix line.
type krbFacts struct {
	principal string // client principal, name@REALM
	spn       string // ldap/<dc host>, when the stage has one
	keyKVNO   int    // the keytab's newest key version for the principal
	kdcs      []string
	now       time.Time // this host's clock, as the exchange used it
}

// classifyKerberos turns a failure of stage into a *KerberosError: a
// KRB_ERROR (messages.KRBError, found with errors.As) by its code,
// anything else as KerberosOther. It never reads error text.
func classifyKerberos(stage string, err error, f krbFacts) error {
	if err == nil {
		return nil
	}
	var already *KerberosError
	if errors.As(err, &already) {
		return err
	}
	var ke messages.KRBError
	if !errors.As(err, &ke) {
		return &KerberosError{Reason: KerberosOther, Stage: stage, Err: err,
			Fix: "see the cause in the log at debug level; check the DC's event log for the bind"}
	}
	reason, fix := krbReason(stage, ke, f)
	return &KerberosError{Reason: reason, Code: ke.ErrorCode, Stage: stage, Fix: fix, KDCTime: krbErrorTime(ke), Err: err}
}

// krbErrorTime is the server's clock a KRB_ERROR carries (zero if none).
func krbErrorTime(ke messages.KRBError) time.Time {
	if ke.STime.IsZero() {
		return time.Time{}
	}
	return ke.STime.Add(time.Duration(ke.Susec) * time.Microsecond)
}

// krbReason maps a KRB_ERROR code to a reason and its fix line.
func krbReason(stage string, ke messages.KRBError, f krbFacts) (KerberosReason, string) {
	switch ke.ErrorCode {
	case errorcode.KRB_AP_ERR_SKEW:
		return KerberosClockSkew, skewFix(ke, f.now)
	case errorcode.KDC_ERR_S_PRINCIPAL_UNKNOWN:
		if stage == "AS" {
			return KerberosServiceUnknown, "the KDC does not know the realm's krbtgt: check bind.realm (the domain's name in capitals)"
		}
		return KerberosServiceUnknown, fmt.Sprintf("no account has the SPN %s: name the server by the DC's own host name (not an alias or an address), or register the SPN on the DC's account (setspn -S %s <DC>$)", f.spn, f.spn)
	case errorcode.KDC_ERR_PREAUTH_FAILED:
		return KerberosKeyMismatch, fmt.Sprintf("the KDC refused the keytab's key (version %d) for %s: the account's password or key changed since the export; export the keytab again", f.keyKVNO, f.principal)
	case errorcode.KRB_AP_ERR_BADKEYVER:
		return KerberosKeyMismatch, fmt.Sprintf("the DC does not hold the key version its ticket for %s was made with (its account's password changed and has not replicated yet): wait for replication, or use another DC", f.spn)
	case errorcode.KRB_AP_ERR_MODIFIED:
		return KerberosKeyMismatch, fmt.Sprintf("the DC could not decrypt its ticket for %s: the SPN is on another account than the DC's (a duplicate SPN: setspn -X), or the DC's key is out of date", f.spn)
	}
	if a, ok := accountFixes[ke.ErrorCode]; ok {
		return a.reason, fmt.Sprintf(a.fix, f.principal)
	}
	return KerberosOther, "see the KDC's or the DC's log for this code"
}

// accountFixes are the codes about the client's account, with fix lines
// naming it (%s).
var accountFixes = map[int32]struct {
	reason KerberosReason
	fix    string
}{
	errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN: {KerberosPrincipalUnknown, "the KDC does not know %s: check bind.principal (a gMSA's name ends in $) and bind.realm"},
	errorcode.KDC_ERR_ETYPE_NOSUPP:        {KerberosEncryptionType, "the KDC and this connector share no encryption type for %s: export the keytab with the account's types (msDS-SupportedEncryptionTypes; AES is expected)"},
	errorcode.KDC_ERR_CLIENT_REVOKED:      {KerberosAccountRevoked, "%s is disabled, locked out or expired: fix the account in AD"},
	errorcode.KDC_ERR_KEY_EXPIRED:         {KerberosPasswordExpired, "the password of %s expired: set a new one (or let the gMSA rotate), exempt the account from expiry, and export the keytab again"},
	errorcode.KDC_ERR_WRONG_REALM:         {KerberosWrongRealm, "the KDC is not of the realm of %s: check bind.realm (the domain's name in capitals)"},
}

// skewFix says by how much the clocks differ when the KRB_ERROR carries
// the server's time.
func skewFix(ke messages.KRBError, now time.Time) string {
	const fix = "sync this host's clock with the domain's (w32time, chrony or ntpd); Kerberos allows 5 minutes"
	if ke.STime.IsZero() || now.IsZero() {
		return "the clocks here and at the KDC or DC differ too much: " + fix
	}
	d := now.Sub(ke.STime).Round(time.Second)
	dir := "ahead of"
	if d < 0 {
		d, dir = -d, "behind"
	}
	return fmt.Sprintf("this host's clock is %s %s the server's: %s", d, dir, fix)
}

// kdcUnreachableError is a KDC exchange that no KDC answered.
type kdcUnreachableError struct {
	kdcs []string
	errs []error
}

func (e *kdcUnreachableError) Error() string {
	return fmt.Sprintf("no KDC answered (%s): %v", strings.Join(e.kdcs, ", "), errors.Join(e.errs...))
}

func (e *kdcUnreachableError) Unwrap() []error { return e.errs }

// unreachable classifies an exchange no KDC answered.
func unreachable(stage string, e *kdcUnreachableError) *KerberosError {
	return &KerberosError{Reason: KerberosKDCUnreachable, Stage: stage, Err: e,
		Fix: fmt.Sprintf("no KDC answered on TCP (%s): check bind.kdcs or bind.krb5_conf, DNS and the firewall (port 88)", strings.Join(e.kdcs, ", "))}
}
