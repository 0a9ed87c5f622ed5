//go:build integration

package kerberos

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"go.yaml.in/yaml/v3"

	"github.com/adwriteback/adwriteback/connector/app"
	"github.com/adwriteback/adwriteback/integration/stack"
	"github.com/adwriteback/adwriteback/integration/testdc"
	"github.com/adwriteback/adwriteback/relay/protocol"
	"github.com/adwriteback/adwriteback/relay/sender"
)

// bins is the production binary (for doctor), built once for this test
// binary.
var bins *stack.Binaries

func TestMain(m *testing.M) {
	os.Exit(stack.RunWithBinaries(m, &bins, stack.Production))
}

// newEnv is one test's world: the shared DC, an emulator of its own; its
// connectors run in this process, dial for 10 s and probe each DC every
// second (a broken bind shows in /readyz without a command).
func newEnv(t *testing.T, opts ...stack.Option) *stack.Env {
	t.Helper()
	return stack.New(t, append([]stack.Option{stack.ForEveryConnector(
		stack.Configure(func(c *stack.ConfigSpec) {
			c.DialTimeout = 10 * time.Second
			c.Concurrency, c.ShutdownGrace = 4, 10*time.Second
		}),
		stack.Deps(func(d *app.Deps) { d.ProbeInterval = time.Second }),
	)}, opts...)...)
}

// TestKerberosResetChangeUnlockCheck: bound with a keytab of the service
// account and no password anywhere in its configuration, the connector
// resets, changes, unlocks and checks, each verified in AD.
func TestKerberosResetChangeUnlockCheck(t *testing.T) {
	s := newEnv(t, stack.WithKerberos())
	dc := s.DC
	a := s.Start("a")
	assertNoPassword(t, a.ConfigPath(), dc)
	c := s.Sender()

	t.Run("reset", func(t *testing.T) {
		u := testdc.NewUser(t, dc, "")
		pw := "Krb!Reset.Pass1"
		res := c.Do(sender.Request{Op: protocol.OpReset, User: protocol.UserRef{UPN: u.UPN}, NewPassword: s.Secret(pw)})
		if res.Code != protocol.CodeSucceeded {
			t.Fatalf("%+v", res.Result)
		}
		if err := bindErr(dc, u.DN, pw); err != nil {
			t.Fatalf("bind with the new password: %v", err)
		}
	})
	t.Run("change", func(t *testing.T) {
		u := testdc.NewUser(t, dc, "", dc.ChangeGroupDN) // no minimum age
		pw := "Krb!Change.Pass2"
		res := c.Do(sender.Request{Op: protocol.OpChange, User: protocol.UserRef{SAM: u.SAM},
			OldPassword: s.Secret(testdc.UserPass), NewPassword: s.Secret(pw)})
		if res.Code != protocol.CodeSucceeded {
			t.Fatalf("%+v", res.Result)
		}
		if err := bindErr(dc, u.DN, pw); err != nil {
			t.Fatalf("bind with the new password: %v", err)
		}
	})
	t.Run("unlock", func(t *testing.T) {
		u := testdc.NewUser(t, dc, "", dc.ChangeGroupDN) // lockout after 3 bad passwords
		for range 3 {
			_ = bindErr(dc, u.DN, "Wrong!Pass.0")
		}
		if code := testdc.BindData(bindErr(dc, u.DN, testdc.UserPass)); code != "775" {
			t.Fatalf("not locked: data %q", code)
		}
		res := c.Do(sender.Request{Op: protocol.OpUnlock, User: protocol.UserRef{SAM: u.SAM}})
		if res.Code != protocol.CodeSucceeded {
			t.Fatalf("%+v", res.Result)
		}
		if err := bindErr(dc, u.DN, testdc.UserPass); err != nil {
			t.Fatalf("after unlock: %v", err)
		}
	})
	t.Run("check", func(t *testing.T) {
		u := testdc.NewUser(t, dc, "")
		before := testdc.PwdVersion(t, dc, u.DN)
		res := c.Do(sender.Request{Op: protocol.OpCheck, User: protocol.UserRef{SAM: u.SAM}, NewPassword: s.Secret("Krb!Check.Only3")})
		if res.Code != protocol.CodeSucceeded {
			t.Fatalf("%+v", res.Result)
		}
		if after := testdc.PwdVersion(t, dc, u.DN); after != before {
			t.Fatalf("check wrote the password (version %d -> %d)", before, after)
		}
	})
	if logs := a.Logs(); !strings.Contains(logs, `"msg":"kerberos login"`) {
		t.Errorf("no Kerberos login in the connector's log:\n%s", tail(logs))
	}
}

// TestKerberosRotatedKeytab: the service account's key is rotated (a new
// password, a higher key version) and its keytab exported again over the
// same file; the running connector, once it binds again, reloads it
// (the log says so, with the new key version) and its commands keep
// working, with no restart.
func TestKerberosRotatedKeytab(t *testing.T) {
	s := newEnv(t)
	dc := s.DC
	acct := testdc.NewServiceAccount(t, dc)
	s.Secret(acct.Password)
	kt := s.ExportKeytab(acct.Principal, "rotated.keytab")
	// A proxy in front of the DC, so the test can drop the connector's
	// connections and make it bind again.
	proxy := stack.NewProxy(t, dc.Addr+":636")
	a := s.Start("a", stack.KerberosBind(dc, acct.Principal, kt), stack.Configure(func(c *stack.ConfigSpec) {
		c.Servers = []string{"ldaps://" + proxy.Addr()}
	}))
	assertNoPassword(t, a.ConfigPath(), dc)
	c := s.Sender()
	reset := func(pw string) {
		t.Helper()
		u := testdc.NewUser(t, dc, "")
		res := c.Do(sender.Request{Op: protocol.OpReset, User: protocol.UserRef{SAM: u.SAM}, NewPassword: s.Secret(pw)})
		if res.Code != protocol.CodeSucceeded {
			t.Fatalf("reset: %+v", res.Result)
		}
		if err := bindErr(dc, u.DN, pw); err != nil {
			t.Fatalf("bind with the new password: %v", err)
		}
	}
	reset("Krb!Before.Rot1")

	kvno := testdc.RotateKey(t, dc, acct.SAM)
	s.ExportKeytab(acct.Principal, "rotated.keytab")
	proxy.Down()
	proxy.Up()
	reload := fmt.Sprintf(`"key_versions":[%d]`, kvno)
	stack.WaitFor(t, time.Minute, "the connector's log to show the keytab reloaded with key version "+fmt.Sprint(kvno), func() bool {
		for _, l := range strings.Split(a.Logs(), "\n") {
			if strings.Contains(l, `"msg":"keytab reloaded"`) && strings.Contains(l, reload) {
				return true
			}
		}
		return false
	})
	reset("Krb!After.Rot2")
	a.WaitReady(200)
	if !a.Running() {
		t.Fatal("the connector stopped")
	}
}

// failure is one way a Kerberos bind breaks and the cause the connector
// must name for it.
type failure struct {
	name string
	// setup returns the connector's options; s and the test's own service
	// account are at hand.
	setup func(t *testing.T, s *stack.Env, acct testdc.ServiceAccount) []stack.ConnectorOption
	// want is the classified cause, as /readyz, the log and doctor name it.
	want string
	// doctor says whether `adwriteback doctor` (the binary, on the real
	// clock) can see it.
	doctor bool
}

// TestKerberosFailuresAreClassified: each broken Kerberos setting makes
// the DC's /readyz check critical with the classified cause, the log
// carries it, and doctor fails naming it.
func TestKerberosFailuresAreClassified(t *testing.T) {
	for _, f := range []failure{
		{name: "wrong keytab", want: "kerberos key version mismatch", doctor: true,
			setup: func(t *testing.T, s *stack.Env, acct testdc.ServiceAccount) []stack.ConnectorOption {
				// Keys of another password under the principal's name and
				// its current key version.
				kt := writeKeytab(t, s, "wrong.keytab", acct.SAM, s.DC.Realm, testdc.KeyVersion(t, s.DC, acct.DN))
				return []stack.ConnectorOption{stack.KerberosBind(s.DC, acct.Principal, kt)}
			}},
		{name: "old key version after a rotation", want: "kerberos key version mismatch", doctor: true,
			setup: func(t *testing.T, s *stack.Env, acct testdc.ServiceAccount) []stack.ConnectorOption {
				kt := s.ExportKeytab(acct.Principal, "old.keytab")
				testdc.RotateKey(t, s.DC, acct.SAM)
				return []stack.ConnectorOption{stack.KerberosBind(s.DC, acct.Principal, kt)}
			}},
		{name: "unknown principal", want: "kerberos principal unknown", doctor: true,
			setup: func(t *testing.T, s *stack.Env, _ testdc.ServiceAccount) []stack.ConnectorOption {
				name := "nobody" + randHex()
				kt := writeKeytab(t, s, "unknown.keytab", name, s.DC.Realm, 1)
				return []stack.ConnectorOption{stack.KerberosBind(s.DC, name+"@"+s.DC.Realm, kt)}
			}},
		{name: "KDC down", want: "kerberos KDC unreachable", doctor: true,
			setup: func(t *testing.T, s *stack.Env, acct testdc.ServiceAccount) []stack.ConnectorOption {
				kt := s.ExportKeytab(acct.Principal, "kdcdown.keytab")
				closed := stack.FreeAddr(t) // nothing listens there
				return []stack.ConnectorOption{stack.KerberosBind(s.DC, acct.Principal, kt),
					stack.Configure(func(c *stack.ConfigSpec) { c.Kerberos.KDCs = []string{closed} })}
			}},
		// The connector's clock 10 minutes ahead (its one clock, which
		// stamps the pre-authentication): the real KDC answers
		// KRB_AP_ERR_SKEW. Doctor runs on this machine's clock, which
		// agrees with the DC's: it cannot see this one.
		{name: "clock 10 minutes ahead", want: "kerberos clock skew",
			setup: func(t *testing.T, s *stack.Env, acct testdc.ServiceAccount) []stack.ConnectorOption {
				kt := s.ExportKeytab(acct.Principal, "skew.keytab")
				return []stack.ConnectorOption{stack.KerberosBind(s.DC, acct.Principal, kt), stack.ClockAhead(10 * time.Minute)}
			}},
	} {
		t.Run(f.name, func(t *testing.T) {
			s := newEnv(t)
			acct := testdc.NewServiceAccount(t, s.DC)
			s.Secret(acct.Password)
			a := s.Start("a", f.setup(t, s, acct)...)
			assertNoPassword(t, a.ConfigPath(), s.DC)
			assertClassified(t, a, s.DC.LDAPSURL, f.want)
			if !f.doctor {
				return
			}
			out, code := doctor(t, s, a)
			if code != 1 || !failLine(out, f.want) {
				t.Fatalf("doctor exit %d, want 1 with a FAIL naming %q:\n%s", code, f.want, out)
			}
		})
	}
}

// assertClassified waits for /readyz to be 503 with the DC's check
// critical and naming want, and the connector's log to name it too.
func assertClassified(t *testing.T, a *stack.Connector, dcURL, want string) {
	t.Helper()
	var detail string
	stack.WaitFor(t, time.Minute, fmt.Sprintf("/readyz 503 with dc:%s critical naming %q", dcURL, want), func() bool {
		code, r, _ := a.Readyz()
		c := r.Check("dc:" + dcURL)
		if code != 503 || c == nil || c.OK || c.Severity != "critical" {
			return false
		}
		detail = c.Detail
		return strings.Contains(detail, want)
	})
	t.Logf("/readyz: dc:%s: %s", dcURL, detail)
	if logs := a.Logs(); !strings.Contains(logs, want) {
		t.Fatalf("the connector's log does not name %q:\n%s", want, tail(logs))
	}
}

// doctor runs `adwriteback doctor` (the built binary) on the connector's
// configuration and returns its output (which joins the leak scan) and
// exit code.
func doctor(t *testing.T, s *stack.Env, a *stack.Connector) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bins.Path(stack.Production), "doctor", "--config", a.WriteConfig()).CombinedOutput()
	s.Results.Write(out)
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("doctor: %v\n%s", err, out)
		}
		return string(out), ee.ExitCode()
	}
	return string(out), 0
}

// failLine says whether a line of doctor's output is a FAIL naming want.
func failLine(out, want string) bool {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "FAIL") && strings.Contains(l, want) {
			return true
		}
	}
	return false
}

// assertNoPassword: the configuration binds with Kerberos and names no
// password: no bind dn, password_file or password_env, and nowhere the
// service account's password.
func assertNoPassword(t *testing.T, path string, dc *testdc.Info) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Domains []struct {
			Bind map[string]any `yaml:"bind"`
		} `yaml:"domains"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil || len(doc.Domains) != 1 {
		t.Fatalf("config %s: %v", path, err)
	}
	bind := doc.Domains[0].Bind
	if bind["method"] != "kerberos" {
		t.Fatalf("bind.method = %v, want kerberos", bind["method"])
	}
	for _, k := range []string{"dn", "password", "password_file", "password_env"} {
		if _, ok := bind[k]; ok {
			t.Fatalf("bind.%s in a Kerberos configuration:\n%s", k, b)
		}
	}
	if strings.Contains(string(b), dc.ServicePass) {
		t.Fatalf("the service account's password is in the configuration")
	}
}

// writeKeytab writes a keytab for name@realm at kvno with the keys of a
// random password (AES, as the DC issues): keys the DC does not have.
func writeKeytab(t *testing.T, s *stack.Env, file, name, realm string, kvno int) string {
	t.Helper()
	kt := keytab.New()
	pw := "Not!The.Key" + randHex()
	for _, et := range []int32{etypeID.AES256_CTS_HMAC_SHA1_96, etypeID.AES128_CTS_HMAC_SHA1_96} {
		if err := kt.AddEntry(name, realm, pw, time.Now(), uint8(kvno), et); err != nil {
			t.Fatal(err)
		}
	}
	b, err := kt.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return s.WriteFile(file, b, 0o600)
}

func bindErr(dc *testdc.Info, dn, pw string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := testdc.Bind(ctx, dc, dn, pw)
	if err == nil {
		c.Close()
	}
	return err
}

func randHex() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func tail(s string) string {
	const max = 6000
	if len(s) > max {
		return s[len(s)-max:]
	}
	return s
}
