package doctor

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/iana/patype"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
	"github.com/jonboulle/clockwork"

	"github.com/adwriteback/adwriteback/ldapx"
)

const testRealm = "ADW.TEST"

// testKeytab writes a keytab holding, for each principal, one key per
// encryption type at version kvno, derived from a throwaway string.
func testKeytab(t *testing.T, kvno uint8, etypes []int32, principals ...string) string {
	t.Helper()
	kt := keytab.New()
	for _, p := range principals {
		for _, e := range etypes {
			if err := kt.AddEntry(p, testRealm, "throwaway-test-string", time.Now(), kvno, e); err != nil {
				t.Fatal(err)
			}
		}
	}
	b, err := kt.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "test.keytab")
	if err := os.WriteFile(f, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// fakeKDC is a KDC over TCP that answers each request with the next of
// its scripted answers (the last one repeats), recording the requests.
type fakeKDC struct {
	addr    string
	mu      sync.Mutex
	answers []func(req []byte) []byte
	reqs    [][]byte
}

func startFakeKDC(t *testing.T, answers ...func(req []byte) []byte) *fakeKDC {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	k := &fakeKDC{addr: l.Addr().String(), answers: answers}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			k.serve(c)
		}
	}()
	return k
}

func (k *fakeKDC) serve(c net.Conn) {
	defer c.Close()
	var n [4]byte
	if _, err := io.ReadFull(c, n[:]); err != nil {
		return
	}
	req := make([]byte, binary.BigEndian.Uint32(n[:]))
	if _, err := io.ReadFull(c, req); err != nil {
		return
	}
	k.mu.Lock()
	k.reqs = append(k.reqs, req)
	answer := k.answers[min(len(k.reqs), len(k.answers))-1]
	k.mu.Unlock()
	rep := answer(req)
	_, _ = c.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(rep))), rep...))
}

func (k *fakeKDC) requests() [][]byte {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.reqs
}

// krbErr answers a KRB-ERROR with code, the KDC's clock at stime.
func krbErr(t *testing.T, code int32, stime time.Time, edata []byte) func([]byte) []byte {
	return func([]byte) []byte {
		e := messages.NewKRBError(types.NewPrincipalName(nametype.KRB_NT_SRV_INST, "krbtgt/"+testRealm), testRealm, code, "")
		e.STime, e.Susec, e.EData = stime.UTC().Truncate(time.Second), 0, edata
		b, err := e.Marshal()
		if err != nil {
			t.Error(err)
		}
		return b
	}
}

// preauthRequired is the KDC's first answer: pre-authenticate with one
// of etypes.
func preauthRequired(t *testing.T, stime time.Time, etypes ...int32) func([]byte) []byte {
	var info types.ETypeInfo2
	for _, e := range etypes {
		info = append(info, types.ETypeInfo2Entry{EType: e, Salt: testRealm + "svc-writeback"})
	}
	ib, err := asn1.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	eb, err := asn1.Marshal(types.PADataSequence{{PADataType: patype.PA_ETYPE_INFO2, PADataValue: ib}})
	if err != nil {
		t.Fatal(err)
	}
	return krbErr(t, errorcode.KDC_ERR_PREAUTH_REQUIRED, stime, eb)
}

func kerberosOpts(clock clockwork.Clock) Options {
	o := Options{Clock: clock, Timeout: 5 * time.Second}
	o.setDefaults()
	return o
}

func findCheck(t *testing.T, checks []Check, name string) Check {
	t.Helper()
	for _, c := range checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no %q check in %+v", name, checks)
	return Check{}
}

func TestKerberosChecksByKDCAnswer(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	aes := []int32{18, 17}
	tests := []struct {
		name    string
		etypes  []int32
		answers func(t *testing.T) []func([]byte) []byte
		// want: the ticket check's status and words in its detail and fix.
		detail, fix string
		clock       Status // "" when no clock check is expected
	}{
		{"principal unknown", aes, func(t *testing.T) []func([]byte) []byte {
			return []func([]byte) []byte{krbErr(t, errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN, now, nil)}
		}, "principal unknown", "domains[0].bind.principal", OK},
		{"wrong key", aes, func(t *testing.T) []func([]byte) []byte {
			return []func([]byte) []byte{preauthRequired(t, now, 18), krbErr(t, errorcode.KDC_ERR_PREAUTH_FAILED, now, nil)}
		}, "wrong key: the keytab's key (version 3)", "export the keytab again", OK},
		{"clock 10 minutes off", aes, func(t *testing.T) []func([]byte) []byte {
			return []func([]byte) []byte{preauthRequired(t, now.Add(-10*time.Minute), 18), krbErr(t, errorcode.KRB_AP_ERR_SKEW, now.Add(-10*time.Minute), nil)}
		}, "clock skew", "NTP", Fail},
		{"no key of an offered type", aes, func(t *testing.T) []func([]byte) []byte {
			return []func([]byte) []byte{preauthRequired(t, now, 23)}
		}, "encryption type", "AES", OK},
		{"etype not supported", []int32{23}, func(t *testing.T) []func([]byte) []byte {
			return []func([]byte) []byte{krbErr(t, errorcode.KDC_ERR_ETYPE_NOSUPP, now, nil)}
		}, "encryption type", "msDS-SupportedEncryptionTypes", OK},
		{"disabled", aes, func(t *testing.T) []func([]byte) []byte {
			return []func([]byte) []byte{krbErr(t, errorcode.KDC_ERR_CLIENT_REVOKED, now, nil)}
		}, "disabled, locked out or expired", "Enable-ADAccount", OK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			kdc := startFakeKDC(t, tc.answers(t)...)
			s := KerberosSettings{Principal: "svc-writeback", Realm: testRealm, KeytabFile: testKeytab(t, 3, tc.etypes, "svc-writeback"),
				KDCs: []string{kdc.addr}, DCHosts: []string{"dc1.adw.test"}, Setting: "domains[0].bind"}
			checks := kerberosChecks(context.Background(), kerberosOpts(clockwork.NewFakeClockAt(now)), s, nil, "")
			c := findCheck(t, checks, checkTGT)
			if c.Status != Fail || !strings.Contains(c.Detail, tc.detail) || !strings.Contains(c.Fix, tc.fix) {
				t.Errorf("ticket check %+v, want FAIL with %q and fix %q", c, tc.detail, tc.fix)
			}
			if st := findCheck(t, checks, checkServiceTicket); st.Status != Skip {
				t.Errorf("service ticket check %+v, want SKIP", st)
			}
			if tc.clock != "" {
				if cc := findCheck(t, checks, checkKDCClock); cc.Status != tc.clock {
					t.Errorf("clock check %+v, want %s", cc, tc.clock)
				}
			}
		})
	}
}

// TestPreauthTimestampUsesTheClock: the PA-ENC-TIMESTAMP is the injected
// clock's time, encrypted with the keytab's key the KDC asked for.
func TestPreauthTimestampUsesTheClock(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	kdc := startFakeKDC(t, preauthRequired(t, now, 17, 18), krbErr(t, errorcode.KDC_ERR_PREAUTH_FAILED, now, nil))
	f := testKeytab(t, 5, []int32{18, 17}, "svc-writeback")
	s := KerberosSettings{Principal: "svc-writeback@" + testRealm, KeytabFile: f, KDCs: []string{kdc.addr}}
	kerberosChecks(context.Background(), kerberosOpts(clockwork.NewFakeClockAt(now)), s, nil, "")
	reqs := kdc.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(reqs))
	}
	var req messages.ASReq
	if err := req.Unmarshal(reqs[1]); err != nil {
		t.Fatal(err)
	}
	kt, err := keytab.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	key, _, err := kt.GetEncryptionKey(types.NewPrincipalName(nametype.KRB_NT_PRINCIPAL, "svc-writeback"), testRealm, 0, 17)
	if err != nil {
		t.Fatal(err)
	}
	for _, pa := range req.PAData {
		if pa.PADataType != patype.PA_ENC_TIMESTAMP {
			continue
		}
		var ed types.EncryptedData
		if err := ed.Unmarshal(pa.PADataValue); err != nil {
			t.Fatal(err)
		}
		if ed.EType != 17 || ed.KVNO != 5 {
			t.Errorf("timestamp encrypted with etype %d version %d, want 17 (the KDC's first choice) version 5", ed.EType, ed.KVNO)
		}
		b, err := crypto.DecryptEncPart(ed, key, keyusage.AS_REQ_PA_ENC_TIMESTAMP)
		if err != nil {
			t.Fatal(err)
		}
		var ts types.PAEncTSEnc
		if _, err := asn1.Unmarshal(b, &ts); err != nil {
			t.Fatal(err)
		}
		if !ts.PATimestamp.Equal(now) {
			t.Errorf("timestamp %v, want the clock's %v", ts.PATimestamp, now)
		}
		return
	}
	t.Fatal("no PA-ENC-TIMESTAMP in the second AS-REQ")
}

func TestKerberosKDCUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	s := KerberosSettings{Principal: "svc-writeback", Realm: testRealm, KeytabFile: testKeytab(t, 1, []int32{18}, "svc-writeback"), KDCs: []string{addr}}
	checks := kerberosChecks(context.Background(), kerberosOpts(nil), s, nil, "")
	c := findCheck(t, checks, checkTGT)
	if c.Status != Fail || !strings.HasPrefix(c.Detail, "KDC unreachable") || !strings.Contains(c.Fix, "domains[].bind.kdcs") || c.Target != addr {
		t.Errorf("ticket check %+v", c)
	}
}

func TestCheckKeytab(t *testing.T) {
	cname := types.NewPrincipalName(nametype.KRB_NT_PRINCIPAL, "svc-writeback")
	s := KerberosSettings{Realm: testRealm}
	s.KeytabFile = testKeytab(t, 2, []int32{18, 23}, "svc-writeback")
	_, c := CheckKeytab(s, cname, testRealm)
	if c.Status != OK || c.Detail != "svc-writeback@ADW.TEST: key version 2 aes256-cts-hmac-sha1-96, key version 2 rc4-hmac" {
		t.Errorf("good keytab: %+v", c)
	}
	s.KeytabFile = testKeytab(t, 2, []int32{23}, "svc-writeback")
	if _, c := CheckKeytab(s, cname, testRealm); c.Status != Warn || !strings.Contains(c.Detail, "only weak") {
		t.Errorf("RC4 only: %+v", c)
	}
	s.KeytabFile = testKeytab(t, 2, []int32{18}, "other", "third")
	if _, c := CheckKeytab(s, cname, testRealm); c.Status != Fail || !strings.Contains(c.Detail, "it holds: other@ADW.TEST, third@ADW.TEST") ||
		!strings.Contains(c.Fix, "--principal=svc-writeback@ADW.TEST") {
		t.Errorf("another principal's keytab: %+v", c)
	}
	s.KeytabFile = filepath.Join(t.TempDir(), "missing.keytab")
	if _, c := CheckKeytab(s, cname, testRealm); c.Status != Fail || !strings.Contains(c.Fix, "domains[].bind.keytab_file") {
		t.Errorf("missing keytab: %+v", c)
	}
	checks := kerberosChecks(context.Background(), kerberosOpts(nil), s, nil, "")
	if len(checks) != 2 || checks[1].Status != Skip {
		t.Errorf("after a failed keytab check: %+v", checks)
	}
}

func TestCheckKeyVersion(t *testing.T) {
	s := KerberosSettings{KeytabFile: "/etc/adwriteback/svc.keytab"}
	for _, tc := range []struct {
		acct   keyVersion
		keytab int
		want   Status
		words  string
	}{
		{keyVersion{KVNO: 3, From: "msDS-KeyVersionNumber"}, 3, OK, "key version 3"},
		{keyVersion{KVNO: 4, From: "msDS-KeyVersionNumber"}, 3, Fail, "newest key is version 3, the account's is 4"},
		{keyVersion{KVNO: 2, From: "msDS-KeyVersionNumber"}, 3, Warn, "not yet replicated"},
		{keyVersion{Err: errors.New("no such account")}, 3, Warn, "no such account"},
	} {
		c := CheckKeyVersion(tc.acct, tc.keytab, "svc@ADW.TEST", s)
		if c.Status != tc.want || !strings.Contains(c.Detail, tc.words) {
			t.Errorf("%+v, keytab %d: %+v", tc.acct, tc.keytab, c)
		}
		if c.Status == Fail && !strings.Contains(c.Fix, "export the keytab again over /etc/adwriteback/svc.keytab") {
			t.Errorf("fix %q", c.Fix)
		}
	}
}

// versionSearcher answers the key version search with one entry.
type versionSearcher struct{ filter, kvno string }

func (v *versionSearcher) Search(req *ldap.SearchRequest) (*ldap.SearchResult, error) {
	v.filter = req.Filter
	if v.kvno == "" {
		return &ldap.SearchResult{}, nil
	}
	return &ldap.SearchResult{Entries: []*ldap.Entry{ldap.NewEntry("CN=svc,DC=adw,DC=test", map[string][]string{"msDS-KeyVersionNumber": {v.kvno}})}}, nil
}

func TestReadKeyVersion(t *testing.T) {
	v := &versionSearcher{kvno: "7"}
	kv := readKeyVersion(v, "DC=adw,DC=test", types.NewPrincipalName(nametype.KRB_NT_PRINCIPAL, "gmsa$"), testRealm)
	if kv.Err != nil || kv.KVNO != 7 || kv.From != "msDS-KeyVersionNumber of CN=svc,DC=adw,DC=test" {
		t.Errorf("%+v", kv)
	}
	if v.filter != "(&(objectClass=user)(|(sAMAccountName=gmsa$)(userPrincipalName=gmsa$@ADW.TEST)))" {
		t.Errorf("filter %s", v.filter)
	}
	v.kvno = ""
	if kv := readKeyVersion(v, "DC=adw,DC=test", types.NewPrincipalName(nametype.KRB_NT_PRINCIPAL, "x*)"), testRealm); kv.Err == nil {
		t.Errorf("no entry: %+v", kv)
	}
	if !strings.Contains(v.filter, `x\2a\29`) {
		t.Errorf("filter not escaped: %s", v.filter)
	}
}

func TestCheckKerberosClock(t *testing.T) {
	kdcTime := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		off  time.Duration
		want Status
		says string
	}{
		{10 * time.Second, OK, "10s ahead of"},
		{-2 * time.Minute, Warn, "2m0s behind"},
		{10 * time.Minute, Fail, "Kerberos refuses"},
	} {
		if c := CheckKerberosClock("dc1:88", kdcTime, kdcTime.Add(tc.off)); c.Status != tc.want || !strings.Contains(c.Detail, tc.says) {
			t.Errorf("%v off: %+v", tc.off, c)
		}
	}
}

func TestCheckServiceTicketSPNMissing(t *testing.T) {
	err := fmt.Errorf("kdc dc1:88: %w", &ldapx.KerberosError{Reason: ldapx.KerberosServiceUnknown, Code: errorcode.KDC_ERR_S_PRINCIPAL_UNKNOWN, Stage: "TGS"})
	c := CheckServiceTicket(err, "ldap/alias.adw.test", "dc1:88", "svc@ADW.TEST", KerberosSettings{})
	if c.Status != Fail || !strings.Contains(c.Fix, "setspn -S ldap/alias.adw.test") || !strings.Contains(c.Fix, "samba-tool spn add ldap/alias.adw.test") {
		t.Errorf("%+v", c)
	}
	if c := CheckServiceTicket(nil, "ldap/dc1.adw.test", "dc1:88", "svc@ADW.TEST", KerberosSettings{}); c.Status != OK {
		t.Errorf("%+v", c)
	}
}

func TestKerberosKDCsDefault(t *testing.T) {
	kdcs := func(s KerberosSettings) ([]string, error) {
		c := s.ldap(testRealm, Options{})
		return c.KDCs()
	}
	s := KerberosSettings{DCHosts: []string{"dc1.adw.test", "dc2.adw.test"}}
	if got, _ := kdcs(s); strings.Join(got, " ") != "dc1.adw.test:88 dc2.adw.test:88" {
		t.Errorf("from the DCs: %v", got)
	}
	s.KDCs = []string{"kdc.adw.test:1088", "::1"}
	if got, _ := kdcs(s); strings.Join(got, " ") != "kdc.adw.test:1088 [::1]:88" {
		t.Errorf("listed: %v", got)
	}
	conf := filepath.Join(t.TempDir(), "krb5.conf")
	os.WriteFile(conf, []byte("[realms]\n ADW.TEST = {\n  kdc = kdc1.adw.test:88\n }\n"), 0o644)
	s = KerberosSettings{Krb5Conf: conf, DCHosts: []string{"dc1.adw.test"}}
	if got, err := kdcs(s); err != nil || strings.Join(got, " ") != "kdc1.adw.test:88" {
		t.Errorf("from krb5.conf: %v %v", got, err)
	}
}
