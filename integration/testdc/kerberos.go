package testdc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// KDCPort is the port of the DC's Kerberos KDC (on Info.Addr).
const KDCPort = 88

// ServiceGroupCN is the seeded group holding the service account's rights
// on the in-scope OU (the same four rights and PSO read): an account of
// NewServiceAccount joins it, so a test can rotate its own account's key
// without touching svc-writeback, which every suite shares.
const ServiceGroupCN = "writeback-service"

// strongAuth is the smb.conf line that lets a GSSAPI bind over LDAPS
// through without a SASL security layer. Samba's default, "ldap server
// require strong auth = yes", refuses such a bind ("SASL:[GSSAPI]: Sign
// or Seal are required") even over TLS, and go-ldap's GSSAPI client never
// negotiates sign or seal; a Windows DC accepts a SASL bind over TLS
// without one, as allow_sasl_over_tls does. Simple binds over LDAPS (every
// other suite) are unaffected: the setting only concerns SASL binds and
// simple binds without TLS.
const strongAuth = "\tldap server require strong auth = allow_sasl_over_tls\n"

// ldapSPNs are the service principal names of the DC's LDAP service the
// provisioning adds to its machine account (Samba's has only HOST/ ones
// and its KDC, unlike Windows', does not map ldap/ to them): the short
// and full host name, as a Windows DC has, and the address, as a Windows
// DC since 2016 accepts when registered, so a client given the DC by
// address (every stack's ldaps://<addr>) can name it too.
func (i *Info) ldapSPNs() []string {
	short := strings.SplitN(i.Host, ".", 2)[0]
	return []string{"ldap/" + short, "ldap/" + i.Host, "ldap/" + i.Addr}
}

// LDAPSPN is the service principal name a Kerberos client asks a ticket
// for to reach the DC's LDAP service by its host name: ldap/<Info.Host>.
func (i *Info) LDAPSPN() string { return "ldap/" + i.Host }

// Krb5Conf is a krb5.conf for the test realm with the DC's KDC, no DNS
// lookups and the AES types Samba issues.
func (i *Info) Krb5Conf() string {
	return fmt.Sprintf(`[libdefaults]
  default_realm = %[1]s
  dns_lookup_realm = false
  dns_lookup_kdc = false
  udp_preference_limit = 1
  default_tkt_enctypes = aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96
  default_tgs_enctypes = aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96
  permitted_enctypes = aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96

[realms]
  %[1]s = {
    kdc = %[2]s
  }

[domain_realm]
  .%[3]s = %[1]s
  %[3]s = %[1]s
`, i.Realm, i.KDC, strings.ToLower(i.Realm))
}

// WriteKrb5Conf writes Krb5Conf to a file in the test's temporary
// directory and returns its path.
func WriteKrb5Conf(tb testing.TB, info *Info) string {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), "krb5.conf")
	if err := os.WriteFile(p, []byte(info.Krb5Conf()), 0o644); err != nil {
		tb.Fatal(err)
	}
	return p
}

// configureKerberos allows SASL over TLS in smb.conf (before the DC
// starts; see strongAuth).
func configureKerberos(conf string) string {
	return strings.Replace(conf, "[global]\n", "[global]\n"+strongAuth, 1)
}

// seedKerberos adds the DC's ldap/ SPNs to its machine account.
func seedKerberos(ctx context.Context, cfg Config, info *Info) error {
	for _, spn := range info.ldapSPNs() {
		out, err := exec.CommandContext(ctx, "samba-tool", "spn", "add", spn, strings.ToUpper(HostName)+"$",
			"-s", cfg.confFile(), "-H", filepath.Join(cfg.Dir, "private", "sam.ldb")).CombinedOutput()
		if err != nil {
			return fmt.Errorf("samba-tool spn add %s: %w\n%s", spn, err, tail(out))
		}
	}
	return nil
}

// ExportKeytabTo writes principal's current keys (samba-tool domain
// exportkeytab) to path, mode 0600, replacing the file at once (written
// beside it and renamed), as a deployment would: a reader never sees half
// a keytab.
func ExportKeytabTo(ctx context.Context, info *Info, principal, path string) error {
	tmp := fmt.Sprintf("%s.export-%d", path, time.Now().UnixNano())
	defer os.Remove(tmp)
	out, err := exec.CommandContext(ctx, "samba-tool", "domain", "exportkeytab", tmp,
		"--principal="+principal, "-s", info.ConfFile).CombinedOutput()
	if err != nil {
		return fmt.Errorf("samba-tool domain exportkeytab %s: %w\n%s", principal, err, tail(out))
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// ExportKeytab exports principal's keys to a keytab in the test's
// temporary directory (mode 0600) and returns its path.
func ExportKeytab(tb testing.TB, info *Info, principal string) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "service.keytab")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := ExportKeytabTo(ctx, info, principal, path); err != nil {
		tb.Fatal(err)
	}
	return path
}

// ServiceAccount is a service account of one test (NewServiceAccount).
type ServiceAccount struct {
	DN, SAM, UPN string
	// Principal is SAM@REALM, what a keytab of it names.
	Principal string
	Password  string
}

// NewServiceAccount creates a service account for one test with the
// rights of svc-writeback (a member of ServiceGroupCN) and a random
// password, and deletes it when the test ends: a test that rotates its
// key or breaks it leaves the shared one alone.
func NewServiceAccount(tb testing.TB, info *Info) ServiceAccount {
	tb.Helper()
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	sam := "svc" + hex.EncodeToString(rnd[:])
	a := ServiceAccount{
		DN: "CN=" + sam + ",OU=Service," + info.BaseDN, SAM: sam,
		UPN: sam + "@" + strings.ToLower(info.Realm), Principal: sam + "@" + info.Realm,
		Password: randomPassword(),
	}
	admin(tb, info, func(c *ldap.Conn) error {
		r := ldap.NewAddRequest(a.DN, nil)
		r.Attribute("objectClass", []string{"user"})
		r.Attribute("sAMAccountName", []string{sam})
		r.Attribute("userPrincipalName", []string{a.UPN})
		r.Attribute("unicodePwd", []string{EncodePassword(a.Password)})
		r.Attribute("userAccountControl", []string{"66048"})
		if err := c.Add(r); err != nil {
			return fmt.Errorf("add service account %s: %w", a.DN, err)
		}
		return AddToGroup(c, info.ServiceGroupDN(), a.DN)
	})
	tb.Cleanup(func() { cleanup(tb, info, func(c *ldap.Conn) error { return c.Del(ldapDel(a.DN)) }) })
	return a
}

// ServiceGroupDN is the DN of ServiceGroupCN.
func (i *Info) ServiceGroupDN() string { return "CN=" + ServiceGroupCN + ",OU=Groups," + i.BaseDN }

// RotateKey gives the account sam a new random password (samba-tool user
// setpassword), which gives it new keys and raises its
// msDS-KeyVersionNumber, as a scheduled rotation (or a gMSA's) does, and
// returns the new key version. Export the keytab again to follow it.
func RotateKey(tb testing.TB, info *Info, sam string) int {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "samba-tool", "user", "setpassword", sam,
		"--newpassword="+randomPassword(), "-s", info.ConfFile,
		"-H", filepath.Join(info.Dir, "private", "sam.ldb")).CombinedOutput()
	if err != nil {
		tb.Fatalf("samba-tool user setpassword %s: %v\n%s", sam, err, tail(out))
	}
	return KeyVersion(tb, info, "CN="+sam+",OU=Service,"+info.BaseDN)
}

// KeyVersion is dn's msDS-KeyVersionNumber (the kvno of its current keys).
func KeyVersion(tb testing.TB, info *Info, dn string) int {
	tb.Helper()
	v, err := strconv.Atoi(string(ReadAttr(tb, info, dn, "msDS-KeyVersionNumber")))
	if err != nil {
		tb.Fatalf("msDS-KeyVersionNumber of %s: %v", dn, err)
	}
	return v
}

func randomPassword() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "Krb!" + hex.EncodeToString(b[:])
}

// kdcAddr is the KDC's host:port for the DC at addr.
func kdcAddr(addr string) string { return net.JoinHostPort(addr, strconv.Itoa(KDCPort)) }
