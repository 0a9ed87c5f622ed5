package ldapx

import (
	"context"
	"slices"

	"github.com/go-ldap/ldap/v3"
)

// Policy-hints controls (MS-ADTS 3.1.1.3.4.1.27): make an admin reset
// enforce history and minimum age.
const (
	OIDPolicyHints           = "1.2.840.113556.1.4.2239" // Windows Server 2012 R2+
	OIDPolicyHintsDeprecated = "1.2.840.113556.1.4.2066" // Windows Server 2008 R2
)

// RootDSE is what the DC says about itself.
type RootDSE struct {
	DefaultNamingContext       string
	ConfigurationNamingContext string
	DNSHostName                string
	ServerName                 string
	DomainFunctionality        string
	SupportedControls          []string
	SupportedLDAPVersions      []string
	DC                         string // the URL that answered
}

// PolicyHintsOID returns the policy-hints control OID the DC supports, the
// newer preferred, or "" when it supports neither.
func (r *RootDSE) PolicyHintsOID() string {
	for _, oid := range []string{OIDPolicyHints, OIDPolicyHintsDeprecated} {
		if slices.Contains(r.SupportedControls, oid) {
			return oid
		}
	}
	return ""
}

// RootDSE returns the rootDSE, read once and cached (Ping and the DC
// probes refresh it).
func (cl *Client) RootDSE(ctx context.Context) (*RootDSE, error) {
	if r := cl.CachedRootDSE(); r != nil {
		return r, nil
	}
	res, dc, err := cl.search(ctx, "ldapx.RootDSE", rootDSERequest())
	if err != nil {
		return nil, err
	}
	r, err := parseRootDSE(res, dc)
	if err != nil {
		return nil, err
	}
	cl.setRootDSE(r)
	return r, nil
}

// readRootDSE is a DC probe: it reads the rootDSE on c and caches it.
func (cl *Client) readRootDSE(ctx context.Context, c *conn) error {
	var res *ldap.SearchResult
	err := c.do(ctx, cl.cfg.DialTimeout, func(l *ldap.Conn) error {
		var err error
		res, err = l.Search(rootDSERequest())
		return err
	})
	if err != nil {
		return err
	}
	r, err := parseRootDSE(res, c.srv.url.raw)
	if err != nil {
		return err
	}
	cl.setRootDSE(r)
	return nil
}

func (cl *Client) setRootDSE(r *RootDSE) {
	cl.mu.Lock()
	cl.rootDSE = r
	cl.mu.Unlock()
}

func rootDSERequest() *ldap.SearchRequest {
	return ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 0, false, "(objectClass=*)",
		[]string{"defaultNamingContext", "configurationNamingContext", "dnsHostName", "serverName",
			"domainFunctionality", "supportedControl", "supportedLDAPVersion"}, nil)
}

// parseRootDSE reads the one entry of a rootDSE search answered by dc.
func parseRootDSE(res *ldap.SearchResult, dc string) (*RootDSE, error) {
	if len(res.Entries) != 1 {
		return nil, &Error{Op: "ldapx.RootDSE", Kind: KindOther, DC: dc, Err: errNoRootDSE}
	}
	e := res.Entries[0]
	return &RootDSE{
		DefaultNamingContext:       e.GetAttributeValue("defaultNamingContext"),
		ConfigurationNamingContext: e.GetAttributeValue("configurationNamingContext"),
		DNSHostName:                e.GetAttributeValue("dnsHostName"),
		ServerName:                 e.GetAttributeValue("serverName"),
		DomainFunctionality:        e.GetAttributeValue("domainFunctionality"),
		SupportedControls:          e.GetAttributeValues("supportedControl"),
		SupportedLDAPVersions:      e.GetAttributeValues("supportedLDAPVersion"),
		DC:                         dc,
	}, nil
}

// CachedRootDSE returns the rootDSE read last, or nil before the first
// read. It never dials.
func (cl *Client) CachedRootDSE() *RootDSE {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.rootDSE
}
