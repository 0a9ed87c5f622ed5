package ldapx

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strconv"
	"strings"
	"testing"
)

// encodeSID is the inverse of SIDString, for the tests.
func encodeSID(t testing.TB, s string) []byte {
	t.Helper()
	parts := strings.Split(s, "-")
	if len(parts) < 3 || parts[0] != "S" {
		t.Fatalf("not a SID: %q", s)
	}
	rev, err1 := strconv.ParseUint(parts[1], 10, 8)
	auth, err2 := strconv.ParseUint(parts[2], 10, 48)
	if err := errors.Join(err1, err2); err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	b := []byte{byte(rev), byte(len(parts) - 3)}
	var a [8]byte
	binary.BigEndian.PutUint64(a[:], auth)
	b = append(b, a[2:]...)
	for _, p := range parts[3:] {
		v, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		b = binary.LittleEndian.AppendUint32(b, uint32(v))
	}
	return b
}

func TestSIDString(t *testing.T) {
	// objectSid of a user on the test DC, as ldapsearch shows it.
	raw, _ := base64.StdEncoding.DecodeString("AQUAAAAAAAUVAAAAPgoKc1UVUQL2liTrVAQAAA==")
	got, err := SIDString(raw)
	if want := "S-1-5-21-1930037822-38868309-3945043702-1108"; err != nil || got != want {
		t.Fatalf("SIDString = %q, %v; want %s", got, err, want)
	}
	for _, s := range []string{"S-1-5-32-544", "S-1-1-0", "S-1-5-18", "S-1-5-21-1-2-3-4294967295", "S-1-0"} {
		if got, err := SIDString(encodeSID(t, s)); err != nil || got != s {
			t.Errorf("round trip of %s: %q, %v", s, got, err)
		}
	}
	for name, b := range map[string][]byte{
		"empty":            nil,
		"short header":     {1, 0, 0, 0, 0, 0, 0},
		"revision 2":       {2, 0, 0, 0, 0, 0, 0, 5},
		"16 sub-auths":     append([]byte{1, 16, 0, 0, 0, 0, 0, 5}, make([]byte, 64)...),
		"truncated":        {1, 2, 0, 0, 0, 0, 0, 5, 32, 0, 0, 0},
		"trailing byte":    append(encodeSID(t, "S-1-5-32-544"), 0),
		"one byte missing": encodeSID(t, "S-1-5-32-544")[:15],
	} {
		if s, err := SIDString(b); !errors.Is(err, ErrMalformedSID) {
			t.Errorf("%s: got %q, %v; want ErrMalformedSID", name, s, err)
		}
	}
}

func TestParseSIDPrefix(t *testing.T) {
	b := append(encodeSID(t, "S-1-5-32-544"), 0xAA, 0xBB)
	s, n, err := ParseSID(b)
	if err != nil || s != "S-1-5-32-544" || n != 16 {
		t.Fatalf("ParseSID = %q, %d, %v", s, n, err)
	}
}

func TestDomainRID(t *testing.T) {
	for _, tc := range []struct {
		sid, domain string
		rid         uint32
		ok          bool
	}{
		{"S-1-5-21-1930037822-55645525-3945043702-1108", "S-1-5-21-1930037822-55645525-3945043702", 1108, true},
		{"S-1-5-21-1-2-3-500", "S-1-5-21-1-2-3", 500, true},
		{"S-1-5-21-1-2-3-4294967295", "S-1-5-21-1-2-3", 4294967295, true},
		{"S-1-5-32-544", "", 0, false},       // builtin
		{"S-1-5-21-1-2-3", "", 0, false},     // a domain, not an account
		{"S-1-5-21-1-2-3-4-5", "", 0, false}, // too many parts
		{"S-1-5-21-1-2-3-x", "", 0, false},
		{"S-1-5-21-1-2-3-4294967296", "", 0, false},
		{"S-1-5-21-1--3-1000", "", 0, false},
		{"", "", 0, false},
	} {
		d, rid, ok := DomainRID(tc.sid)
		if d != tc.domain || rid != tc.rid || ok != tc.ok {
			t.Errorf("DomainRID(%q) = %q, %d, %v; want %q, %d, %v", tc.sid, d, rid, ok, tc.domain, tc.rid, tc.ok)
		}
	}
}

func TestNormalAccount(t *testing.T) {
	for _, tc := range []struct {
		uac    uint32
		normal bool
	}{
		{UACNormalAccount, true},
		{UACNormalAccount | UACAccountDisable | UACDontExpirePassword, true},
		{0, false},
		{UACWorkstationTrustAccount, false},
		{UACServerTrustAccount, false},
		{UACInterdomainTrustAccount, false},
		{UACTempDuplicateAccount, false},
		{UACNormalAccount | UACWorkstationTrustAccount, false},
	} {
		u := &User{UserAccountControl: tc.uac}
		if got := u.NormalAccount(); got != tc.normal {
			t.Errorf("userAccountControl %#x: NormalAccount %v, want %v", tc.uac, got, tc.normal)
		}
	}
}

func FuzzSIDString(f *testing.F) {
	f.Add(encodeSID(f, "S-1-5-21-1-2-3-1108"))
	f.Add(encodeSID(f, "S-1-5-32-544"))
	f.Add([]byte{1, 15, 0, 0, 0, 0, 0, 5})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := SIDString(b)
		if err != nil {
			if !errors.Is(err, ErrMalformedSID) {
				t.Fatalf("error %v does not wrap ErrMalformedSID", err)
			}
			return
		}
		if again := encodeSID(t, s); !bytes.Equal(again, b) {
			t.Fatalf("%x decodes to %s, which encodes to %x", b, s, again)
		}
		if _, rid, ok := DomainRID(s); ok && !strings.HasSuffix(s, "-"+strconv.FormatUint(uint64(rid), 10)) {
			t.Fatalf("DomainRID(%s) = %d", s, rid)
		}
	})
}
