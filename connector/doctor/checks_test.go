package doctor

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/adwriteback/adwriteback/connector/health"

	"github.com/go-ldap/ldap/v3"

	"github.com/adwriteback/adwriteback/connector/config"
	"github.com/adwriteback/adwriteback/ldapx"
	"github.com/adwriteback/adwriteback/relay/keys"
	"github.com/adwriteback/adwriteback/relay/proxy"
	"github.com/adwriteback/adwriteback/relay/servicebus"
)

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string
}

func newCA(t *testing.T, name string) *testCA {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(24 * time.Hour * 3650), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	f := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	return &testCA{c, k, f}
}

func (ca *testCA) leaf(t *testing.T, dns string, notBefore, notAfter time.Time) *x509.Certificate {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: dns}, DNSNames: []string{dns},
		NotBefore: notBefore, NotAfter: notAfter, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tpl, ca.cert, &k.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

func TestCheckTrust(t *testing.T) {
	now := time.Now()
	ca := newCA(t, "corp CA")
	other := newCA(t, "other CA")
	s, _ := parseServer("ldaps://dc1.corp.test")
	good := ca.leaf(t, "dc1.corp.test", now.Add(-time.Hour), now.Add(90*24*time.Hour))
	cases := []struct {
		name   string
		chain  []*x509.Certificate
		set    TLSSettings
		status Status
		detail string
		fix    string
	}{
		{"trusted", []*x509.Certificate{good}, TLSSettings{CAFile: ca.file}, OK, "trusted for dc1.corp.test", ""},
		{"untrusted CA", []*x509.Certificate{good}, TLSSettings{CAFile: other.file}, Fail, "untrusted CA", "ca_file"},
		{"name mismatch", []*x509.Certificate{ca.leaf(t, "dc2.corp.test", now.Add(-time.Hour), now.Add(time.Hour))}, TLSSettings{CAFile: ca.file}, Fail, "name mismatch", "server_name"},
		{"server_name override", []*x509.Certificate{ca.leaf(t, "dc2.corp.test", now.Add(-time.Hour), now.Add(time.Hour))}, TLSSettings{CAFile: ca.file, ServerName: "dc2.corp.test"}, OK, "trusted", ""},
		{"expired", []*x509.Certificate{ca.leaf(t, "dc1.corp.test", now.Add(-48*time.Hour), now.Add(-24*time.Hour))}, TLSSettings{CAFile: ca.file}, Fail, "certificate expired", "renew"},
		{"not yet valid", []*x509.Certificate{ca.leaf(t, "dc1.corp.test", now.Add(24*time.Hour), now.Add(48*time.Hour))}, TLSSettings{CAFile: ca.file}, Fail, "not yet valid", "clock"},
		{"insecure", []*x509.Certificate{good}, TLSSettings{Insecure: true}, Warn, "verification is OFF", "insecure_skip_verify: false"},
		{"unreadable CA file", []*x509.Certificate{good}, TLSSettings{CAFile: "/nonexistent/ca.pem"}, Fail, "cannot load the CA file", "ca_file"},
		{"no certificate", nil, TLSSettings{CAFile: ca.file}, Fail, "no certificate", ""},
	}
	for _, c := range cases {
		got := CheckTrust(c.chain, s, c.set, now)
		if got.Status != c.status || !strings.Contains(got.Detail, c.detail) || !strings.Contains(got.Fix, c.fix) {
			t.Errorf("%s: %s %q fix %q", c.name, got.Status, got.Detail, got.Fix)
		}
	}
}

func TestCheckExpiry(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ca := newCA(t, "ca")
	s, _ := parseServer("ldaps://dc")
	for _, c := range []struct {
		left   time.Duration
		status Status
	}{{400 * 24 * time.Hour, OK}, {10 * 24 * time.Hour, Warn}, {-time.Hour, Fail},
		{health.DefaultCertWarning - time.Minute, Warn}, {health.DefaultCertWarning + time.Minute, OK}} {
		got := CheckExpiry([]*x509.Certificate{ca.leaf(t, "dc", now.Add(-1000*time.Hour), now.Add(c.left))}, s, now)
		if got.Status != c.status {
			t.Errorf("%s left: %s %s", c.left, got.Status, got.Detail)
		}
	}
}

func TestParseServer(t *testing.T) {
	for in, want := range map[string]server{
		"ldaps://dc1.corp.test":      {URL: "ldaps://dc1.corp.test", Host: "dc1.corp.test", Addr: "dc1.corp.test:636"},
		"ldap://10.0.0.1":            {URL: "ldap://10.0.0.1", Host: "10.0.0.1", Addr: "10.0.0.1:389", StartTLS: true},
		"LDAPS://dc1.corp.test:3269": {URL: "LDAPS://dc1.corp.test:3269", Host: "dc1.corp.test", Addr: "dc1.corp.test:3269"},
	} {
		if got, err := parseServer(in); err != nil || got != want {
			t.Errorf("%s: %+v %v", in, got, err)
		}
	}
	for _, bad := range []string{"http://dc", "ldaps://", "::"} {
		if _, err := parseServer(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestCheckTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	s := server{URL: "ldaps://" + addr, Host: "127.0.0.1", Addr: addr}
	if c := CheckTCP(context.Background(), &net.Dialer{}, s); c.Status != OK {
		t.Errorf("listening: %+v", c)
	}
	ln.Close()
	if c := CheckTCP(context.Background(), &net.Dialer{}, s); c.Status != Fail || !strings.Contains(c.Fix, "firewall") {
		t.Errorf("closed: %+v", c)
	}
}

func bindErr(code uint32) error {
	return &ldapx.Error{Op: "ldapx.Ping", Kind: ldapx.KindInvalidCredentials, ResultCode: ldap.LDAPResultInvalidCredentials, WinCode: code}
}

func TestCheckBind(t *testing.T) {
	acct := Account{DN: "CN=svc,DC=x", PasswordSource: "the file /etc/adw/bind.pass (domains[0].bind.password_file)"}
	cases := []struct {
		err    error
		status Status
		detail string
		fix    string
	}{
		{nil, OK, "bound as CN=svc,DC=x", ""},
		{bindErr(0x52e), Fail, "wrong password", "/etc/adw/bind.pass"},
		{bindErr(0x775), Fail, "locked out", "unlock"},
		{bindErr(0x532), Fail, "password has expired", "bind.pass"},
		{bindErr(0x533), Fail, "disabled", "enable"},
		{bindErr(0x773), Fail, "must change", "setpassword"},
		{bindErr(0x701), Fail, "account has expired", "expir"},
		{bindErr(0x525), Fail, "no such account", "bind.dn"},
		{bindErr(0), Fail, "invalid credentials", "bind.dn"},
		{&ldapx.Error{Kind: ldapx.KindTLS, Err: errors.New("x509")}, Fail, "TLS failed", "tls trust"},
		{&ldapx.Error{Kind: ldapx.KindTransient, Err: errors.New("timeout")}, Fail, "did not answer", "dial_timeout"},
	}
	for _, c := range cases {
		got := CheckBind(c.err, "ldaps://dc", acct)
		if got.Status != c.status || !strings.Contains(got.Detail, c.detail) || !strings.Contains(got.Fix, c.fix) {
			t.Errorf("%v: %s %q fix %q", c.err, got.Status, got.Detail, got.Fix)
		}
	}
}

func TestCheckRootDSE(t *testing.T) {
	cs := CheckRootDSE(&ldapx.RootDSE{DefaultNamingContext: "DC=x", SupportedControls: []string{ldapx.OIDPolicyHints}}, "dc")
	if cs[0].Status != OK || cs[1].Status != OK {
		t.Errorf("with hints: %+v", cs)
	}
	cs = CheckRootDSE(&ldapx.RootDSE{DefaultNamingContext: "DC=x"}, "dc")
	if cs[1].Status != Warn || !strings.Contains(cs[1].Detail, "history") || !strings.Contains(cs[1].Detail, "minimum password age") {
		t.Errorf("without hints: %+v", cs[1])
	}
	if cs := CheckRootDSE(&ldapx.RootDSE{}, "dc"); cs[0].Status != Fail {
		t.Errorf("no naming context: %+v", cs[0])
	}
}

func TestCheckScopeInDomain(t *testing.T) {
	cs := CheckScopeInDomain([]string{"OU=A,DC=adw,DC=test", "ou=b,dc=ADW,dc=test", "OU=C,DC=other,DC=test"}, "DC=adw,DC=test", "adw.test")
	if len(cs) != 1 || cs[0].Target != "OU=C,DC=other,DC=test" || cs[0].Status != Fail {
		t.Fatalf("%+v", cs)
	}
}

func TestCheckPSOs(t *testing.T) {
	if c := CheckPSOs([]psoEntry{{DN: "CN=a", Readable: true}}, nil, "d", "DC=x", svcSID, "svc"); c.Status != OK {
		t.Errorf("readable: %+v", c)
	}
	c := CheckPSOs([]psoEntry{{DN: "CN=a", Readable: true}, {DN: "CN=hidden"}}, nil, "d", "DC=x", svcSID, "svc")
	if c.Status != Warn || !strings.Contains(c.Detail, "CN=hidden") || !strings.Contains(c.Fix, "(A;CI;RPLCLORC;;;"+svcSID+")") {
		t.Errorf("hidden: %+v", c)
	}
	if c := CheckPSOs(nil, errors.New("denied"), "d", "DC=x", svcSID, "svc"); c.Status != Warn {
		t.Errorf("unlistable: %+v", c)
	}
}

func TestQueueResult(t *testing.T) {
	q := config.Queue{Name: "commands", Auth: "connection_string"}
	cases := []struct {
		err    error
		status Status
		detail string
		fix    string
	}{
		{nil, OK, "reachable", ""},
		{fmt.Errorf("x: %w", servicebus.ErrUnauthorized), Fail, "unauthorized", "connection_string_file"},
		{fmt.Errorf("x: %w", servicebus.ErrNotFound), Fail, "does not exist", "queue.name"},
		{context.DeadlineExceeded, Fail, "unreachable", "5671"},
		{fmt.Errorf("x: %w", servicebus.ErrConfig), Fail, "invalid", "queue section"},
	}
	for _, c := range cases {
		got := QueueResult(c.err, q, "sb://ns")
		if got.Status != c.status || !strings.Contains(got.Detail, c.detail) || !strings.Contains(got.Fix, c.fix) {
			t.Errorf("%v: %+v", c.err, got)
		}
	}
	q.Auth = "client_secret"
	if got := QueueResult(servicebus.ErrUnauthorized, q, "sb://ns"); !strings.Contains(got.Fix, "Azure Service Bus Data Receiver") {
		t.Errorf("entra unauthorized fix: %q", got.Fix)
	}
	q.Transport = "websockets"
	if got := QueueResult(context.DeadlineExceeded, q, "sb://ns"); !strings.Contains(got.Fix, "443") || strings.Contains(got.Fix, "5671") {
		t.Errorf("websockets timeout fix: %q", got.Fix)
	}
	if got := QueueResult(fmt.Errorf("x: %w", proxy.ErrProxyAuth), q, "sb://ns"); got.Status != Fail || !strings.Contains(got.Detail, "proxy") {
		t.Errorf("proxy refusal: %+v", got)
	}
}

func TestQueueEndpointHidesKey(t *testing.T) {
	q := config.Queue{ConnectionString: "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=listen;SharedAccessKey=c2VjcmV0LWtleQ=="}
	if got := queueEndpoint(q); got != "ns.servicebus.windows.net" {
		t.Fatalf("endpoint %q", got)
	}
}

func TestReportRedactAndRender(t *testing.T) {
	r := &Report{Config: "/etc/adw.yaml"}
	r.Add(ok("a", "", "fine"), warn("b", "t1", "careful", "do x"), fail("c", "t1", "broken: s3cret-pass\nsecond line", "fix with s3cret-pass"), skip("d", "t2", "n/a"))
	r.Redact("s3cret-pass", "", "ab")
	var text, js bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{text.String(), js.String()} {
		if strings.Contains(out, "s3cret-pass") || !strings.Contains(out, "[redacted]") {
			t.Errorf("not redacted:\n%s", out)
		}
	}
	for _, w := range []string{"[OK]   a: fine", "[WARN] b: careful", "fix: do x", "second line", "1 OK, 1 WARN, 1 FAIL, 1 SKIP"} {
		if !strings.Contains(text.String(), w) {
			t.Errorf("text lacks %q:\n%s", w, text.String())
		}
	}
	var parsed struct {
		Checks  []Check
		Summary map[string]int
	}
	if err := json.Unmarshal(js.Bytes(), &parsed); err != nil || len(parsed.Checks) != 4 || parsed.Summary["fail"] != 1 {
		t.Fatalf("json: %v %+v", err, parsed)
	}
	if !r.Failed() {
		t.Error("Failed")
	}
}

func TestKeysAndPaths(t *testing.T) {
	dir := t.TempDir()
	ck, err := keys.GenerateConnector(keys.DefaultKEM, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := ck.Marshal()
	good := filepath.Join(dir, "c.key.json")
	os.WriteFile(good, b, 0o600)
	loose := filepath.Join(dir, "loose.key.json")
	os.WriteFile(loose, b, 0o640)
	os.Chmod(loose, 0o640)
	bad := filepath.Join(dir, "bad.key.json")
	os.WriteFile(bad, []byte("{}"), 0o600)

	cs := CheckConnectorKeys([]string{good, loose, bad, filepath.Join(dir, "missing")})
	if cs[0].Status != OK || !strings.Contains(cs[0].Detail, ck.KID) {
		t.Errorf("good key: %+v", cs[0])
	}
	if cs[1].Status != Fail || !strings.Contains(cs[1].Fix, "chmod 600") {
		t.Errorf("loose key: %+v", cs[1])
	}
	if cs[2].Status != Fail || cs[3].Status != Fail || !strings.Contains(cs[3].Detail, "does not exist") {
		t.Errorf("bad/missing: %+v %+v", cs[2], cs[3])
	}
	if cs := CheckConnectorKeys(nil); cs[0].Status != Fail {
		t.Error("no connector key accepted")
	}
	if cs := CheckConnectorKeys([]string{good, good}); cs[len(cs)-1].Status != Fail {
		t.Errorf("duplicate connector key: %+v", cs)
	}

	sk, _ := keys.GenerateSender(time.Now())
	sp := filepath.Join(dir, "s.pub.json")
	os.WriteFile(sp, sk.Public().Marshal(), 0o644)
	if cs := CheckSenderKeys([]string{sp}); cs[0].Status != OK || !strings.Contains(cs[0].Detail, sk.KID) {
		t.Errorf("sender: %+v", cs)
	}
	if cs := CheckSenderKeys([]string{good}); cs[0].Status != Fail {
		t.Errorf("connector key as sender key: %+v", cs)
	}

	if c := CheckJournalPath(filepath.Join(dir, "j.db")); c.Status != OK {
		t.Errorf("journal: %+v", c)
	}
	if c := CheckJournalPath(filepath.Join(dir, "nodir", "j.db")); c.Status != Fail || !strings.Contains(c.Fix, "mkdir -p") {
		t.Errorf("journal without dir: %+v", c)
	}
	if c := CheckAuditPath("-"); c.Status != OK {
		t.Errorf("audit stdout: %+v", c)
	}
	if os.Geteuid() != 0 { // root writes anywhere
		ro := filepath.Join(dir, "ro")
		os.Mkdir(ro, 0o500)
		if c := CheckAuditPath(filepath.Join(ro, "a.jsonl")); c.Status != Fail {
			t.Errorf("read-only dir: %+v", c)
		}
	}
	left, _ := os.ReadDir(dir)
	for _, e := range left {
		if strings.HasPrefix(e.Name(), ".adwriteback-doctor") {
			t.Errorf("probe file left behind: %s", e.Name())
		}
	}
}

func TestRunBadConfig(t *testing.T) {
	rep := Run(context.Background(), Options{ConfigPath: filepath.Join(t.TempDir(), "missing.yaml")})
	if len(rep.Checks) != 1 || rep.Checks[0].Status != Fail || !rep.Failed() {
		t.Fatalf("%+v", rep)
	}
}
