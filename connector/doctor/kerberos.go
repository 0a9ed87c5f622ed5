package doctor

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/adwriteback/adwriteback/ldapx"
)

// KerberosSettings is how a domain's service account binds with Kerberos,
// as plain values: the checks need nothing else from the configuration.
type KerberosSettings struct {
	// Principal is the account's principal: its sAMAccountName
	// ("svc-writeback", "gmsa$"), optionally with "@REALM".
	Principal string
	// KeytabFile holds the account's keys.
	KeytabFile string
	// Realm is the Kerberos realm (the domain name upper-cased).
	Realm string
	// KDCs are host[:port] (port 88 by default); empty means those of
	// Krb5Conf's realm, else each DC host on 88.
	KDCs     []string
	Krb5Conf string
	// DCHosts are the DCs' host names: each needs the SPN ldap/<host>.
	DCHosts []string
	// Setting is the configuration path of these settings, for fix lines
	// (default "domains[].bind").
	Setting string
}

// Kerberos check names.
const (
	checkKeytab        = "kerberos keytab"
	checkKeyVersion    = "kerberos key version"
	checkTGT           = "kerberos ticket"
	checkKDCClock      = "kerberos clock skew"
	checkServiceTicket = "kerberos service ticket"
)

// maxKerberosSkew is what a KDC accepts by default (AD and MIT: 5 minutes).
const maxKerberosSkew = 5 * time.Minute

func (s KerberosSettings) key(k string) string { return cmp.Or(s.Setting, "domains[].bind") + "." + k }

// principal splits Principal into its name and realm (Realm unless
// Principal says "@REALM"), as the bind does.
func (s KerberosSettings) principal() (types.PrincipalName, string) {
	return ldapx.SplitPrincipal(s.Principal, s.Realm)
}

// ldap is the bind's configuration of these settings, for ldapx (which
// resolves the KDCs and runs the exchanges): with no KDCs listed and no
// krb5.conf, the KDCs are the DC hosts', on 88.
func (s KerberosSettings) ldap(realm string, opts Options) ldapx.Config {
	c := ldapx.Config{
		Kerberos: ldapx.Kerberos{Principal: s.Principal, KeytabFile: s.KeytabFile, Realm: realm, KDCs: s.KDCs, Krb5Conf: s.Krb5Conf},
		Dialer:   opts.Dialer, Clock: opts.Clock,
	}
	for _, h := range s.DCHosts {
		c.Servers = append(c.Servers, "ldaps://"+net.JoinHostPort(strings.Trim(h, "[]"), "636"))
	}
	return c
}

// kerberosChecks checks a Kerberos bind step by step: the keytab, the
// key version against the directory's (dir, when the doctor has a
// directory connection; else against the KDC's reply), a TGT from each
// KDC with the clock skew each reports, and a service ticket for each
// DC's ldap/ SPN.
func kerberosChecks(ctx context.Context, opts Options, s KerberosSettings, dir searcher, nc string) []Check {
	opts.setDefaults()
	cname, realm := s.principal()
	who := cname.PrincipalNameString() + "@" + realm
	keys, ktCheck := CheckKeytab(s, cname, realm)
	out := []Check{ktCheck}
	if ktCheck.Status == Fail {
		return append(out, skip(checkTGT, who, "no usable keytab (see the kerberos keytab check)"))
	}
	kvno := slices.MaxFunc(keys, func(a, b ldapx.KeytabKey) int { return cmp.Compare(a.KVNO, b.KVNO) }).KVNO
	if dir != nil {
		out = append(out, CheckKeyVersion(readKeyVersion(dir, nc, cname, realm), kvno, who, s))
	}
	cfg := s.ldap(realm, opts)
	kdcs, err := cfg.KDCs()
	if err != nil || len(kdcs) == 0 {
		return append(out, fail(checkTGT, who, fmt.Sprintf("no KDC to ask: %v", err),
			fmt.Sprintf("set %s (host[:port]) or %s", s.key("kdcs"), s.key("krb5_conf"))))
	}
	probe, err := ldapx.NewKerberosProbe(cfg, opts.Timeout)
	if err != nil {
		p := explainKerberos(err, who, kvno, s)
		return append(out, fail(checkTGT, who, p.Detail, p.Fix))
	}
	var good *ldapx.KerberosTGT
	for _, kdc := range kdcs {
		t, err := probe.Login(ctx, kdc)
		out = append(out, CheckTGT(err, kdc, who, kvno, s))
		if kt := kdcTime(t, err); !kt.IsZero() {
			out = append(out, CheckKerberosClock(kdc, kt, opts.Clock.Now()))
		}
		if err == nil && good == nil {
			good = t
			if dir == nil {
				out = append(out, CheckKeyVersion(keyVersion{KVNO: t.KVNO, From: "the KDC " + kdc}, kvno, who, s))
			}
		}
	}
	for _, h := range s.DCHosts {
		spn := "ldap/" + h
		if good == nil {
			out = append(out, skip(checkServiceTicket, spn, "no ticket-granting ticket (see the kerberos ticket check)"))
			continue
		}
		out = append(out, CheckServiceTicket(probe.ServiceTicket(ctx, good, spn), spn, good.KDC, who, s))
	}
	return out
}

// kdcTime is the KDC's clock as a login saw it (zero if it did not).
func kdcTime(t *ldapx.KerberosTGT, err error) time.Time {
	if t != nil {
		return t.KDCTime
	}
	var ke *ldapx.KerberosError
	if errors.As(err, &ke) {
		return ke.KDCTime
	}
	return time.Time{}
}

// CheckKeytab loads the keytab and lists the principal's keys (key
// version and encryption type; never a key): FAIL when the file cannot
// be read or holds no key of the principal, WARN when its keys are all
// of weak types (DES, RC4).
func CheckKeytab(s KerberosSettings, cname types.PrincipalName, realm string) ([]ldapx.KeytabKey, Check) {
	who := cname.PrincipalNameString() + "@" + realm
	kt, err := keytab.Load(s.KeytabFile)
	if err != nil {
		return nil, fail(checkKeytab, s.KeytabFile, fmt.Sprintf("cannot read the keytab: %v", err),
			fmt.Sprintf("set %s to the keytab exported for %s (ktpass, samba-tool domain exportkeytab or msktutil; see docs/operating.md)", s.key("keytab_file"), who))
	}
	keys := ldapx.KeytabKeys(kt, cname.PrincipalNameString(), realm)
	if len(keys) == 0 {
		return nil, fail(checkKeytab, s.KeytabFile, fmt.Sprintf("no key of %s in the keytab; it holds: %s", who, cmp.Or(strings.Join(ldapx.KeytabPrincipals(kt), ", "), "nothing")),
			fmt.Sprintf("export the keytab for %s (`samba-tool domain exportkeytab FILE --principal=%s`, or ktpass on Windows), or set %s and %s to the principal it holds",
				who, who, s.key("principal"), s.key("realm")))
	}
	mine := make([]string, len(keys))
	for i, k := range keys {
		mine[i] = fmt.Sprintf("key version %d %s", k.KVNO, k.ETypeName())
	}
	detail := fmt.Sprintf("%s: %s", who, strings.Join(mine, ", "))
	if !slices.ContainsFunc(keys, func(k ldapx.KeytabKey) bool { return strongEType(k.EType) }) {
		return keys, warn(checkKeytab, s.KeytabFile, detail+": only weak encryption types (DES, RC4)",
			"enable AES on the account (msDS-SupportedEncryptionTypes 0x18, or \"This account supports Kerberos AES 256 bit encryption\") and export the keytab again with AES keys (ktpass /crypto AES256-SHA1)")
	}
	return keys, ok(checkKeytab, s.KeytabFile, "%s", detail)
}

// strongEType: an AES type (RFC 3962, 8009).
func strongEType(e int32) bool { return e >= 17 && e <= 20 }

// keyVersion is the account's current key version, and who said it.
type keyVersion struct {
	KVNO int
	From string
	Err  error
}

// readKeyVersion reads the account's msDS-KeyVersionNumber, finding the
// account by sAMAccountName or userPrincipalName under nc.
func readKeyVersion(s searcher, nc string, cname types.PrincipalName, realm string) keyVersion {
	from := "msDS-KeyVersionNumber"
	name := cname.PrincipalNameString()
	filter := fmt.Sprintf("(&(objectClass=user)(|(sAMAccountName=%s)(userPrincipalName=%s)))",
		ldap.EscapeFilter(name), ldap.EscapeFilter(name+"@"+realm))
	res, err := s.Search(ldap.NewSearchRequest(nc, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 2, 0, false,
		filter, []string{"msDS-KeyVersionNumber"}, nil))
	if err != nil {
		return keyVersion{From: from, Err: fmt.Errorf("search %s: %w", nc, err)}
	}
	if len(res.Entries) != 1 {
		return keyVersion{From: from, Err: fmt.Errorf("%d accounts named %s under %s", len(res.Entries), name, nc)}
	}
	e := res.Entries[0]
	n, err := strconv.Atoi(e.GetAttributeValue("msDS-KeyVersionNumber"))
	if err != nil {
		return keyVersion{From: from, Err: fmt.Errorf("%s has no readable msDS-KeyVersionNumber", e.DN)}
	}
	return keyVersion{KVNO: n, From: from + " of " + e.DN}
}

// CheckKeyVersion compares the account's key version with the keytab's
// newest: an older keytab is what a password change (or a gMSA's
// rotation) leaves behind.
func CheckKeyVersion(acct keyVersion, keytabKVNO int, who string, s KerberosSettings) Check {
	if acct.Err != nil {
		return warn(checkKeyVersion, who, fmt.Sprintf("cannot read the account's key version: %v", acct.Err),
			fmt.Sprintf("check %s; the account can read its own msDS-KeyVersionNumber by default", s.key("principal")))
	}
	switch {
	case keytabKVNO == acct.KVNO:
		return ok(checkKeyVersion, who, "key version %d in the keytab and in %s", keytabKVNO, acct.From)
	case keytabKVNO < acct.KVNO:
		return fail(checkKeyVersion, who, fmt.Sprintf("the keytab's newest key is version %d, the account's is %d (%s): its password changed after the keytab was exported", keytabKVNO, acct.KVNO, acct.From),
			fmt.Sprintf("export the keytab again over %s (samba-tool domain exportkeytab, ktpass, msktutil --update); the connector reads it again at its next bind", s.KeytabFile))
	}
	return warn(checkKeyVersion, who, fmt.Sprintf("the keytab's newest key is version %d, newer than the account's %d (%s): a password change not yet replicated to this DC?", keytabKVNO, acct.KVNO, acct.From),
		"wait for replication, or export the keytab again from the DC the connector uses")
}

// CheckTGT judges the AS exchange with one KDC.
func CheckTGT(err error, kdc, who string, kvno int, s KerberosSettings) Check {
	if err == nil {
		return ok(checkTGT, kdc, "got a ticket-granting ticket for %s", who)
	}
	p := explainKerberos(err, who, kvno, s)
	return fail(checkTGT, kdc, p.Detail, p.Fix)
}

// CheckServiceTicket judges the TGS exchange for one DC's SPN.
func CheckServiceTicket(err error, spn, kdc, who string, s KerberosSettings) Check {
	if err == nil {
		return ok(checkServiceTicket, spn, "%s got a ticket for %s from %s", who, spn, kdc)
	}
	if r, _ := ldapx.KerberosReasonOf(err); r == ldapx.KerberosServiceUnknown {
		host := strings.TrimPrefix(spn, "ldap/")
		return fail(checkServiceTicket, spn, fmt.Sprintf("no account has the SPN %s: the DC cannot be reached with Kerberos under this name", spn),
			fmt.Sprintf("use the DC's own host name in domains[].servers, or add the SPN to the DC's computer account: Windows `setspn -S %s <DC computer name>` (check with `setspn -L <DC computer name>`), Samba `samba-tool spn add %s <DC computer name>$`", spn, spn)+
				fmt.Sprintf("; %s is the name the connector connects to", host))
	}
	p := explainKerberos(err, who, 0, s)
	return fail(checkServiceTicket, spn, p.Detail, p.Fix)
}

// CheckKerberosClock compares this host's clock with a KDC's: Kerberos
// refuses a request more than 5 minutes off.
func CheckKerberosClock(kdc string, kdcTime, local time.Time) Check {
	d := local.Sub(kdcTime)
	abs := d.Abs().Round(time.Second)
	dir := "ahead of"
	if d < 0 {
		dir = "behind"
	}
	detail := fmt.Sprintf("this host's clock is %s %s the KDC's", abs, dir)
	const fix = "synchronise this host's clock with the domain (NTP; on Windows `w32tm /resync`): Kerberos refuses requests more than 5 minutes off"
	switch {
	case abs > maxKerberosSkew:
		return fail(checkKDCClock, kdc, detail+": over 5 minutes, Kerberos refuses", fix)
	case abs > time.Minute:
		return warn(checkKDCClock, kdc, detail+": over 1 minute", fix)
	}
	return ok(checkKDCClock, kdc, "%s", detail)
}

// KerberosProblem is a Kerberos failure explained: what went wrong and
// the line that fixes it.
type KerberosProblem struct {
	Detail string
	Fix    string
}

// explainKerberos says what ldapx's classified failure (its reason and
// the KDC's code) means for this domain's settings, and the line that
// fixes it.
func explainKerberos(err error, who string, kvno int, s KerberosSettings) KerberosProblem {
	reexport := fmt.Sprintf("export the keytab again over %s (samba-tool domain exportkeytab, ktpass, msktutil --update); the connector reads it again at its next bind", s.KeytabFile)
	const etypeFix = "export the keytab with the account's encryption types (AES: ktpass /crypto AES256-SHA1), or enable AES on the account (msDS-SupportedEncryptionTypes)"
	var ke *ldapx.KerberosError
	if !errors.As(err, &ke) {
		return KerberosProblem{fmt.Sprintf("Kerberos failed: %v", err), "see the KDC's log"}
	}
	code := errorcode.Lookup(ke.Code)
	switch ke.Reason {
	case ldapx.KerberosKDCUnreachable:
		return KerberosProblem{fmt.Sprintf("KDC unreachable: %v", ke.Err),
			fmt.Sprintf("check %s (default: each server's host on port 88) and that TCP 88 to the KDC is open", s.key("kdcs"))}
	case ldapx.KerberosEncryptionType:
		if ke.Code == 0 {
			return KerberosProblem{fmt.Sprintf("encryption type: the keytab has no key of an encryption type the KDC offers (%s)", ke.Fix), etypeFix}
		}
		return KerberosProblem{fmt.Sprintf("encryption type: the KDC has no key of %s of the types the keytab holds (%s)", who, code), etypeFix}
	case ldapx.KerberosKeyMismatch:
		if ke.Code == 0 {
			return KerberosProblem{fmt.Sprintf("wrong key: the KDC's reply does not decrypt with the keytab's key: %v", ke.Err), reexport}
		}
		return KerberosProblem{fmt.Sprintf("wrong key: the keytab's key (version %d) is not %s's current key: its password changed after the export, or the keytab is another account's (%s)", kvno, who, code), reexport}
	case ldapx.KerberosPrincipalUnknown:
		return KerberosProblem{fmt.Sprintf("principal unknown: the KDC does not know %s (%s)", who, code),
			fmt.Sprintf("set %s to the account's sAMAccountName (a gMSA's ends with $) and %s to the domain's realm in upper case", s.key("principal"), s.key("realm"))}
	case ldapx.KerberosWrongRealm:
		return KerberosProblem{fmt.Sprintf("wrong realm for %s (%s)", who, code), fmt.Sprintf("set %s to the domain's name in upper case", s.key("realm"))}
	case ldapx.KerberosServiceUnknown:
		return KerberosProblem{fmt.Sprintf("the KDC does not know the service (%s): %s", code, ke.Fix), fmt.Sprintf("set %s to the domain's name in upper case", s.key("realm"))}
	case ldapx.KerberosClockSkew:
		return KerberosProblem{fmt.Sprintf("clock skew: this host's clock is more than 5 minutes off the KDC's (%s)", code),
			"synchronise this host's clock with the domain (NTP; on Windows `w32tm /resync`)"}
	case ldapx.KerberosAccountRevoked:
		return KerberosProblem{fmt.Sprintf("%s is disabled, locked out or expired (%s)", who, code),
			"enable or unlock the account (Windows `Enable-ADAccount`, `Unlock-ADAccount`; Samba `samba-tool user enable`, `samba-tool user unlock`)"}
	case ldapx.KerberosPasswordExpired:
		return KerberosProblem{fmt.Sprintf("%s's password has expired (%s)", who, code),
			"set a new password (or let the gMSA rotate), exempt the account from expiry, and export the keytab again"}
	case ldapx.KerberosKeytab:
		return KerberosProblem{fmt.Sprintf("keytab: %v", ke.Err),
			fmt.Sprintf("set %s to the keytab exported for %s", s.key("keytab_file"), who)}
	}
	if ke.Code != 0 {
		return KerberosProblem{fmt.Sprintf("the KDC refused: %s", code), "see the KDC's log"}
	}
	return KerberosProblem{fmt.Sprintf("Kerberos failed: %v", ke.Err), "see the KDC's log"}
}
