package doctor

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/adwriteback/adwriteback/ldapx"
)

// OIDSDFlags is LDAP_SERVER_SD_FLAGS_OID; sdFlagsDACL is its value asking
// for the DACL only: BER SEQUENCE { INTEGER 4 }.
const (
	OIDSDFlags  = "1.2.840.113556.1.4.801"
	sdFlagsDACL = "\x30\x03\x02\x01\x04"
)

// searcher is the part of an LDAP connection the directory reads use
// (*ldap.Conn satisfies it).
type searcher interface {
	Search(req *ldap.SearchRequest) (*ldap.SearchResult, error)
}

// dialLDAP opens a verified TLS connection to one DC and binds as the
// service account, for the reads ldapx does not offer (security
// descriptors, tokenGroups, constructed attributes). The connection is
// closed when ctx ends.
func dialLDAP(ctx context.Context, d Dialer, s server, t TLSSettings, dn, password string, timeout time.Duration) (*ldap.Conn, error) {
	roots, err := t.roots()
	if err != nil {
		return nil, err
	}
	host := s.Host
	if t.ServerName != "" {
		host = t.ServerName
	}
	cfg := &tls.Config{RootCAs: roots, ServerName: host, InsecureSkipVerify: t.Insecure, MinVersion: tls.VersionTLS12} //nolint:gosec // only when configured, reported as WARN
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	raw, err := d.DialContext(dctx, "tcp", s.Addr)
	if err != nil {
		return nil, err
	}
	var l *ldap.Conn
	if s.StartTLS {
		l = ldap.NewConn(raw, false)
		l.Start()
		l.SetTimeout(timeout)
		if err := l.StartTLS(cfg); err != nil {
			l.Close()
			return nil, err
		}
	} else {
		tc := tls.Client(raw, cfg)
		if err := tc.HandshakeContext(dctx); err != nil {
			raw.Close()
			return nil, err
		}
		l = ldap.NewConn(tc, true)
		l.Start()
	}
	l.SetTimeout(timeout)
	if err := l.Bind(dn, password); err != nil {
		l.Close()
		return nil, err
	}
	context.AfterFunc(ctx, func() { l.Close() })
	return l, nil
}

// ServiceAccount is what the directory says about the bound account.
type ServiceAccount struct {
	DN     string
	SID    string
	SAM    string
	UPN    string
	Groups []string // tokenGroups: every group SID, nested included
}

// Trustee names the account for dsacls: its UPN, else its sAMAccountName.
func (a *ServiceAccount) Trustee() string {
	if a.UPN != "" {
		return a.UPN
	}
	return a.SAM
}

// readServiceAccount reads the bound account's objectSid and tokenGroups
// (a constructed attribute, only returned by a base-scope read of the
// entry itself). bindDN may be a DN or a userPrincipalName.
func readServiceAccount(s searcher, bindDN, namingContext string) (*ServiceAccount, error) {
	dn := bindDN
	if !strings.Contains(bindDN, "=") {
		// A UPN, or a Kerberos principal (name@REALM: its name is the
		// sAMAccountName when the UPN differs).
		name, _, _ := strings.Cut(bindDN, "@")
		res, err := s.Search(ldap.NewSearchRequest(namingContext, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 2, 0, false,
			"(|(userPrincipalName="+ldap.EscapeFilter(bindDN)+")(sAMAccountName="+ldap.EscapeFilter(name)+"))", []string{"1.1"}, nil))
		if err != nil {
			return nil, err
		}
		if len(res.Entries) != 1 {
			return nil, fmt.Errorf("%d accounts have userPrincipalName %s", len(res.Entries), bindDN)
		}
		dn = res.Entries[0].DN
	}
	res, err := s.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 0, false,
		"(objectClass=*)", []string{"objectSid", "tokenGroups", "sAMAccountName", "userPrincipalName"}, nil))
	if err != nil {
		return nil, err
	}
	if len(res.Entries) != 1 {
		return nil, fmt.Errorf("cannot read %s", dn)
	}
	e := res.Entries[0]
	a := &ServiceAccount{DN: e.DN, SAM: e.GetAttributeValue("sAMAccountName"), UPN: e.GetAttributeValue("userPrincipalName")}
	if a.SID, err = SIDString(e.GetRawAttributeValue("objectSid")); err != nil {
		return nil, fmt.Errorf("objectSid of %s: %w", dn, err)
	}
	for _, v := range e.GetRawAttributeValues("tokenGroups") {
		g, err := SIDString(v)
		if err != nil {
			return nil, fmt.Errorf("tokenGroups of %s: %w", dn, err)
		}
		a.Groups = append(a.Groups, g)
	}
	return a, nil
}

// readDACL reads dn's nTSecurityDescriptor, DACL only (SD flags control),
// and parses it.
func readDACL(s searcher, dn string) (*ACL, error) {
	ctrl := ldap.NewControlString(OIDSDFlags, true, sdFlagsDACL)
	res, err := s.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 0, false,
		"(objectClass=*)", []string{"nTSecurityDescriptor"}, []ldap.Control{ctrl}))
	if err != nil {
		return nil, err
	}
	if len(res.Entries) != 1 {
		return nil, fmt.Errorf("cannot read %s", dn)
	}
	raw := res.Entries[0].GetRawAttributeValue("nTSecurityDescriptor")
	if len(raw) == 0 {
		return nil, errNoSD
	}
	sd, err := ParseSD(raw)
	if err != nil {
		return nil, err
	}
	if sd.DACL == nil {
		return nil, errNoSD
	}
	return sd.DACL, nil
}

var errNoSD = errors.New("the DC returned no security descriptor (the account lacks Read Permissions)")

// sampleUser is one non-protected user below an OU, for corroboration.
type sampleUser struct {
	DN string
	// Writable is allowedAttributesEffective: the attributes the DC says
	// the bound account may write on this user; nil when not returned.
	Writable []string
}

func readSampleUser(s searcher, ou string) (*sampleUser, error) {
	res, err := s.Search(ldap.NewSearchRequest(ou, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 1, 0, false,
		"(&(objectCategory=person)(objectClass=user)(!(adminCount=1)))", []string{"allowedAttributesEffective"}, nil))
	if err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
		return nil, err
	}
	if res == nil || len(res.Entries) == 0 {
		return nil, nil
	}
	e := res.Entries[0]
	return &sampleUser{DN: e.DN, Writable: e.GetAttributeValues("allowedAttributesEffective")}, nil
}

// psoEntry is one fine-grained password policy as the account sees it.
type psoEntry struct {
	DN       string
	Readable bool // its settings came back
}

func readPSOs(s searcher, namingContext string) ([]psoEntry, error) {
	res, err := s.Search(ldap.NewSearchRequest("CN=Password Settings Container,CN=System,"+namingContext, ldap.ScopeSingleLevel,
		ldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)",
		[]string{"msDS-MinimumPasswordLength", "msDS-PasswordSettingsPrecedence"}, nil))
	if err != nil {
		return nil, err
	}
	var out []psoEntry
	for _, e := range res.Entries {
		out = append(out, psoEntry{DN: e.DN, Readable: e.GetAttributeValue("msDS-PasswordSettingsPrecedence") != "" && e.GetAttributeValue("msDS-MinimumPasswordLength") != ""})
	}
	return out, nil
}

// CheckRootDSE judges what the DC says about itself: a naming context (it
// is an AD DC) and the policy-hints control.
func CheckRootDSE(r *ldapx.RootDSE, dc string) []Check {
	var out []Check
	if r.DefaultNamingContext == "" {
		out = append(out, fail("naming context", dc, "the rootDSE has no defaultNamingContext: this is not an Active Directory domain controller",
			"point domains[].servers at the domain's DCs"))
	} else {
		out = append(out, ok("naming context", dc, "%s (DC %s, domain functional level %s)", r.DefaultNamingContext, r.DNSHostName, r.DomainFunctionality))
	}
	if oid := r.PolicyHintsOID(); oid != "" {
		out = append(out, ok("policy hints", dc, "supported (%s): admin resets enforce password history and minimum age", oid))
	} else {
		out = append(out, warn("policy hints", dc,
			"the DC does not advertise the policy-hints control ("+ldapx.OIDPolicyHints+" or "+ldapx.OIDPolicyHintsDeprecated+"): resets the connector makes as an administrator will NOT enforce password history or minimum password age (length and complexity still apply)",
			"use DCs running Windows Server 2012 R2 or later (2008 R2 needs the update adding "+ldapx.OIDPolicyHintsDeprecated+"); Samba does not implement the control. Nothing to set in the connector: it sends the control whenever the DC advertises it"))
	}
	return out
}

// CheckScopeInDomain reports scope OUs that are not under the naming context.
func CheckScopeInDomain(ous []string, nc, domain string) []Check {
	var out []Check
	for _, ou := range ous {
		if !dnUnder(ou, nc) {
			out = append(out, fail("scope", ou, fmt.Sprintf("the OU is not in domain %s (naming context %s)", domain, nc),
				"correct domains[].scope.ous: each OU must be in this domain, e.g. OU=Staff,"+nc))
		}
	}
	return out
}

func dnUnder(dn, base string) bool {
	d, err1 := ldap.ParseDN(dn)
	b, err2 := ldap.ParseDN(base)
	if err1 != nil || err2 != nil {
		return false
	}
	return b.AncestorOfFold(d) || b.EqualFold(d)
}

// CheckDomainPolicy judges the read of the domain's password policy.
func CheckDomainPolicy(p *ldapx.Policy, err error, domain, nc, trustee string) Check {
	const name = "domain policy"
	if err != nil {
		return fail(name, domain, fmt.Sprintf("cannot read the password policy on %s: %v", nc, err),
			fmt.Sprintf("give %s read access to the domain root %s (Authenticated Users have it by default): dsacls %q /G \"%s:RP\"", trustee, nc, nc, trustee))
	}
	return ok(name, domain, "readable: minimum length %d, complexity %v, history %d, minimum age %s, maximum age %s, lockout after %d",
		p.MinLength, p.Complexity, p.HistoryLength, p.MinAge, p.MaxAge, p.LockoutThreshold)
}

// CheckPSOs judges what the account sees of the fine-grained policies.
func CheckPSOs(psos []psoEntry, err error, domain, nc, sid, trustee string) Check {
	const name = "fine-grained policies"
	container := "CN=Password Settings Container,CN=System," + nc
	fix := fmt.Sprintf("let the service account read PSOs: Samba `samba-tool dsacl set -H /var/lib/samba/private/sam.ldb --objectdn=%q --sddl=\"(A;CI;RPLCLORC;;;%s)\"`; Windows `dsacls %q /I:T /G \"%s:GR\"`",
		container, sid, container, trustee)
	if err != nil {
		return warn(name, domain, fmt.Sprintf("cannot list %s: %v; if fine-grained policies (PSOs) are used, the local pre-check applies the domain policy instead and the DC will refuse what it misses", container, err), fix)
	}
	var hidden []string
	for _, p := range psos {
		if !p.Readable {
			hidden = append(hidden, p.DN)
		}
	}
	if len(hidden) > 0 {
		return warn(name, domain, fmt.Sprintf("%d of %d PSO(s) exist but their settings cannot be read: %s; users under them are pre-checked against the domain policy and get less precise answers",
			len(hidden), len(psos), strings.Join(hidden, "; ")), fix)
	}
	if len(psos) == 0 {
		return ok(name, domain, "no PSO visible in %s: the domain policy applies", container)
	}
	return ok(name, domain, "%d PSO(s) readable", len(psos))
}

func isNoSuchObject(err error) bool {
	return ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject)
}
