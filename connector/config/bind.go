package config

import (
	"fmt"
	"net"
	"net/url"
	"runtime"

	"github.com/adwriteback/adwriteback/ldapx"
)

// validate checks the bind section of domain d, at path p, for its method,
// and resolves the simple bind's password.
func (b *Bind) validate(p string, d *Domain, add addFunc, env Env) {
	switch b.Method {
	case BindSimple:
		b.validateSimple(p, add, env)
	case BindKerberos:
		b.noSimple(p, add)
		b.validateKerberos(p, add)
		spnHosts(p, d, add)
	case BindNegotiate:
		b.noSimple(p, add)
		b.noKerberos(p, "negotiate binds as the service's own identity: nothing secret is configured", add)
		if runtime.GOOS != "windows" {
			add(p+".method", "negotiate (SSPI) exists only on Windows: use kerberos with a keytab here")
		}
		spnHosts(p, d, add)
	default:
		add(p+".method", "%q: use %s, %s or %s", b.Method, BindSimple, BindKerberos, BindNegotiate)
	}
}

func (b *Bind) validateSimple(p string, add addFunc, env Env) {
	if b.DN == "" {
		add(p+".dn", "required (the service account's DN or UPN)")
	}
	b.Password = secret(p, "password", b.PasswordFile, b.PasswordEnv, true, env, add)
	b.noKerberos(p, "applies only with method: kerberos", add)
}

// noSimple: a DN or password with a method that uses none is a mistake.
func (b *Bind) noSimple(p string, add addFunc) {
	for _, k := range []struct{ key, v string }{{"dn", b.DN}, {"password_file", b.PasswordFile}, {"password_env", b.PasswordEnv}} {
		if k.v != "" {
			add(p+"."+k.key, "applies only with method: simple (%s binds without a password)", b.Method)
		}
	}
}

// noKerberos: the Kerberos keys set with another method, saying why.
func (b *Bind) noKerberos(p, why string, add addFunc) {
	for _, k := range []struct {
		key string
		set bool
	}{{"principal", b.Principal != ""}, {"keytab_file", b.KeytabFile != ""}, {"realm", b.Realm != ""},
		{"kdcs", len(b.KDCs) > 0}, {"krb5_conf", b.Krb5Conf != ""}} {
		if k.set {
			add(p+"."+k.key, "%s", why)
		}
	}
}

// validateKerberos: a principal, a keytab only this process can read that
// holds its keys, KDCs as host[:port], and a krb5.conf that parses.
func (b *Bind) validateKerberos(p string, add addFunc) {
	if b.Principal == "" {
		add(p+".principal", "required with kerberos (name@REALM of the service account, e.g. svc-writeback@EXAMPLE.COM)")
	}
	switch {
	case b.KeytabFile == "":
		add(p+".keytab_file", "required with kerberos (the service account's keys: ktpass, or samba-tool domain exportkeytab)")
	default:
		trusted(p+".keytab_file", b.KeytabFile, secretFile, add)
		if b.Principal != "" {
			if err := ldapx.CheckKeytab(b.KeytabFile, b.Principal, b.Realm); err != nil {
				add(p+".keytab_file", "%v", err)
			}
		}
	}
	for i, k := range b.KDCs {
		if !validKDC(k) {
			add(fmt.Sprintf("%s.kdcs[%d]", p, i), "%q: a KDC is host[:port] (port 88 by default)", k)
		}
	}
	if b.Krb5Conf != "" {
		trusted(p+".krb5_conf", b.Krb5Conf, trustAnchor, add)
		if err := ldapx.CheckKrb5Conf(b.Krb5Conf); err != nil {
			add(p+".krb5_conf", "%v", err)
		}
	}
	if b.Krb5Conf == "" && b.Realm == "" {
		add(p+".realm", "required: the domain has no name to take it from")
	}
	if b.Krb5Conf == "" && len(b.KDCs) == 0 {
		add(p+".kdcs", "required: no server to take them from (list kdcs, or a krb5_conf)")
	}
}

func validKDC(s string) bool {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		host, port = s, "88"
	}
	return host != "" && port != "" && (net.ParseIP(host) != nil || ldapx.IsDNSName(host))
}

// spnHosts: Kerberos names the DC by its host name (its SPN is
// ldap/<name>); a server given as an address has none, unless
// tls.server_name names the DC.
func spnHosts(p string, d *Domain, add addFunc) {
	if d.TLS.ServerName != "" {
		return
	}
	for j, s := range d.Servers {
		if u, err := url.Parse(s); err == nil && net.ParseIP(u.Hostname()) != nil {
			add(fmt.Sprintf("%s.servers[%d]", p[:len(p)-len(".bind")], j),
				"%q is an address: a %s bind asks for a ticket to ldap/<the DC's host name>; list the DC by its name, or set tls.server_name to it", s, d.Bind.Method)
		}
	}
}

// LDAP is the LDAP client configuration of the domain section (the bind
// password as resolved by Load): the one mapping of a domain to
// ldapx.Config. Callers add the logger, the clock and what they inject.
func (d *Domain) LDAP() ldapx.Config {
	return ldapx.Config{
		Servers: d.Servers, Domain: d.Name, Discover: d.Discover, DiscoverAllow: d.DiscoverAllow,
		BindMethod: ldapx.BindMethod(d.Bind.Method), BindDN: d.Bind.DN, BindPassword: d.Bind.Password,
		Kerberos: ldapx.Kerberos{Principal: d.Bind.Principal, KeytabFile: d.Bind.KeytabFile,
			Realm: d.Bind.Realm, KDCs: d.Bind.KDCs, Krb5Conf: d.Bind.Krb5Conf},
		CAFile: d.TLS.CAFile, ServerName: d.TLS.ServerName, InsecureSkipVerify: d.TLS.InsecureSkipVerify,
		BaseDN: d.BaseDN, PoolSize: d.PoolSize, DialTimeout: d.DialTimeout, OpTimeout: d.OpTimeout,
		PolicyRefresh: d.PolicyRefresh, ProbeInterval: d.DCProbeInterval,
	}
}
