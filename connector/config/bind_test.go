package config

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/keytab"

	"github.com/adwriteback/adwriteback/ldapx"
)

// writeKeytab writes a keytab holding an AES key of each principal
// (name@REALM), mode 0600, and returns its path.
func writeKeytab(t *testing.T, dir string, principals ...string) string {
	t.Helper()
	kt := keytab.New()
	for _, p := range principals {
		name, realm, _ := strings.Cut(p, "@")
		if err := kt.AddEntry(name, realm, "not-a-real-password", time.Now(), 3, etypeID.AES256_CTS_HMAC_SHA1_96); err != nil {
			t.Fatal(err)
		}
	}
	b, err := kt.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "service.keytab")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// withBind replaces the minimal config's bind section.
func withBind(dir, bind string) string {
	return strings.Replace(minimal(dir), `    bind:
      dn: CN=svc,DC=adw,DC=test
      password_file: `+dir+`/bind.pass
`, bind, 1)
}

func TestKerberosBindAndItsDefaults(t *testing.T) {
	dir := files(t)
	writeKeytab(t, dir, "svc-writeback@ADW.TEST")
	src := strings.ReplaceAll(withBind(dir, `    bind:
      method: kerberos
      principal: svc-writeback@ADW.TEST
      keytab_file: DIR/service.keytab
`), "DIR", dir)
	c, err := Parse([]byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	b := c.Domains[0].Bind
	if b.Realm != "ADW.TEST" || len(b.KDCs) != 1 || b.KDCs[0] != "dc1.adw.test:88" || b.Password != "" {
		t.Fatalf("kerberos defaults: realm %q, kdcs %q", b.Realm, b.KDCs)
	}
	l := c.Domains[0].LDAP()
	if l.BindMethod != ldapx.BindKerberos || l.Kerberos.Principal != b.Principal || l.Kerberos.KeytabFile != b.KeytabFile ||
		l.Kerberos.Realm != "ADW.TEST" || len(l.Kerberos.KDCs) != 1 || l.BindPassword != "" {
		t.Fatalf("the domain's LDAP configuration: %+v", l)
	}
	l.CAFile = "" // the fixture's is no certificate
	if err := l.Validate(); err != nil {
		t.Fatalf("the mapped configuration does not validate: %v", err)
	}
	if c, err = Parse([]byte(minimal(dir)), nil); err != nil || c.Domains[0].Bind.Method != BindSimple {
		t.Fatalf("default method: %v %v", c, err)
	}
}

func TestBindProblems(t *testing.T) {
	dir := files(t)
	writeKeytab(t, dir, "other@ADW.TEST", "svc@ELSEWHERE.TEST")
	if err := os.WriteFile(filepath.Join(dir, "open.keytab"), []byte("\x05\x02"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "krb5.conf"), []byte("[libdefaults]\n  default_realm = ADW.TEST\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	type bindCase struct {
		name, bind string
		servers    string
		want       []string
	}
	cases := []bindCase{
		{"method unknown", "    bind: {method: ntlm}\n", "", []string{`domains[0].bind.method: "ntlm": use simple, kerberos or negotiate`}},
		{"kerberos needs principal and keytab", "    bind: {method: kerberos}\n", "", []string{
			"domains[0].bind.principal: required with kerberos", "domains[0].bind.keytab_file: required with kerberos"}},
		{"principal missing from the keytab", "    bind: {method: kerberos, principal: svc-writeback@ADW.TEST, keytab_file: DIR/service.keytab}\n", "", []string{
			"holds no key of svc-writeback@ADW.TEST; it holds other@ADW.TEST, svc@ELSEWHERE.TEST"}},
		{"keytab unreadable", "    bind: {method: kerberos, principal: svc@ADW.TEST, keytab_file: DIR/none.keytab}\n", "", []string{
			"domains[0].bind.keytab_file: " + dir + "/none.keytab: no such file"}},
		{"kerberos with a password", "    bind: {method: kerberos, principal: other@ADW.TEST, keytab_file: DIR/service.keytab, dn: x, password_env: P}\n", "", []string{
			"domains[0].bind.dn: applies only with method: simple", "domains[0].bind.password_env: applies only with method: simple"}},
		{"simple with kerberos keys", "    bind: {dn: x, password_file: DIR/bind.pass, principal: p, krb5_conf: DIR/krb5.conf}\n", "", []string{
			"domains[0].bind.principal: applies only with method: kerberos", "domains[0].bind.krb5_conf: applies only with method: kerberos"}},
		{"bad KDC", "    bind: {method: kerberos, principal: other@ADW.TEST, keytab_file: DIR/service.keytab, kdcs: [\"dc1:88:1\", \"\"]}\n", "", []string{
			`domains[0].bind.kdcs[0]: "dc1:88:1": a KDC is host[:port]`, `domains[0].bind.kdcs[1]`}},
		{"server by address", "    bind: {method: kerberos, principal: other@ADW.TEST, keytab_file: DIR/service.keytab}\n", "[ldaps://192.0.2.10]", []string{
			`domains[0].servers[0]: "ldaps://192.0.2.10" is an address: a kerberos bind asks for a ticket to ldap/<the DC's host name>; list the DC by its name, or set tls.server_name to it`}},
	}
	if runtime.GOOS != "windows" {
		cases = append(cases, bindCase{"negotiate off Windows, with secrets", "    bind: {method: negotiate, dn: x, keytab_file: DIR/service.keytab}\n", "", []string{
			"domains[0].bind.method: negotiate (SSPI) exists only on Windows",
			"domains[0].bind.dn: applies only with method: simple",
			"domains[0].bind.keytab_file: negotiate binds as the service's own identity"}},
			bindCase{"keytab others can read", "    bind: {method: kerberos, principal: svc@ADW.TEST, keytab_file: DIR/open.keytab}\n", "", []string{
				"open.keytab has mode 0644: group or others can read this secret; run chmod 600",
				"open.keytab is not a keytab"}})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := strings.ReplaceAll(withBind(dir, tc.bind), "DIR", dir)
			if tc.servers != "" {
				src = strings.Replace(src, "[ldaps://dc1.adw.test]", tc.servers, 1)
			}
			_, err := Parse([]byte(src), func(string) string { return "set" })
			var probs Problems
			if !errors.As(err, &probs) {
				t.Fatalf("got %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("missing %q in:\n%v", w, err)
				}
			}
		})
	}
}

func TestAddressWithServerNameIsAccepted(t *testing.T) {
	dir := files(t)
	writeKeytab(t, dir, "svc@ADW.TEST")
	src := strings.ReplaceAll(withBind(dir, "    bind: {method: kerberos, principal: svc@ADW.TEST, keytab_file: DIR/service.keytab}\n"), "DIR", dir)
	src = strings.Replace(src, "[ldaps://dc1.adw.test]", "[ldaps://192.0.2.10]", 1)
	src = strings.Replace(src, "    tls:\n", "    tls:\n      server_name: dc1.adw.test\n", 1)
	c, err := Parse([]byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	if k := c.Domains[0].Bind.KDCs; len(k) != 1 || k[0] != "192.0.2.10:88" {
		t.Fatalf("KDCs %q: each server's host on 88", k)
	}
}
