package ldapx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/krberror"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
	"github.com/jonboulle/clockwork"
)

// writeKeytab writes a keytab with an AES key of svc@ADW.TEST at each
// version and returns its path.
func writeKeytab(t *testing.T, path string, kvnos ...uint8) {
	t.Helper()
	kt := keytab.New()
	for _, v := range kvnos {
		if err := kt.AddEntry("svc", "ADW.TEST", fmt.Sprintf("password-%d", v), time.Now(), v, etypeID.AES256_CTS_HMAC_SHA1_96); err != nil {
			t.Fatal(err)
		}
	}
	b, err := kt.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	tmp := path + ".new"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestClassifyKerberos(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	f := krbFacts{principal: "svc@ADW.TEST", spn: "ldap/dc1.adw.test", keyKVNO: 3, now: now}
	cases := []struct {
		stage   string
		code    int32
		want    KerberosReason
		fixPart string
	}{
		{"AS", errorcode.KRB_AP_ERR_SKEW, KerberosClockSkew, "10m0s ahead of the server's"},
		{"AS", errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN, KerberosPrincipalUnknown, "the KDC does not know svc@ADW.TEST"},
		{"TGS", errorcode.KDC_ERR_S_PRINCIPAL_UNKNOWN, KerberosServiceUnknown, "no account has the SPN ldap/dc1.adw.test"},
		{"AS", errorcode.KDC_ERR_S_PRINCIPAL_UNKNOWN, KerberosServiceUnknown, "check bind.realm"},
		{"AS", errorcode.KDC_ERR_PREAUTH_FAILED, KerberosKeyMismatch, "key (version 3)"},
		{"AP", errorcode.KRB_AP_ERR_BADKEYVER, KerberosKeyMismatch, "replication"},
		{"AP", errorcode.KRB_AP_ERR_MODIFIED, KerberosKeyMismatch, "duplicate SPN"},
		{"AS", errorcode.KDC_ERR_ETYPE_NOSUPP, KerberosEncryptionType, "encryption type"},
		{"AS", errorcode.KDC_ERR_CLIENT_REVOKED, KerberosAccountRevoked, "disabled"},
		{"AS", errorcode.KDC_ERR_KEY_EXPIRED, KerberosPasswordExpired, "the password of svc@ADW.TEST expired"},
		{"AS", errorcode.KDC_ERR_WRONG_REALM, KerberosWrongRealm, "check bind.realm"},
		{"AS", errorcode.KDC_ERR_POLICY, KerberosOther, "code"},
	}
	for _, tc := range cases {
		ke := messages.KRBError{ErrorCode: tc.code, STime: now.Add(-10 * time.Minute)}
		// As gokrb5 and go-ldap hand it: the value, possibly wrapped.
		err := classifyKerberos(tc.stage, fmt.Errorf("bind: %w", ke), f)
		var kerr *KerberosError
		if !errors.As(err, &kerr) || kerr.Reason != tc.want || kerr.Code != tc.code || kerr.Stage != tc.stage || !kerr.KDCTime.Equal(ke.STime) {
			t.Errorf("code %d at %s: %#v, want %v", tc.code, tc.stage, err, tc.want)
			continue
		}
		if !strings.Contains(kerr.Fix, tc.fixPart) || !strings.Contains(err.Error(), kerr.Fix) {
			t.Errorf("code %d: fix %q lacks %q", tc.code, kerr.Fix, tc.fixPart)
		}
		if d := decode("ldapx.dial", "ldaps://dc1", err); !IsTransient(d) || !strings.Contains(d.Error(), kerr.Fix) {
			t.Errorf("code %d decoded as %v: a bind failure is transient, its text the fix", tc.code, d)
		}
	}
	// gokrb5's own error type flattens a KRB_ERROR into text: it is not
	// read, and stays unclassified.
	flat := krberror.Errorf(messages.KRBError{ErrorCode: errorcode.KRB_AP_ERR_SKEW}, krberror.KDCError, "flattened")
	if r, _ := KerberosReasonOf(classifyKerberos("AS", flat, f)); r != KerberosOther {
		t.Errorf("a flattened error classified as %v: never from text", r)
	}
	if r, ok := KerberosReasonOf(errors.New("x")); ok || r != KerberosOther {
		t.Error("reason of a non-Kerberos error")
	}
}

func newTestBinder(t *testing.T, path string, clock clockwork.Clock, log *slog.Logger) *kerberosBinder {
	t.Helper()
	cfg := Config{Servers: []string{"ldaps://dc1.adw.test"}, BindMethod: BindKerberos,
		Kerberos: Kerberos{Principal: "svc@ADW.TEST", KeytabFile: path, KDCs: []string{"127.0.0.1:1"}},
		Clock:    clock, Logger: log}
	cfg.setDefaults()
	b, err := newKerberosBinder(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestKeytabReload: a keytab replaced with other keys is loaded at the
// next bind, logged with its key versions (never the keys), and the TGT
// is dropped; a file touched but unchanged is not reloaded.
func TestKeytabReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "svc.keytab")
	writeKeytab(t, path, 3)
	var logs bytes.Buffer
	b := newTestBinder(t, path, clockwork.NewRealClock(), slog.New(slog.NewTextHandler(&logs, nil)))
	if err := b.reloadKeytab(); err != nil {
		t.Fatal(err)
	}
	if v := keyVersions(b.kt, b.name, b.realm); len(v) != 1 || v[0] != 3 || logs.Len() != 0 {
		t.Fatalf("first load: versions %v, log %q", v, logs.String())
	}
	b.tgt = &tgt{renewAt: time.Now().Add(time.Hour)}

	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
	if err := b.reloadKeytab(); err != nil || b.tgt == nil || logs.Len() != 0 {
		t.Fatalf("touched, same bytes: reloaded (err %v, tgt %v, log %q)", err, b.tgt, logs.String())
	}

	writeKeytab(t, path, 3, 4)
	if err := b.reloadKeytab(); err != nil {
		t.Fatal(err)
	}
	if v := keyVersions(b.kt, b.name, b.realm); len(v) != 2 || v[1] != 4 || b.tgt != nil {
		t.Fatalf("after the export: versions %v, tgt %v", v, b.tgt)
	}
	if l := logs.String(); !strings.Contains(l, "keytab reloaded") || !strings.Contains(l, "key_versions=\"[3 4]\"") ||
		strings.Contains(l, "password") {
		t.Fatalf("log: %s", l)
	}

	if err := os.WriteFile(path, []byte("not a keytab"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := b.reloadKeytab()
	if r, _ := KerberosReasonOf(err); r != KerberosKeytab || b.kt == nil {
		t.Fatalf("a broken keytab: %v; the last good one must stay", err)
	}
}

// TestTGTRenewedBeforeExpiry: the TGT is reused until 5/6 of its life,
// then the binder logs in again (here to a KDC that does not answer).
func TestTGTRenewedBeforeExpiry(t *testing.T) {
	path := filepath.Join(t.TempDir(), "svc.keytab")
	writeKeytab(t, path, 3)
	start := time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC)
	clock := clockwork.NewFakeClockAt(start)
	b := newTestBinder(t, path, clock, nil)
	if err := b.reloadKeytab(); err != nil {
		t.Fatal(err)
	}
	kept := &tgt{start: start, end: start.Add(10 * time.Hour), renewAt: start.Add(10 * time.Hour * 5 / 6)}
	b.tgt = kept
	ctx := context.Background()
	clock.Advance(8 * time.Hour)
	if got, err := b.currentTGT(ctx); err != nil || got != kept {
		t.Fatalf("at 8h of 10h: %v %v, want the kept TGT", got, err)
	}
	clock.Advance(time.Hour)
	_, err := b.currentTGT(ctx)
	if r, _ := KerberosReasonOf(err); r != KerberosKDCUnreachable {
		t.Fatalf("at 9h of 10h: %v, want a new login (KDC unreachable here)", err)
	}
}

func TestKerberosConfigProblems(t *testing.T) {
	path := filepath.Join(t.TempDir(), "svc.keytab")
	writeKeytab(t, path, 3)
	base := Config{Servers: []string{"ldaps://dc1.adw.test"}, BindMethod: BindKerberos,
		Kerberos: Kerberos{Principal: "svc@ADW.TEST", KeytabFile: path}}
	if err := base.Validate(); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"password too", func(c *Config) { c.BindPassword = "x" }, "apply only to the simple bind"},
		{"other principal", func(c *Config) { c.Kerberos.Principal = "bob@ADW.TEST" }, "holds no key of bob@ADW.TEST; it holds svc@ADW.TEST"},
		{"address", func(c *Config) { c.Servers = []string{"ldaps://192.0.2.1"} }, "is an address"},
		{"method", func(c *Config) { c.BindMethod = "ntlm" }, `bind method "ntlm"`},
		{"kdc", func(c *Config) { c.Kerberos.KDCs = []string{"a:b:c"} }, "kdcs[0]"},
	}
	for _, tc := range cases {
		c := base
		tc.mutate(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	c := base
	c.Servers, c.ServerName = []string{"ldaps://192.0.2.1"}, "dc1.adw.test"
	if err := c.Validate(); err != nil {
		t.Fatalf("address with a server name: %v", err)
	}
	cl := &Client{cfg: c}
	if h := cl.spnHost(&server{url: serverURL{host: "192.0.2.1"}}); h != "dc1.adw.test" {
		t.Fatalf("SPN host %q, want the server name", h)
	}
	if h := cl.spnHost(&server{url: serverURL{host: "dc2.adw.test"}}); h != "dc2.adw.test" {
		t.Fatalf("SPN host %q, want the URL's host name", h)
	}
}

func TestKDCAddr(t *testing.T) {
	for in, want := range map[string]string{"dc1": "dc1:88", "dc1:750": "dc1:750", "::1": "[::1]:88", "[::1]:89": "[::1]:89"} {
		if got, err := kdcAddr(in); err != nil || got != want {
			t.Errorf("%q: %q %v, want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "a:b:c:", "dc1:", "http://dc1"} {
		if _, err := kdcAddr(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestKDCExchangeFraming: one KDC down, the next answers a KRB_ERROR,
// handed back typed.
func TestKDCExchangeFraming(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ke := messages.NewKRBError(messagesPrincipal(), "ADW.TEST", errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN, "")
	reply, err := ke.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		var hdr [4]byte
		if _, err := c.Read(hdr[:]); err != nil {
			return
		}
		out := append([]byte{0, 0, 0, byte(len(reply))}, reply...)
		_, _ = c.Write(out)
	}()
	path := filepath.Join(t.TempDir(), "svc.keytab")
	writeKeytab(t, path, 3)
	b := newTestBinder(t, path, clockwork.NewRealClock(), nil)
	b.kdcs = []string{"127.0.0.1:1", ln.Addr().String()}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = b.exchange(ctx, []byte("request"))
	var got messages.KRBError
	if !errors.As(err, &got) || got.ErrorCode != errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN {
		t.Fatalf("%v, want the KDC's KRB_ERROR", err)
	}
}

func messagesPrincipal() types.PrincipalName {
	return types.NewPrincipalName(nametype.KRB_NT_SRV_INST, "krbtgt/ADW.TEST")
}

func FuzzKRBReply(f *testing.F) {
	ke := messages.NewKRBError(messagesPrincipal(), "ADW.TEST", errorcode.KRB_AP_ERR_SKEW, "")
	b, _ := ke.Marshal()
	f.Add(b)
	f.Add([]byte{0x7e, 0x03, 0x02, 0x01, 0x05})
	f.Fuzz(func(t *testing.T, rb []byte) {
		out, err := krbReply(rb)
		if err == nil && !bytes.Equal(out, rb) {
			t.Fatal("a non-error reply changed")
		}
	})
}

func TestKeytabKeys(t *testing.T) {
	kt := keytab.New()
	for _, e := range []struct {
		name, realm string
		kvno        uint8
		etype       int32
	}{
		{"svc", "ADW.TEST", 2, etypeID.AES256_CTS_HMAC_SHA1_96},
		{"other", "ADW.TEST", 5, etypeID.AES256_CTS_HMAC_SHA1_96},
		{"SVC", "adw.test", 3, etypeID.RC4_HMAC},
	} {
		if err := kt.AddEntry(e.name, e.realm, "password", time.Now(), e.kvno, e.etype); err != nil {
			t.Fatal(err)
		}
	}
	want := []KeytabKey{{2, etypeID.AES256_CTS_HMAC_SHA1_96}, {3, etypeID.RC4_HMAC}}
	for _, p := range []string{"svc", "svc@ADW.TEST"} {
		if got := KeytabKeys(kt, p, "ADW.TEST"); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: %v, want %v", p, got, want)
		}
	}
	if got := KeytabKeys(kt, "svc@OTHER.TEST", "ADW.TEST"); len(got) != 0 {
		t.Errorf("another realm's: %v", got)
	}
	if got := strings.Join(KeytabPrincipals(kt), " "); got != "svc@ADW.TEST other@ADW.TEST SVC@adw.test" {
		t.Errorf("principals %s", got)
	}
	// gokrb5 has several names for a type: the usual one, every time.
	for range 20 {
		if n := want[0].ETypeName() + " " + want[1].ETypeName(); n != "aes256-cts-hmac-sha1-96 rc4-hmac" {
			t.Fatalf("names %s", n)
		}
	}
	if n := (KeytabKey{EType: 99}).ETypeName(); n != "etype 99" {
		t.Errorf("unknown type %s", n)
	}
}
