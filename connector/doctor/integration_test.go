//go:build integration

package doctor_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/adwriteback/adwriteback/connector/doctor"
	"github.com/adwriteback/adwriteback/integration/sbemu"
	"github.com/adwriteback/adwriteback/integration/stack"
	"github.com/adwriteback/adwriteback/integration/testdc"
)

// setup is one test's world: the shared Samba DC, its own emulator and
// queue, key files and the secrets that must never appear in a report.
type setup struct {
	t     *testing.T
	dc    *testdc.Info
	emu   *sbemu.Emulator
	dir   string
	queue string
	// Overridable parts of the config.
	caFile, bindPass, connString, ou, queueName string
}

func newSetup(t *testing.T) *setup {
	t.Helper()
	s := &setup{t: t, dc: testdc.Ensure(t), emu: sbemu.Start(t, nil), dir: t.TempDir(), queue: "commands"}
	if err := stack.Queues(context.Background(), s.emu, stack.Queue{Name: s.queue}); err != nil {
		t.Fatal(err)
	}
	if _, err := stack.WriteKeys(s.dir); err != nil {
		t.Fatal(err)
	}
	s.caFile, s.bindPass, s.connString, s.ou, s.queueName = s.dc.CAFile, s.dc.ServicePass, s.emu.ConnectionString(), s.dc.InScopeOU, s.queue
	return s
}

func (s *setup) write(name string, b []byte, mode os.FileMode) string {
	p := filepath.Join(s.dir, name)
	if err := os.WriteFile(p, b, mode); err != nil {
		s.t.Fatal(err)
	}
	return p
}

// run writes the config and runs the doctor, returning the report and its
// text and JSON renderings (checked for secrets).
func (s *setup) run() (*doctor.Report, string) {
	s.t.Helper()
	if err := stack.WriteSecrets(s.dir, s.bindPass, s.connString); err != nil {
		s.t.Fatal(err)
	}
	cfg := stack.DCConfig(s.dc, s.dir)
	cfg.CAFile, cfg.OUs, cfg.Queue = s.caFile, []string{s.ou}, s.queueName
	cfg.ReplyQueue = s.queueName // a queue the emulator has: the Send check attaches to it
	cfg.DialTimeout = 2 * time.Second
	path := filepath.Join(s.dir, "config.yaml")
	if err := cfg.WriteFile(path); err != nil {
		s.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep := doctor.Run(ctx, doctor.Options{ConfigPath: path, Timeout: 5 * time.Second})
	text := checkReport(s.t, rep, s.bindPass, s.dc.ServicePass, s.connString, sasKey(s.connString), s.emu.ConnectionString(), sasKey(s.emu.ConnectionString()))
	return rep, text
}

// checkReport renders rep as text (logged, and returned) and as JSON, and
// fails the test when either holds one of secrets.
func checkReport(t *testing.T, rep *doctor.Report, secrets ...string) string {
	t.Helper()
	var text, js bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + text.String())
	for _, secret := range secrets {
		for _, out := range []string{text.String(), js.String()} {
			if strings.Contains(out, secret) {
				t.Errorf("the report contains a secret (%d chars)", len(secret))
			}
		}
	}
	return text.String()
}

func sasKey(cs string) string {
	_, k, _ := strings.Cut(cs, "SharedAccessKey=")
	k, _, _ = strings.Cut(k, ";")
	return k
}

// one returns the single check named name (on target, when not "").
func one(t *testing.T, rep *doctor.Report, name, target string) doctor.Check {
	t.Helper()
	cs := rep.Find(name, target)
	if len(cs) != 1 {
		t.Fatalf("want one %q check on %q, got %d", name, target, len(cs))
	}
	return cs[0]
}

func TestDoctorCorrectSetupPasses(t *testing.T) {
	s := newSetup(t)
	rep, text := s.run()
	if rep.Failed() {
		t.Fatalf("a correct setup has failures:\n%s", text)
	}
	for _, name := range []string{"tcp reachable", "tls trust", "certificate expiry", "bind", "naming context"} {
		if c := one(t, rep, name, s.dc.LDAPSURL); c.Status != doctor.OK {
			t.Errorf("%s: %s %s", name, c.Status, c.Detail)
		}
	}
	// Samba does not implement the policy-hints control: a warning with
	// its consequence.
	if c := one(t, rep, "policy hints", s.dc.LDAPSURL); c.Status != doctor.Warn || !strings.Contains(c.Detail, "history") {
		t.Errorf("policy hints: %s %s", c.Status, c.Detail)
	}
	for _, r := range doctor.Required {
		c := one(t, rep, "right "+r.ID, s.dc.InScopeOU)
		if c.Status != doctor.OK || !strings.Contains(c.Detail, "granted") {
			t.Errorf("%s: %s %s", r.ID, c.Status, c.Detail)
		}
	}
	for _, name := range []string{"least privilege", "effective attributes"} {
		if c := one(t, rep, name, s.dc.InScopeOU); c.Status != doctor.OK {
			t.Errorf("%s: %s %s", name, c.Status, c.Detail)
		}
	}
	for _, name := range []string{"domain policy", "fine-grained policies"} {
		if c := one(t, rep, name, "adw.test"); c.Status != doctor.OK {
			t.Errorf("%s: %s %s", name, c.Status, c.Detail)
		}
	}
	if c := one(t, rep, "connector key", filepath.Join(s.dir, "connector.key.json")); c.Status != doctor.OK || !strings.Contains(c.Detail, "kid c-") {
		t.Errorf("connector key: %s %s", c.Status, c.Detail)
	}
	for _, c := range rep.Checks {
		if c.Name == "queue" && c.Status != doctor.OK {
			t.Errorf("queue: %s %s", c.Status, c.Detail)
		}
	}
}

// TestDoctorMissingRights points the scope at a fresh OU where the service
// account holds only Reset Password.
func TestDoctorMissingRights(t *testing.T) {
	s := newSetup(t)
	ou := freshOU(t, s.dc)
	sid := serviceSID(t, s.dc)
	testdc.DSACL(t, s.dc, ou, fmt.Sprintf("(OA;CIIO;CR;%s;%s;%s)", doctor.GUIDResetPassword, doctor.GUIDUserClass, sid))
	testdc.NewUser(t, s.dc, ou)
	s.ou = ou
	rep, text := s.run()
	if !rep.Failed() {
		t.Fatalf("missing rights not caught:\n%s", text)
	}
	if c := one(t, rep, "right reset_password", ou); c.Status != doctor.OK {
		t.Errorf("reset_password: %s %s", c.Status, c.Detail)
	}
	for _, id := range []string{"change_password", "write_pwdlastset", "write_lockouttime"} {
		c := one(t, rep, "right "+id, ou)
		if c.Status == doctor.OK {
			t.Errorf("%s reported granted: %s", id, c.Detail)
			continue
		}
		if !strings.Contains(c.Fix, "samba-tool dsacl set") || !strings.Contains(c.Fix, sid) || !strings.Contains(c.Fix, "dsacls") {
			t.Errorf("%s: fix lacks the samba-tool/dsacls lines: %q", id, c.Fix)
		}
	}
	for _, id := range []string{"write_pwdlastset", "write_lockouttime"} {
		if c := one(t, rep, "right "+id, ou); c.Status != doctor.Fail {
			t.Errorf("%s: %s, want FAIL", id, c.Status)
		}
	}
	if c := one(t, rep, "effective attributes", ou); c.Status != doctor.Warn {
		t.Errorf("effective attributes: %s %s", c.Status, c.Detail)
	}
}

func TestDoctorWrongCA(t *testing.T) {
	s := newSetup(t)
	s.caFile = s.write("other-ca.pem", unrelatedCA(t), 0o644)
	rep, text := s.run()
	c := one(t, rep, "tls trust", s.dc.LDAPSURL)
	if c.Status != doctor.Fail || !strings.Contains(c.Detail, "untrusted CA") || !strings.Contains(c.Fix, "ca_file") {
		t.Fatalf("tls trust: %s %s\n%s", c.Status, c.Detail, text)
	}
	if c := one(t, rep, "bind", s.dc.LDAPSURL); c.Status != doctor.Skip {
		t.Errorf("bind after an untrusted certificate: %s (the password must not be sent)", c.Status)
	}
}

func TestDoctorWrongBindPassword(t *testing.T) {
	s := newSetup(t)
	s.bindPass = "Not-The.Password-" + randHex(t)
	rep, text := s.run()
	c := one(t, rep, "bind", s.dc.LDAPSURL)
	if c.Status != doctor.Fail || !strings.Contains(c.Detail, "wrong password") || !strings.Contains(c.Fix, "password_file") {
		t.Fatalf("bind: %s %s / %s\n%s", c.Status, c.Detail, c.Fix, text)
	}
	if len(rep.Find("right reset_password", "")) != 0 {
		t.Error("rights were checked without a bind")
	}
}

func TestDoctorWrongSASKey(t *testing.T) {
	s := newSetup(t)
	s.connString = s.emu.ConnectionStringWithKey("d3Jvbmcta2V5LWZvci10aGUtdGVzdA==")
	rep, text := s.run()
	var q *doctor.Check
	for i := range rep.Checks {
		if rep.Checks[i].Name == "queue" {
			q = &rep.Checks[i]
		}
	}
	if q == nil || q.Status != doctor.Fail || !strings.Contains(q.Detail, "unauthorized") || !strings.Contains(q.Fix, "connection_string_file") {
		t.Fatalf("queue check: %+v\n%s", q, text)
	}
}

func TestDoctorQueueMissing(t *testing.T) {
	s := newSetup(t)
	s.queueName = "no-such-queue"
	rep, text := s.run()
	for _, c := range rep.Checks {
		if c.Name == "queue" {
			if c.Status != doctor.Fail || !strings.Contains(c.Detail, "does not exist") {
				t.Fatalf("queue check: %+v\n%s", c, text)
			}
			return
		}
	}
	t.Fatal("no queue check")
}

func randHex(t *testing.T) string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

// freshOU creates an OU for one test (deleted with its content at the end).
func freshOU(t *testing.T, info *testdc.Info) string {
	t.Helper()
	ou := "OU=doctor-" + randHex(t) + "," + info.BaseDN
	ctx := context.Background()
	c, err := testdc.Admin(ctx, info)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a := ldap.NewAddRequest(ou, nil)
	a.Attribute("objectClass", []string{"organizationalUnit"})
	if err := c.Add(a); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := testdc.Admin(context.Background(), info)
		if err != nil {
			t.Logf("cleanup: %v", err)
			return
		}
		defer c.Close()
		// Users made by testdc.NewUser are removed by their own cleanup,
		// which runs before this one.
		if err := c.Del(ldap.NewDelRequest(ou, nil)); err != nil {
			t.Logf("cleanup: delete %s: %v", ou, err)
		}
	})
	return ou
}

func serviceSID(t *testing.T, info *testdc.Info) string {
	t.Helper()
	c, err := testdc.Admin(context.Background(), info)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res, err := c.Search(ldap.NewSearchRequest(info.ServiceDN, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 0, false,
		"(objectClass=*)", []string{"objectSid"}, nil))
	if err != nil || len(res.Entries) != 1 {
		t.Fatalf("read objectSid: %v", err)
	}
	sid, err := testdc.SIDString(res.Entries[0].GetRawAttributeValue("objectSid"))
	if err != nil {
		t.Fatal(err)
	}
	return sid
}

// unrelatedCA is the PEM certificate of a freshly made CA that signed
// nothing the DC presents.
func unrelatedCA(t *testing.T) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "unrelated test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
