package ldapx

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"slices"
	"strings"

	"github.com/go-ldap/ldap/v3"
	krbconfig "github.com/jcmturner/gokrb5/v8/config"
)

// BindMethod is how the connector authenticates to the DCs.
type BindMethod string

// The bind methods.
const (
	BindSimple    BindMethod = "simple"    // DN and password (the default)
	BindKerberos  BindMethod = "kerberos"  // GSSAPI, keys from a keytab
	BindNegotiate BindMethod = "negotiate" // GSSAPI through SSPI, as the process's identity (Windows)
)

// Kerberos is the keytab identity of BindKerberos. No password: the keys
// are read from KeytabFile (again when it changes on disk).
type Kerberos struct {
	// Principal is the service account, name@REALM (svc-writeback@ADW.TEST,
	// a gMSA's name ending in $); without @REALM, Realm's.
	Principal  string
	KeytabFile string
	// Realm is the Kerberos realm; empty: Krb5Conf's default realm, else
	// DefaultRealm(Domain).
	Realm string
	// KDCs are host[:port] (port 88 by default), tried in order over TCP;
	// empty: Krb5Conf's for the realm, else DefaultKDCs(Servers).
	KDCs []string
	// Krb5Conf is a krb5.conf naming the realm and its KDCs (instead of
	// Realm and KDCs).
	Krb5Conf string
}

// DefaultRealm is the realm of a domain when none is configured: its DNS
// name in capitals.
func DefaultRealm(domain string) string { return strings.ToUpper(domain) }

// DefaultKDCs are the KDCs when none are configured: each server's host,
// on port 88 (every AD DC is a KDC).
func DefaultKDCs(servers []string) []string {
	var out []string
	for _, s := range servers {
		if u, err := parseServer(s); err == nil && !slices.Contains(out, net.JoinHostPort(u.host, "88")) {
			out = append(out, net.JoinHostPort(u.host, "88"))
		}
	}
	return out
}

// bindProblems lists what is wrong with the bind settings for the method.
func (c *Config) bindProblems() []error {
	switch c.BindMethod {
	case "", BindSimple:
		var errs []error
		if c.BindDN == "" {
			errs = append(errs, errors.New("bind DN (or UPN) of the service account is empty"))
		}
		if c.BindPassword == "" {
			errs = append(errs, errors.New("bind password is empty (anonymous binds are refused)"))
		}
		return errs
	case BindKerberos:
		return append(c.noPassword(), c.kerberosProblems()...)
	case BindNegotiate:
		errs := c.noPassword()
		if runtime.GOOS != "windows" {
			errs = append(errs, errors.New("bind method negotiate (SSPI) exists only on Windows: use kerberos with a keytab"))
		}
		return append(errs, c.spnHostProblems()...)
	}
	return []error{fmt.Errorf("bind method %q: use simple, kerberos or negotiate", c.BindMethod)}
}

// noPassword: a password with a method that uses none is a mistake, not
// a fallback.
func (c *Config) noPassword() []error {
	if c.BindDN != "" || c.BindPassword != "" {
		return []error{fmt.Errorf("bind DN and password apply only to the simple bind, not %s", c.BindMethod)}
	}
	return nil
}

func (c *Config) kerberosProblems() []error {
	var errs []error
	k := c.Kerberos
	if k.Principal == "" {
		errs = append(errs, errors.New("kerberos principal is empty (name@REALM of the service account)"))
	}
	if k.KeytabFile == "" {
		errs = append(errs, errors.New("kerberos keytab file is empty"))
	} else if k.Principal != "" {
		if err := CheckKeytab(k.KeytabFile, k.Principal, c.realm()); err != nil {
			errs = append(errs, err)
		}
	}
	for i, kdc := range k.KDCs {
		if _, err := kdcAddr(kdc); err != nil {
			errs = append(errs, fmt.Errorf("kdcs[%d]: %w", i, err))
		}
	}
	if k.Krb5Conf == "" && c.realm() == "" {
		errs = append(errs, errors.New("kerberos realm unknown: set the realm, the domain, a principal with @REALM or a krb5.conf"))
	}
	if k.Krb5Conf == "" && len(k.KDCs) == 0 && len(c.Servers) == 0 {
		errs = append(errs, errors.New("no KDC: set kdcs, a krb5.conf or servers (each DC is a KDC)"))
	}
	return append(errs, c.spnHostProblems()...)
}

// spnHostProblems: the DC's service principal is ldap/<its host name>; a
// server given as an address has none unless ServerName names it.
func (c *Config) spnHostProblems() []error {
	var errs []error
	for i, s := range c.Servers {
		u, err := parseServer(s)
		if err == nil && net.ParseIP(u.host) != nil && c.ServerName == "" {
			errs = append(errs, fmt.Errorf("servers[%d]: %q is an address: Kerberos needs the DC's host name for its SPN (ldap/<name>); use the name, or set the TLS server name to it", i, s))
		}
	}
	return errs
}

// realm is the configured realm, else the principal's, else the domain's,
// else the krb5.conf's default realm.
func (c *Config) realm() string {
	if c.Kerberos.Realm != "" {
		return c.Kerberos.Realm
	}
	if _, r, ok := strings.Cut(c.Kerberos.Principal, "@"); ok && r != "" {
		return r
	}
	if c.Domain != "" || c.Kerberos.Krb5Conf == "" {
		return DefaultRealm(c.Domain)
	}
	if krb, err := krbconfig.Load(c.Kerberos.Krb5Conf); err == nil {
		return krb.LibDefaults.DefaultRealm
	}
	return ""
}

// kdcAddr is host:port of a KDC given as host[:port].
func kdcAddr(s string) (string, error) {
	if s == "" || strings.Contains(s, "/") {
		return "", fmt.Errorf("%q: a KDC is host[:port]", s)
	}
	if host, port, err := net.SplitHostPort(s); err == nil {
		if host == "" || port == "" {
			return "", fmt.Errorf("%q: a KDC is host[:port]", s)
		}
		return s, nil
	}
	if strings.Contains(s, ":") && net.ParseIP(s) == nil { // only a bare IPv6 address has colons and no port
		return "", fmt.Errorf("%q: a KDC is host[:port]", s)
	}
	return net.JoinHostPort(s, "88"), nil
}

// binder authenticates a secured connection to the DC named host.
type binder interface {
	bind(ctx context.Context, l *ldap.Conn, host string) error
}

type simpleBinder struct{ dn, password string }

func (b simpleBinder) bind(_ context.Context, l *ldap.Conn, _ string) error {
	return l.Bind(b.dn, b.password)
}

// newBinder chooses the binder of the configured method.
func newBinder(c *Config) (binder, error) {
	switch c.BindMethod {
	case BindKerberos:
		return newKerberosBinder(c)
	case BindNegotiate:
		return negotiateBinder{}, nil
	}
	return simpleBinder{dn: c.BindDN, password: c.BindPassword}, nil
}

// spnHost is the DC's host name for its SPN: the URL's host, or for a
// listed server given as an address, ServerName (Validate refuses an
// address without it).
func (cl *Client) spnHost(s *server) string {
	if net.ParseIP(s.url.host) != nil && !s.discovered && cl.cfg.ServerName != "" {
		return cl.cfg.ServerName
	}
	return s.url.host
}

// CheckKrb5Conf reports whether file is a krb5.conf gokrb5 reads.
func CheckKrb5Conf(file string) error {
	if _, err := krbconfig.Load(file); err != nil {
		return fmt.Errorf("krb5.conf %s: %w", file, err)
	}
	return nil
}
