//go:build integration

package ldapx_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/adwriteback/adwriteback/integration/testdc"
	"github.com/adwriteback/adwriteback/ldapx"
)

// krbClient is a client binding with Kerberos as principal with the
// keytab: the DC by its address, named by ServerName (its certificate's
// and its SPN's name; the host name resolves nowhere here).
func krbClient(t *testing.T, info *testdc.Info, principal, keytab string, mutate ...func(*ldapx.Config)) *ldapx.Client {
	t.Helper()
	return newClient(t, info, append([]func(*ldapx.Config){func(c *ldapx.Config) {
		c.BindDN, c.BindPassword = "", ""
		c.BindMethod = ldapx.BindKerberos
		c.ServerName = info.Host
		c.Kerberos = ldapx.Kerberos{Principal: principal, KeytabFile: keytab, KDCs: []string{info.KDC}}
	}}, mutate...)...)
}

func TestKerberosBindReadsAndResets(t *testing.T) {
	info := testdc.Ensure(t)
	kt := testdc.ExportKeytab(t, info, "svc-writeback@"+info.Realm)
	cl := krbClient(t, info, "svc-writeback@"+info.Realm, kt)
	u := testdc.NewUser(t, info, "")
	before, err := cl.ReadUser(ctxT(t), u.DN)
	if err != nil {
		t.Fatalf("read a user bound with Kerberos: %v", err)
	}
	if before.PwdVersion == 0 {
		t.Fatal("unicodePwd's replication version not read: bound as someone else than the service account?")
	}
	if _, err := cl.Reset(ctxT(t), u.DN, newPass, ldapx.ResetOptions{}); err != nil {
		t.Fatalf("reset bound with Kerberos: %v", err)
	}
	if err := userBind(t, info, u.DN, newPass); err != nil {
		t.Fatalf("bind with the new password: %v", err)
	}
	st := cl.Servers()[0]
	if st.State != ldapx.DCUp {
		t.Fatalf("DC state %+v", st)
	}
	// What a Kerberos bind costs beside a simple one, logged: a bind is
	// once per pooled connection; the TGT is kept, a service ticket asked
	// for at each bind. MaxIdle makes every Ping dial and bind again.
	redial := func(c *ldapx.Config) { c.MaxIdle = time.Nanosecond }
	for _, c := range []struct {
		name string
		cl   *ldapx.Client
	}{{"kerberos", krbClient(t, info, "svc-writeback@"+info.Realm, kt, redial)}, {"simple", newClient(t, info, redial)}} {
		var lat []time.Duration
		for range 3 {
			if err := c.cl.Ping(ctxT(t)); err != nil {
				t.Fatal(err)
			}
			lat = append(lat, c.cl.Servers()[0].BindLatency)
		}
		t.Logf("%s: dial+TLS+bind %v", c.name, lat) // kerberos: the first one logs in
	}
}

func TestKerberosBindWithKrb5Conf(t *testing.T) {
	info := testdc.Ensure(t)
	kt := testdc.ExportKeytab(t, info, "svc-writeback@"+info.Realm)
	conf := testdc.WriteKrb5Conf(t, info)
	cl := krbClient(t, info, "svc-writeback", kt, func(c *ldapx.Config) {
		c.Kerberos.KDCs, c.Kerberos.Krb5Conf = nil, conf
	})
	if err := cl.Ping(ctxT(t)); err != nil {
		t.Fatal(err)
	}
}

// TestKerberosBindKeytabRotated: the account's key changes and the keytab
// is exported again over the old one; the next bind (a new connection)
// uses the new keys without a new client, and says so in the log.
func TestKerberosBindKeytabRotated(t *testing.T) {
	info := testdc.Ensure(t)
	acct := testdc.NewServiceAccount(t, info)
	kt := testdc.ExportKeytab(t, info, acct.Principal)
	var logs bytes.Buffer
	cl := krbClient(t, info, acct.Principal, kt, func(c *ldapx.Config) {
		c.PoolSize = 1
		c.MaxIdle = time.Nanosecond // every operation dials and binds again
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	if err := cl.Ping(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	kvno := testdc.RotateKey(t, info, acct.SAM)

	// The old keytab no longer logs in: classified, with its fix.
	cl2 := krbClient(t, info, acct.Principal, kt)
	err := cl2.Ping(ctxT(t))
	if r, ok := ldapx.KerberosReasonOf(err); !ok || r != ldapx.KerberosKeyMismatch || !ldapx.IsTransient(err) {
		t.Fatalf("bind with the old keytab: %v (reason %v), want a transient key version mismatch", err, r)
	}
	t.Logf("old keytab: %v", err)

	if err := testdc.ExportKeytabTo(ctxT(t), info, acct.Principal, kt); err != nil {
		t.Fatal(err)
	}
	if err := cl.Ping(ctxT(t)); err != nil {
		t.Fatalf("bind after the keytab was exported again: %v", err)
	}
	if !strings.Contains(logs.String(), "keytab reloaded") {
		t.Fatalf("no keytab reloaded line in the log:\n%s", logs.String())
	}
	t.Logf("rotated to kvno %d; log: %s", kvno, logs.String())
}

func TestKerberosBindFailuresAreClassified(t *testing.T) {
	info := testdc.Ensure(t)
	kt := testdc.ExportKeytab(t, info, "svc-writeback@"+info.Realm)
	cases := []struct {
		name   string
		mutate func(*ldapx.Config)
		want   ldapx.KerberosReason
	}{
		{"clock ten minutes ahead", func(c *ldapx.Config) {
			c.Clock = clockwork.NewFakeClockAt(time.Now().Add(10 * time.Minute))
		}, ldapx.KerberosClockSkew},
		{"no such service principal", func(c *ldapx.Config) { c.ServerName = "dc9." + strings.ToLower(info.Realm) }, ldapx.KerberosServiceUnknown},
		{"KDC unreachable", func(c *ldapx.Config) { c.Kerberos.KDCs = []string{"127.0.0.1:1"} }, ldapx.KerberosKDCUnreachable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cl := krbClient(t, info, "svc-writeback@"+info.Realm, kt, tc.mutate, func(c *ldapx.Config) {
				c.InsecureSkipVerify = tc.want == ldapx.KerberosServiceUnknown // the certificate does not name dc9
			})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := cl.Ping(ctx)
			r, ok := ldapx.KerberosReasonOf(err)
			if !ok || r != tc.want || !ldapx.IsTransient(err) {
				t.Fatalf("%v (reason %v), want transient %v", err, r, tc.want)
			}
			var ke *ldapx.KerberosError
			if !errors.As(err, &ke) || ke.Fix == "" {
				t.Fatalf("no fix line: %v", err)
			}
			t.Logf("%v", err)
			// The DC probe binds the same way: the DC's state (what
			// /readyz and /status show) says why, with the fix.
			cl.ProbeDCs(ctx)
			// (The fix line of a skew names the measured offset, which
			// may differ by a second between the two binds.)
			st := cl.Servers()[0]
			if st.State != ldapx.DCDown || !strings.Contains(st.LastError, "kerberos "+ke.Reason.String()) ||
				!strings.Contains(withoutDurations(st.LastError), withoutDurations(ke.Fix)) {
				t.Fatalf("DC state after the probe: %+v, want down with %q", st, ke.Fix)
			}
		})
	}
}

func TestKerberosBindPrincipalNotInKeytab(t *testing.T) {
	info := testdc.Ensure(t)
	kt := testdc.ExportKeytab(t, info, "svc-writeback@"+info.Realm)
	_, err := ldapx.New(ldapx.Config{Servers: []string{info.LDAPSURL}, ServerName: info.Host, BindMethod: ldapx.BindKerberos,
		Kerberos: ldapx.Kerberos{Principal: "someone-else@" + info.Realm, KeytabFile: kt}})
	if err == nil || !strings.Contains(err.Error(), "svc-writeback@"+info.Realm) {
		t.Fatalf("config with a principal the keytab lacks: %v, want the keytab's principals listed", err)
	}
	_ = os.Remove(kt)
}

// withoutDurations replaces each Go duration in s (10m1s, 300ms) with
// "D".
func withoutDurations(s string) string {
	return durationRE.ReplaceAllString(s, "D")
}

var durationRE = regexp.MustCompile(`\b(\d+h)?(\d+m)?(\d+(\.\d+)?(s|ms|µs|ns))\b|\b\d+h\d*m?\b|\b\d+m\b`)
