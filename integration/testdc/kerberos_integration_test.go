//go:build integration

package testdc_test

import (
	"context"
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/go-ldap/ldap/v3/gssapi"
	krbclient "github.com/jcmturner/gokrb5/v8/client"
	krbconfig "github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/keytab"

	"github.com/adwriteback/adwriteback/integration/testdc"
)

// TestKerberosTicketAndBind: with a keytab exported from the DC, gokrb5
// gets a ticket for the DC's LDAP service, and go-ldap's GSSAPI bind over
// LDAPS (no security layer: allow_sasl_over_tls) acts as the service
// account: it resets a user's password, a right only that account has.
func TestKerberosTicketAndBind(t *testing.T) {
	info := testdc.Ensure(t)
	kt := testdc.ExportKeytab(t, info, "svc-writeback@"+info.Realm)
	krb5 := testdc.WriteKrb5Conf(t, info)

	cfg, err := krbconfig.Load(krb5)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := keytab.Load(kt)
	if err != nil {
		t.Fatal(err)
	}
	cl := krbclient.NewWithKeytab("svc-writeback", info.Realm, keys, cfg, krbclient.DisablePAFXFAST(true))
	defer cl.Destroy()
	if err := cl.Login(); err != nil {
		t.Fatalf("AS exchange with the keytab: %v", err)
	}
	tkt, _, err := cl.GetServiceTicket(info.LDAPSPN())
	if err != nil {
		t.Fatalf("ticket for %s: %v", info.LDAPSPN(), err)
	}
	if got := tkt.SName.PrincipalNameString(); got != info.LDAPSPN() {
		t.Fatalf("ticket for %q, want %q", got, info.LDAPSPN())
	}

	// The DC is known by address too (a client given ldaps://<addr>).
	if _, _, err := cl.GetServiceTicket("ldap/" + info.Addr); err != nil {
		t.Fatalf("ticket for ldap/%s: %v", info.Addr, err)
	}

	u := testdc.NewUser(t, info, "")
	before := testdc.PwdVersion(t, info, u.DN)
	c := gssapiConn(t, info, "svc-writeback", kt, krb5)
	m := ldap.NewModifyRequest(u.DN, nil)
	m.Replace("unicodePwd", []string{testdc.EncodePassword("Krb5!Reset.2026")})
	if err := c.Modify(m); err != nil {
		t.Fatalf("reset over the Kerberos bind: %v", err)
	}
	if after := testdc.PwdVersion(t, info, u.DN); after != before+1 {
		t.Fatalf("unicodePwd version %d -> %d, want one write", before, after)
	}
}

// TestKerberosRotatedKey: a test's own service account has the shared
// one's rights; RotateKey raises its key version, the keytab exported
// before no longer gets a ticket, and one exported again does.
func TestKerberosRotatedKey(t *testing.T) {
	info := testdc.Ensure(t)
	a := testdc.NewServiceAccount(t, info)
	krb5 := testdc.WriteKrb5Conf(t, info)
	old := testdc.ExportKeytab(t, info, a.Principal)
	kvno := testdc.KeyVersion(t, info, a.DN)

	u := testdc.NewUser(t, info, "")
	c := gssapiConn(t, info, a.SAM, old, krb5)
	m := ldap.NewModifyRequest(u.DN, nil)
	m.Replace("unicodePwd", []string{testdc.EncodePassword("Krb5!Group.2026")})
	if err := c.Modify(m); err != nil {
		t.Fatalf("reset as a member of %s: %v", testdc.ServiceGroupCN, err)
	}

	if got := testdc.RotateKey(t, info, a.SAM); got != kvno+1 {
		t.Fatalf("key version after rotation %d, want %d", got, kvno+1)
	}
	if _, err := dialGSSAPI(t, info, a.SAM, old, krb5); err == nil {
		t.Fatal("GSSAPI bind with the keytab of the old key version succeeded")
	}
	fresh := testdc.ExportKeytab(t, info, a.Principal)
	gssapiConn(t, info, a.SAM, fresh, krb5)
}

func gssapiConn(t *testing.T, info *testdc.Info, user, kt, krb5 string) *ldap.Conn {
	t.Helper()
	c, err := dialGSSAPI(t, info, user, kt, krb5)
	if err != nil {
		t.Fatalf("GSSAPI bind as %s over LDAPS: %v", user, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// dialGSSAPI dials the DC's LDAPS by address, its certificate checked for
// its host name, and binds with GSSAPI for ldap/<host>.
func dialGSSAPI(t *testing.T, info *testdc.Info, user, kt, krb5 string) (*ldap.Conn, error) {
	t.Helper()
	tcfg, err := testdc.TLSConfig(info)
	if err != nil {
		t.Fatal(err)
	}
	tcfg.ServerName = info.Host
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d := tls.Dialer{Config: tcfg}
	nc, err := d.DialContext(ctx, "tcp", net.JoinHostPort(info.Addr, "636"))
	if err != nil {
		t.Fatal(err)
	}
	c := ldap.NewConn(nc, true)
	c.Start()
	c.SetTimeout(30 * time.Second)
	g, err := gssapi.NewClientWithKeytab(user, info.Realm, kt, krb5, krbclient.DisablePAFXFAST(true))
	if err != nil {
		c.Close()
		return nil, err
	}
	defer g.Close()
	if err := c.GSSAPIBind(g, info.LDAPSPN(), ""); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}
