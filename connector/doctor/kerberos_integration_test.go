//go:build integration

package doctor

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/jonboulle/clockwork"

	"github.com/adwriteback/adwriteback/integration/testdc"
)

// kerberosWorld is one test's account on the Samba DC, its keytab and a
// directory connection bound as it (what the doctor has after the bind).
type kerberosWorld struct {
	info *testdc.Info
	acct testdc.ServiceAccount
	s    KerberosSettings
	dir  *ldap.Conn
}

func newKerberosWorld(t *testing.T) *kerberosWorld {
	t.Helper()
	info := testdc.Ensure(t)
	acct := testdc.NewServiceAccount(t, info)
	w := &kerberosWorld{info: info, acct: acct, s: KerberosSettings{
		Principal: acct.SAM, Realm: info.Realm, KeytabFile: testdc.ExportKeytab(t, info, acct.Principal),
		KDCs: []string{info.KDC}, DCHosts: []string{info.Host}, Setting: "domains[0].bind",
	}}
	tcfg, err := testdc.TLSConfig(info)
	if err != nil {
		t.Fatal(err)
	}
	tcfg.ServerName = info.Host
	c, err := ldap.DialURL("ldaps://"+net.JoinHostPort(info.Addr, "636"), ldap.DialWithTLSConfig(tcfg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Bind(acct.DN, acct.Password); err != nil {
		t.Fatal(err)
	}
	w.dir = c
	return w
}

func (w *kerberosWorld) run(t *testing.T, clock clockwork.Clock) []Check {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	checks := kerberosChecks(ctx, Options{Clock: clock, Timeout: 5 * time.Second}, w.s, w.dir, w.info.BaseDN)
	for _, c := range checks {
		t.Logf("[%s] %s %s: %s (fix: %s)", c.Status, c.Name, c.Target, c.Detail, c.Fix)
		if strings.Contains(c.Detail+c.Fix, w.acct.Password) {
			t.Fatal("a check names the account's password")
		}
	}
	return checks
}

// want asserts the status of the named check, and words in its detail.
func want(t *testing.T, checks []Check, name string, st Status, words string) {
	t.Helper()
	c := findCheck(t, checks, name)
	if c.Status != st || !strings.Contains(c.Detail, words) {
		t.Errorf("%s: %+v, want %s with %q", name, c, st, words)
	}
}

func TestDoctorKerberosGoodKeytab(t *testing.T) {
	w := newKerberosWorld(t)
	checks := w.run(t, nil)
	for _, c := range checks {
		if c.Status != OK {
			t.Errorf("%s %s: %s, want OK", c.Name, c.Target, c.Status)
		}
	}
	want(t, checks, checkKeytab, OK, "aes256-cts-hmac-sha1-96")
	want(t, checks, checkKeyVersion, OK, "msDS-KeyVersionNumber of "+w.acct.DN)
	want(t, checks, checkServiceTicket, OK, "ldap/"+w.info.Host)
}

func TestDoctorKerberosAnotherPrincipalsKeytab(t *testing.T) {
	w := newKerberosWorld(t)
	w.s.KeytabFile = testdc.ExportKeytab(t, w.info, "svc-writeback@"+w.info.Realm)
	checks := w.run(t, nil)
	want(t, checks, checkKeytab, Fail, "no key of "+w.acct.Principal+" in the keytab; it holds: svc-writeback@"+w.info.Realm)
	want(t, checks, checkTGT, Skip, "no usable keytab")
}

func TestDoctorKerberosOldKeyVersion(t *testing.T) {
	w := newKerberosWorld(t)
	kvno := testdc.RotateKey(t, w.info, w.acct.SAM)
	checks := w.run(t, nil)
	want(t, checks, checkKeyVersion, Fail, "the account's is "+strconv.Itoa(kvno))
	want(t, checks, checkTGT, Fail, "wrong key")
	if c := findCheck(t, checks, checkTGT); !strings.Contains(c.Fix, "export the keytab again over "+w.s.KeytabFile) {
		t.Errorf("fix %q", c.Fix)
	}

	// Exported again over the same file: all good.
	if err := testdc.ExportKeytabTo(context.Background(), w.info, w.acct.Principal, w.s.KeytabFile); err != nil {
		t.Fatal(err)
	}
	checks = w.run(t, nil)
	want(t, checks, checkKeyVersion, OK, "key version "+strconv.Itoa(kvno))
	want(t, checks, checkTGT, OK, "ticket-granting ticket")
}

func TestDoctorKerberosKDCDown(t *testing.T) {
	w := newKerberosWorld(t)
	l, err := net.Listen("tcp", net.JoinHostPort(w.info.Addr, "0"))
	if err != nil {
		t.Fatal(err)
	}
	down := l.Addr().String()
	l.Close()
	w.s.KDCs = []string{down}
	checks := w.run(t, nil)
	want(t, checks, checkTGT, Fail, "KDC unreachable")
	want(t, checks, checkServiceTicket, Skip, "no ticket-granting ticket")
}

func TestDoctorKerberosSPNMissing(t *testing.T) {
	w := newKerberosWorld(t)
	w.s.DCHosts = []string{"nospn." + strings.ToLower(w.info.Realm)}
	checks := w.run(t, nil)
	want(t, checks, checkTGT, OK, "ticket-granting ticket")
	c := findCheck(t, checks, checkServiceTicket)
	if c.Status != Fail || !strings.Contains(c.Fix, "samba-tool spn add ldap/nospn.adw.test") {
		t.Errorf("%+v", c)
	}
}

func TestDoctorKerberosClockOff(t *testing.T) {
	w := newKerberosWorld(t)
	checks := w.run(t, clockwork.NewFakeClockAt(time.Now().Add(10*time.Minute)))
	want(t, checks, checkTGT, Fail, "clock skew")
	want(t, checks, checkKDCClock, Fail, "ahead of the KDC's: over 5 minutes")
}

func TestDoctorKerberosUnknownPrincipal(t *testing.T) {
	w := newKerberosWorld(t)
	w.s.Principal, w.s.KeytabFile = "nosuchsvc", testKeytab(t, 1, []int32{18}, "nosuchsvc")
	checks := w.run(t, nil)
	want(t, checks, checkKeyVersion, Warn, "0 accounts named nosuchsvc")
	want(t, checks, checkTGT, Fail, "principal unknown: the KDC does not know nosuchsvc@"+w.info.Realm)
}
