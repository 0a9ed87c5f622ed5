package keys_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/adwriteback/adwriteback/relay/keys"
	"github.com/adwriteback/adwriteback/relay/protocol"
)

var now = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func TestConnectorKeyFiles(t *testing.T) {
	k, err := keys.GenerateConnector(0, now)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(k.KID, "c-") || len(k.KID) != 18 || k.HPKE.KEM().ID() != keys.DefaultKEM {
		t.Fatalf("kid %q kem %x", k.KID, k.HPKE.KEM().ID())
	}
	b, err := k.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	k2, err := keys.ParseConnectorPrivate(b)
	if err != nil {
		t.Fatal(err)
	}
	if k2.KID != k.KID || !k2.Sign.Equal(k.Sign) || !k2.Created.Equal(k.Created) {
		t.Fatal("private round trip")
	}
	pb := k.Public().Marshal()
	p, err := keys.ParseConnectorPublic(pb)
	if err != nil {
		t.Fatal(err)
	}
	if p.KID != k.KID || !bytes.Equal(p.HPKE.Bytes(), k.HPKE.PublicKey().Bytes()) || !p.Verify.Equal(k.Public().Verify) {
		t.Fatal("public round trip")
	}
	// The parsed halves work together: seal to the public, open with the
	// parsed private.
	c := protocol.Command{V: 1, ID: "x", Op: protocol.OpReset, User: protocol.UserRef{SAM: "a"},
		Actor: protocol.Actor{Kind: protocol.ActorAdmin, ID: "b"}, IssuedAt: protocol.At(now), ExpiresAt: protocol.At(now.Add(time.Minute))}
	if err := protocol.Seal(&c, p.SealKey(), protocol.DefaultSuite(), protocol.SecretFromString("pw-123456789"), protocol.Secret{}); err != nil {
		t.Fatal(err)
	}
	ok, _ := keys.OpenKeysOf(k2)
	s, err := c.Open(ok)
	if err != nil || string(s.New.Bytes()) != "pw-123456789" {
		t.Fatalf("open: %v", err)
	}
	// The private file never shows in the public one.
	if bytes.Contains(pb, []byte(b64(k.Sign.Seed()))) {
		t.Fatal("public file contains the private seed")
	}
}

func TestSenderKeyFiles(t *testing.T) {
	k, err := keys.GenerateSender(now)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := keys.ParseSenderPrivate(k.Marshal())
	if err != nil || k2.KID != k.KID || !k2.Sign.Equal(k.Sign) {
		t.Fatalf("private round trip: %v", err)
	}
	p, err := keys.ParseSenderPublic(k.Public().Marshal())
	if err != nil || p.KID != k.KID || !strings.HasPrefix(p.KID, "s-") {
		t.Fatalf("public round trip: %v", err)
	}
	vk, err := keys.VerifyKeysOf(p)
	if err != nil || !vk[p.KID].Equal(k.Public().Verify) {
		t.Fatal("VerifyKeysOf")
	}
	if _, err := keys.VerifyKeysOf(p, p); !errors.Is(err, keys.ErrInvalidKey) {
		t.Fatal("duplicate accepted")
	}
}

func TestDeriveIsDeterministic(t *testing.T) {
	seed := bytes.Repeat([]byte{7}, 32)
	a, _ := keys.DeriveConnector(0, seed, now)
	b, _ := keys.DeriveConnector(0, seed, now)
	if a.KID != b.KID {
		t.Fatal("connector derivation differs")
	}
	c, _ := keys.DeriveConnector(0, bytes.Repeat([]byte{8}, 32), now)
	if c.KID == a.KID {
		t.Fatal("different seeds, same kid")
	}
	s1, _ := keys.DeriveSender(seed, now)
	s2, _ := keys.DeriveSender(seed, now)
	if s1.KID != s2.KID {
		t.Fatal("sender derivation differs")
	}
	if _, err := keys.DeriveSender([]byte("short"), now); !errors.Is(err, keys.ErrInvalidKey) {
		t.Fatal("short seed")
	}
}

func TestParseRejects(t *testing.T) {
	ck, _ := keys.GenerateConnector(0, now)
	cb, _ := ck.Marshal()
	sk, _ := keys.GenerateSender(now)
	sb := sk.Marshal()
	cases := map[string]struct {
		data  []byte
		parse func([]byte) error
	}{
		"wrong-type":     {sb, func(b []byte) error { _, err := keys.ParseConnectorPrivate(b); return err }},
		"public-as-priv": {ck.Public().Marshal(), func(b []byte) error { _, err := keys.ParseConnectorPrivate(b); return err }},
		"kid-mismatch": {bytes.Replace(sb, []byte(sk.KID), []byte("s-aaaaaaaaaaaaaaaa"), 1),
			func(b []byte) error { _, err := keys.ParseSenderPrivate(b); return err }},
		"unknown-member": {bytes.Replace(sb, []byte(`"v": 1,`), []byte(`"v": 1, "x": 1,`), 1),
			func(b []byte) error { _, err := keys.ParseSenderPrivate(b); return err }},
		"trailing": {append(bytes.Clone(sb), []byte("{}")...), func(b []byte) error { _, err := keys.ParseSenderPrivate(b); return err }},
		"version":  {bytes.Replace(sb, []byte(`"v": 1,`), []byte(`"v": 2,`), 1), func(b []byte) error { _, err := keys.ParseSenderPrivate(b); return err }},
		"bad-b64": {bytes.Replace(cb, []byte(`"hpke": "`), []byte(`"hpke": "!`), 1),
			func(b []byte) error { _, err := keys.ParseConnectorPrivate(b); return err }},
		"bad-kem": {bytes.Replace(cb, []byte(`"kem": 25722`), []byte(`"kem": 16`), 1),
			func(b []byte) error { _, err := keys.ParseConnectorPrivate(b); return err }},
		"garbage": {[]byte("not json"), func(b []byte) error { _, err := keys.ParseSenderPublic(b); return err }},
		"huge":    {bytes.Repeat([]byte(" "), 1<<20), func(b []byte) error { _, err := keys.ParseSenderPublic(b); return err }},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			err := tc.parse(tc.data)
			if !errors.Is(err, keys.ErrInvalidKey) {
				t.Fatalf("got %v", err)
			}
			// No key material in the error.
			if strings.Contains(err.Error(), b64(sk.Sign.Seed())[:12]) || strings.Contains(err.Error(), b64(ck.Sign.Seed())[:12]) {
				t.Fatalf("error quotes the key: %v", err)
			}
		})
	}
}

func TestWriteAndLoad(t *testing.T) {
	dir := t.TempDir()
	k, _ := keys.GenerateSender(now)
	priv := filepath.Join(dir, "sender.key.json")
	if err := keys.WriteFile(priv, k.Marshal(), keys.PrivateMode, false); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(priv)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %o", st.Mode().Perm())
	}
	// No overwrite without force; the file is unchanged.
	k2, _ := keys.GenerateSender(now)
	if err := keys.WriteFile(priv, k2.Marshal(), keys.PrivateMode, false); !errors.Is(err, keys.ErrExists) {
		t.Fatalf("overwrite: %v", err)
	}
	got, err := keys.LoadSenderPrivate(priv)
	if err != nil || got.KID != k.KID {
		t.Fatalf("load: %v", err)
	}
	// With force, replaced, still 0600, and no temporary files left.
	if err := keys.WriteFile(priv, k2.Marshal(), keys.PrivateMode, true); err != nil {
		t.Fatal(err)
	}
	if got, _ := keys.LoadSenderPrivate(priv); got.KID != k2.KID {
		t.Fatal("force did not replace")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("left behind: %v", entries)
	}
	if runtime.GOOS != "windows" {
		// A private key readable by others is refused.
		if err := os.Chmod(priv, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := keys.LoadSenderPrivate(priv); !errors.Is(err, keys.ErrInvalidKey) {
			t.Fatalf("loaded a world-readable private key: %v", err)
		}
	}
	pub := filepath.Join(dir, "sender.pub.json")
	if err := keys.WriteFile(pub, k2.Public().Marshal(), keys.PublicMode, false); err != nil {
		t.Fatal(err)
	}
	if p, err := keys.LoadSenderPublic(pub); err != nil || p.KID != k2.KID {
		t.Fatalf("public: %v", err)
	}
	if _, err := keys.LoadConnectorPublic(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// TestModeExposed: any group or other bit exposes a private file on
// systems with Unix permissions; the owner's bits and the file type do
// not; on Windows the mode never does.
func TestModeExposed(t *testing.T) {
	for mode, want := range map[os.FileMode]bool{
		0o600: false, 0o400: false, 0o700: false, os.ModeSymlink | 0o600: false,
		0o640: true, 0o604: true, 0o610: true, 0o601: true, 0o620: true, 0o644: true, 0o777: true,
	} {
		if runtime.GOOS == "windows" {
			want = false
		}
		if got := keys.ModeExposed(mode); got != want {
			t.Errorf("ModeExposed(%v) = %v, want %v", mode, got, want)
		}
	}
}
