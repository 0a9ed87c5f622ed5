package ldapx

import (
	"bytes"
	"crypto/x509"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestGUIDRoundTrip(t *testing.T) {
	const s = "d99a190b-64f9-4fa7-a718-21373b032634"
	b, err := GUIDBytes(s)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{0x0b, 0x19, 0x9a, 0xd9, 0xf9, 0x64, 0xa7, 0x4f, 0xa7, 0x18, 0x21, 0x37, 0x3b, 0x03, 0x26, 0x34}
	if !bytes.Equal(b, want) {
		t.Fatalf("bytes %x, want %x", b, want)
	}
	if got := GUIDString(b); got != s {
		t.Fatalf("string %s", got)
	}
	if _, err := GUIDBytes("{" + strings.ToUpper(s) + "}"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "d99a190b64f94fa7a71821373b032634", "g99a190b-64f9-4fa7-a718-21373b032634", "d99a190b-64f9-4fa7-a718-21373b03263"} {
		if _, err := GUIDBytes(bad); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestFileTimeAndInterval(t *testing.T) {
	// 2026-11-25 12:03:12 UTC
	ft, err := FileTime("134400817920000000")
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 11, 25, 12, 3, 12, 0, time.UTC); !ft.Equal(want) {
		t.Fatalf("FileTime = %v, want %v", ft, want)
	}
	for _, zero := range []string{"", "0", "-1", "9223372036854775807"} {
		if ft, err := FileTime(zero); err != nil || !ft.IsZero() {
			t.Errorf("FileTime(%q) = %v, %v", zero, ft, err)
		}
	}
	if _, err := FileTime("abc"); err == nil {
		t.Error("FileTime accepted garbage")
	}
	d, err := Interval("-864000000000")
	if err != nil || d != 24*time.Hour {
		t.Fatalf("Interval 1 day = %v, %v", d, err)
	}
	for _, zero := range []string{"", "0", "-9223372036854775808"} {
		if d, err := Interval(zero); err != nil || d != 0 {
			t.Errorf("Interval(%q) = %v, %v", zero, d, err)
		}
	}
}

func TestEncodePassword(t *testing.T) {
	got := EncodePassword("a€𝄞")
	want := []byte{'"', 0, 'a', 0, 0xac, 0x20, 0x34, 0xd8, 0x1e, 0xdd, '"', 0}
	if !bytes.Equal(got, want) {
		t.Fatalf("% x", got)
	}
}

func TestUserRefFilterEscapes(t *testing.T) {
	f, err := UserRef{Kind: RefSAM, Value: "a*)(cn=x\\"}.filter()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(f, "*)(") || !strings.Contains(f, `a\2a\29\28cn=x\5c`) {
		t.Fatalf("filter not escaped: %s", f)
	}
	for _, ref := range []UserRef{{Kind: RefSAM}, {Kind: RefUPN, Value: "a\x00b"}, {Kind: RefConsistencyGUID, Value: "!!"},
		{Kind: RefConsistencyGUID, Value: "AAAA"}, {Kind: 99, Value: "x"}} {
		if _, err := ref.filter(); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("%+v: %v", ref, err)
		}
	}
}

// TestBackoffDefault: a DC backs off 500 ms, then doubles up to 30 s (here
// without the randomization, which DefaultBackoff adds at ±50%).
func TestBackoffDefault(t *testing.T) {
	var c Config
	c.setDefaults()
	if *c.Backoff != *DefaultBackoff() {
		t.Fatalf("default backoff %+v, want %+v", c.Backoff, DefaultBackoff())
	}
	b := *c.Backoff
	b.RandomizationFactor = 0
	b.Reset()
	var got []time.Duration
	for range 8 {
		got = append(got, b.NextBackOff())
	}
	want := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second,
		16 * time.Second, 30 * time.Second, 30 * time.Second}
	if !slices.Equal(got, want) {
		t.Fatalf("delays %v, want %v", got, want)
	}
	b.Reset()
	if d := b.NextBackOff(); d != 500*time.Millisecond {
		t.Fatalf("after a success the first delay is %v, want 500ms", d)
	}
}

func TestConfigValidateListsEveryProblem(t *testing.T) {
	c := Config{Servers: []string{"http://x", "ldaps://", "ldaps://ok:636/path"}, CAFile: "/nonexistent/ca.pem"}
	err := c.Validate()
	if err == nil {
		t.Fatal("accepted")
	}
	msg := err.Error()
	for _, want := range []string{"servers[0]", "servers[1]", "servers[2]", "bind DN", "bind password", "CA file"} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in:\n%s", want, msg)
		}
	}
	if err := (&Config{Domain: "x.test", Discover: true, BindDN: "a", BindPassword: "b", RootCAs: x509.NewCertPool()}).Validate(); err != nil {
		t.Errorf("discovery-only config refused: %v", err)
	}
}

func TestParseServer(t *testing.T) {
	for in, want := range map[string]serverURL{
		"ldaps://dc1.example.test": {addr: "dc1.example.test:636", host: "dc1.example.test"},
		"LDAP://dc1.example.test":  {addr: "dc1.example.test:389", host: "dc1.example.test", startTLS: true},
		"ldaps://127.0.0.1:10636":  {addr: "127.0.0.1:10636", host: "127.0.0.1"},
		"ldaps://[::1]:636":        {addr: "[::1]:636", host: "::1"},
	} {
		got, err := parseServer(in)
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		if got.addr != want.addr || got.host != want.host || got.startTLS != want.startTLS {
			t.Errorf("%s: %+v", in, got)
		}
	}
}
