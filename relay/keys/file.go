package keys

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hpke"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"time"
)

// keyFile is the JSON form of every key file.
type keyFile struct {
	V       int    `json:"v"`
	Type    string `json:"type"`
	KID     string `json:"kid"`
	Created string `json:"created,omitempty"`
	KEM     uint16 `json:"kem,omitempty"`
	HPKE    string `json:"hpke,omitempty"`
	Ed25519 string `json:"ed25519"`
}

// maxKeyFile bounds a key file's size.
const maxKeyFile = 16 << 10

func marshal(f keyFile) []byte {
	f.V = 1
	b, _ := json.MarshalIndent(f, "", "  ") // strings and ints: cannot fail
	return append(b, '\n')
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// Marshal returns the private key file.
func (k *ConnectorPrivate) Marshal() ([]byte, error) {
	hb, err := k.HPKE.Bytes()
	if err != nil {
		return nil, fmt.Errorf("keys: serialise HPKE key: %w", err)
	}
	return marshal(keyFile{
		Type: TypeConnectorPrivate, KID: k.KID, Created: created(k.Created),
		KEM: k.HPKE.KEM().ID(), HPKE: b64(hb), Ed25519: b64(k.Sign.Seed()),
	}), nil
}

// Marshal returns the public key file.
func (p *ConnectorPublic) Marshal() []byte {
	return marshal(keyFile{
		Type: TypeConnectorPublic, KID: p.KID, KEM: p.HPKE.KEM().ID(),
		HPKE: b64(p.HPKE.Bytes()), Ed25519: b64(p.Verify),
	})
}

// Marshal returns the private key file.
func (k *SenderPrivate) Marshal() []byte {
	return marshal(keyFile{
		Type: TypeSenderPrivate, KID: k.KID, Created: created(k.Created),
		Ed25519: b64(k.Sign.Seed()),
	})
}

// Marshal returns the public key file.
func (p *SenderPublic) Marshal() []byte {
	return marshal(keyFile{Type: TypeSenderPublic, KID: p.KID, Ed25519: b64(p.Verify)})
}

func created(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func invalidf(format string, a ...any) error {
	return fmt.Errorf("keys: "+format+": %w", append(a, ErrInvalidKey)...)
}

func parse(b []byte, wantType string) (*keyFile, error) {
	if len(b) > maxKeyFile {
		return nil, invalidf("key file larger than %d bytes", maxKeyFile)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var f keyFile
	if err := dec.Decode(&f); err != nil {
		// The decoder's text is not repeated: it could quote key material.
		return nil, invalidf("not a valid key file (bad JSON, wrong type or unknown member)")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, invalidf("trailing data after the key file")
	}
	if f.V != 1 {
		return nil, invalidf("unsupported key file version %d", f.V)
	}
	if f.Type != wantType {
		return nil, invalidf("key file type is %q, want %q", f.Type, wantType)
	}
	return &f, nil
}

func unb64(field, s string) ([]byte, error) {
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, invalidf("%s: bad base64", field)
	}
	return b, nil
}

func parseCreated(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, invalidf("created: not RFC 3339")
	}
	return t, nil
}

// ParseConnectorPrivate parses a connector private key file and checks that
// its kid matches its keys.
func ParseConnectorPrivate(b []byte) (*ConnectorPrivate, error) {
	f, err := parse(b, TypeConnectorPrivate)
	if err != nil {
		return nil, err
	}
	kem, hb, err := hpkeMember(f)
	if err != nil {
		return nil, err
	}
	hk, err := kem.NewPrivateKey(hb)
	clear(hb)
	if err != nil {
		return nil, invalidf("hpke: not a private key for KEM 0x%04x", f.KEM)
	}
	seed, err := ed25519Member(f, ed25519.SeedSize, "seed")
	if err != nil {
		return nil, err
	}
	k := &ConnectorPrivate{HPKE: hk, Sign: ed25519.NewKeyFromSeed(seed), KID: f.KID}
	clear(seed)
	if k.Created, err = parseCreated(f.Created); err != nil {
		return nil, err
	}
	if want := k.Public().computeKID(); f.KID != want {
		return nil, invalidf("kid %q does not match the key (want %q)", f.KID, want)
	}
	return k, nil
}

// ParseConnectorPublic parses a connector public key file.
func ParseConnectorPublic(b []byte) (*ConnectorPublic, error) {
	f, err := parse(b, TypeConnectorPublic)
	if err != nil {
		return nil, err
	}
	kem, hb, err := hpkeMember(f)
	if err != nil {
		return nil, err
	}
	hp, err := kem.NewPublicKey(hb)
	if err != nil {
		return nil, invalidf("hpke: not a public key for KEM 0x%04x", f.KEM)
	}
	vb, err := ed25519Member(f, ed25519.PublicKeySize, "public key")
	if err != nil {
		return nil, err
	}
	p := &ConnectorPublic{KID: f.KID, HPKE: hp, Verify: ed25519.PublicKey(vb)}
	if want := p.computeKID(); f.KID != want {
		return nil, invalidf("kid %q does not match the key (want %q)", f.KID, want)
	}
	return p, nil
}

// parseSender parses a sender key file of type typ: no HPKE members, and
// an Ed25519 member of size bytes (what names it in errors).
func parseSender(b []byte, typ string, size int, what string) (*keyFile, []byte, error) {
	f, err := parse(b, typ)
	if err != nil {
		return nil, nil, err
	}
	if f.KEM != 0 || f.HPKE != "" {
		return nil, nil, invalidf("sender key file has HPKE members")
	}
	raw, err := ed25519Member(f, size, what)
	if err != nil {
		return nil, nil, err
	}
	return f, raw, nil
}

// hpkeMember returns a connector key file's KEM (which it must name) and
// its decoded HPKE member.
func hpkeMember(f *keyFile) (hpke.KEM, []byte, error) {
	kem, err := connectorKEM(f.KEM)
	if err != nil || f.KEM == 0 {
		return nil, nil, invalidf("kem: unsupported 0x%04x", f.KEM)
	}
	hb, err := unb64("hpke", f.HPKE)
	if err != nil {
		return nil, nil, err
	}
	return kem, hb, nil
}

// ed25519Member decodes the Ed25519 member, which must be size bytes
// (what names it in errors).
func ed25519Member(f *keyFile, size int, what string) ([]byte, error) {
	raw, err := unb64("ed25519", f.Ed25519)
	if err != nil {
		return nil, err
	}
	if len(raw) != size {
		clear(raw)
		return nil, invalidf("ed25519: %s must be %d bytes", what, size)
	}
	return raw, nil
}

// ParseSenderPrivate parses a sender private key file.
func ParseSenderPrivate(b []byte) (*SenderPrivate, error) {
	f, seed, err := parseSender(b, TypeSenderPrivate, ed25519.SeedSize, "seed")
	if err != nil {
		return nil, err
	}
	k := &SenderPrivate{KID: f.KID, Sign: ed25519.NewKeyFromSeed(seed)}
	clear(seed)
	if k.Created, err = parseCreated(f.Created); err != nil {
		return nil, err
	}
	if want := k.Public().computeKID(); f.KID != want {
		return nil, invalidf("kid %q does not match the key (want %q)", f.KID, want)
	}
	return k, nil
}

// ParseSenderPublic parses a sender public key file.
func ParseSenderPublic(b []byte) (*SenderPublic, error) {
	f, vb, err := parseSender(b, TypeSenderPublic, ed25519.PublicKeySize, "public key")
	if err != nil {
		return nil, err
	}
	p := &SenderPublic{KID: f.KID, Verify: ed25519.PublicKey(vb)}
	if want := p.computeKID(); f.KID != want {
		return nil, invalidf("kid %q does not match the key (want %q)", f.KID, want)
	}
	return p, nil
}

// ErrExists is returned by WriteFile when the file exists and force is off.
var ErrExists = errors.New("file exists")

// Modes of written key files.
const (
	PrivateMode fs.FileMode = 0o600
	PublicMode  fs.FileMode = 0o644
)

// WriteFile writes data to path with the given mode, atomically: it writes
// a temporary file in the same directory, syncs it, sets the mode, then
// links it into place (refusing with ErrExists if path exists) or, with
// force, renames it over path. A private file is never visible with a wider
// mode than 0600, even for an instant.
func WriteFile(path string, data []byte, mode fs.FileMode, force bool) error {
	dir := filepath.Dir(path)
	if !force {
		if _, err := os.Lstat(path); err == nil {
			return fmt.Errorf("keys: %s: %w (use --force to replace it)", path, ErrExists)
		}
	}
	tmp, err := os.CreateTemp(dir, ".adwriteback-key-*") // created 0600
	if err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	name := tmp.Name()
	defer os.Remove(name) // no-op after a successful rename/link+remove
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("keys: write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("keys: sync %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("keys: close %s: %w", path, err)
	}
	if err := os.Chmod(name, mode); err != nil {
		return fmt.Errorf("keys: chmod %s: %w", path, err)
	}
	if force {
		if err := os.Rename(name, path); err != nil {
			return fmt.Errorf("keys: %w", err)
		}
		return nil
	}
	if err := os.Link(name, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("keys: %s: %w (use --force to replace it)", path, ErrExists)
		}
		return fmt.Errorf("keys: %w", err)
	}
	return nil
}

// ModeExposed reports whether a private file's mode gives group or others
// any access (a bit of 0o077): the one test every private key and secret
// file is held to on systems with Unix permissions. It is always false on
// Windows, where the mode says nothing of who may read a file (its DACL
// does).
func ModeExposed(mode fs.FileMode) bool {
	return runtime.GOOS != "windows" && mode.Perm()&0o077 != 0
}

// readKeyFile reads a key file, and for a private one refuses a file that
// group or others may read (on systems with Unix permissions).
func readKeyFile(path string, private bool) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	if private && ModeExposed(st.Mode()) {
		return nil, fmt.Errorf("keys: %s: private key file has mode %04o; run chmod 600 on it: %w", path, st.Mode().Perm(), ErrInvalidKey)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("keys: read %s: %w", path, err)
	}
	return b, nil
}

func load[T any](path string, private bool, parse func([]byte) (T, error)) (T, error) {
	var zero T
	b, err := readKeyFile(path, private)
	if err != nil {
		return zero, err
	}
	defer clear(b)
	k, err := parse(b)
	if err != nil {
		return zero, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// LoadConnectorPrivate reads a connector private key file.
func LoadConnectorPrivate(path string) (*ConnectorPrivate, error) {
	return load(path, true, ParseConnectorPrivate)
}

// LoadConnectorPublic reads a connector public key file.
func LoadConnectorPublic(path string) (*ConnectorPublic, error) {
	return load(path, false, ParseConnectorPublic)
}

// LoadSenderPrivate reads a sender private key file.
func LoadSenderPrivate(path string) (*SenderPrivate, error) {
	return load(path, true, ParseSenderPrivate)
}

// LoadSenderPublic reads a sender public key file.
func LoadSenderPublic(path string) (*SenderPublic, error) {
	return load(path, false, ParseSenderPublic)
}
