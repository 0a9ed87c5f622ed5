// Package keys owns the adwriteback key pairs and their files: generating
// them, deriving their key ids, writing them (private parts mode 0600,
// never overwriting by accident) and loading them strictly.
//
// There are two kinds of key pair:
//
//   - a connector key: an HPKE key (MLKEM768-X25519 by default) that senders
//     seal passwords to, plus an Ed25519 key the connector signs results
//     with. Both share one key id ("c-...").
//   - a sender key: an Ed25519 key the cloud side signs commands with ("s-...").
//
// Each has a private file (kept by its owner) and a public file (given to
// the other side). The file format is documented in relay/protocol/PROTOCOL.md.
package keys

import (
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/adwriteback/adwriteback/relay/protocol"
)

// File types, the "type" member of a key file.
const (
	TypeConnectorPrivate = "adwriteback-connector-private-key"
	TypeConnectorPublic  = "adwriteback-connector-public-key"
	TypeSenderPrivate    = "adwriteback-sender-private-key"
	TypeSenderPublic     = "adwriteback-sender-public-key"
)

// ErrInvalidKey is wrapped by every error about a malformed key or key file.
var ErrInvalidKey = errors.New("invalid key")

// ConnectorPrivate is the connector's own key pair.
type ConnectorPrivate struct {
	KID     string
	HPKE    hpke.PrivateKey
	Sign    ed25519.PrivateKey
	Created time.Time
}

// ConnectorPublic is what senders know of a connector key.
type ConnectorPublic struct {
	KID    string
	HPKE   hpke.PublicKey
	Verify ed25519.PublicKey
}

// SenderPrivate is the sender's signing key.
type SenderPrivate struct {
	KID     string
	Sign    ed25519.PrivateKey
	Created time.Time
}

// SenderPublic is what connectors know of a sender key.
type SenderPublic struct {
	KID    string
	Verify ed25519.PublicKey
}

// DefaultKEM is the KEM of generated connector keys.
const DefaultKEM = protocol.KEMMLKEM768X25519

// GenerateConnector makes a new connector key with the given KEM (0 means
// DefaultKEM).
func GenerateConnector(kemID uint16, now time.Time) (*ConnectorPrivate, error) {
	kem, err := connectorKEM(kemID)
	if err != nil {
		return nil, err
	}
	hk, err := kem.GenerateKey()
	if err != nil {
		return nil, fmt.Errorf("keys: generate HPKE key: %w", err)
	}
	_, sk, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, fmt.Errorf("keys: generate Ed25519 key: %w", err)
	}
	return newConnector(hk, sk, now)
}

// DeriveConnector deterministically derives a connector key from seed (at
// least 32 bytes). For test vectors only: real keys come from
// GenerateConnector.
func DeriveConnector(kemID uint16, seed []byte, now time.Time) (*ConnectorPrivate, error) {
	if len(seed) < 32 {
		return nil, fmt.Errorf("keys: derive: seed shorter than 32 bytes: %w", ErrInvalidKey)
	}
	kem, err := connectorKEM(kemID)
	if err != nil {
		return nil, err
	}
	hk, err := kem.DeriveKeyPair(seed)
	if err != nil {
		return nil, fmt.Errorf("keys: derive HPKE key: %w", err)
	}
	edSeed := sha256.Sum256(append([]byte("adwriteback-test-ed25519\x00"), seed...))
	return newConnector(hk, ed25519.NewKeyFromSeed(edSeed[:]), now)
}

func connectorKEM(id uint16) (hpke.KEM, error) {
	if id == 0 {
		id = DefaultKEM
	}
	switch id {
	case protocol.KEMMLKEM768X25519, protocol.KEMMLKEM768, protocol.KEMX25519:
		return hpke.NewKEM(id)
	}
	return nil, fmt.Errorf("keys: unsupported KEM 0x%04x: %w", id, ErrInvalidKey)
}

func newConnector(hk hpke.PrivateKey, sk ed25519.PrivateKey, now time.Time) (*ConnectorPrivate, error) {
	k := &ConnectorPrivate{HPKE: hk, Sign: sk, Created: now.UTC().Truncate(time.Second)}
	k.KID = k.Public().computeKID()
	return k, nil
}

// GenerateSender makes a new sender signing key.
func GenerateSender(now time.Time) (*SenderPrivate, error) {
	_, sk, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, fmt.Errorf("keys: generate Ed25519 key: %w", err)
	}
	return newSender(sk, now), nil
}

// DeriveSender deterministically derives a sender key from seed (32 bytes).
// For test vectors only.
func DeriveSender(seed []byte, now time.Time) (*SenderPrivate, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("keys: derive: seed must be 32 bytes: %w", ErrInvalidKey)
	}
	return newSender(ed25519.NewKeyFromSeed(seed), now), nil
}

func newSender(sk ed25519.PrivateKey, now time.Time) *SenderPrivate {
	k := &SenderPrivate{Sign: sk, Created: now.UTC().Truncate(time.Second)}
	k.KID = k.Public().computeKID()
	return k
}

// Public returns the public half.
func (k *ConnectorPrivate) Public() *ConnectorPublic {
	return &ConnectorPublic{
		KID:    k.KID,
		HPKE:   k.HPKE.PublicKey(),
		Verify: k.Sign.Public().(ed25519.PublicKey),
	}
}

// SigningKey is the key the connector signs results with.
func (k *ConnectorPrivate) SigningKey() protocol.SigningKey {
	return protocol.SigningKey{KID: k.KID, Key: k.Sign}
}

// SealKey is the key senders seal to.
func (p *ConnectorPublic) SealKey() protocol.SealKey {
	return protocol.SealKey{KID: p.KID, Key: p.HPKE}
}

// Public returns the public half.
func (k *SenderPrivate) Public() *SenderPublic {
	return &SenderPublic{KID: k.KID, Verify: k.Sign.Public().(ed25519.PublicKey)}
}

// SigningKey is the key the sender signs commands with.
func (k *SenderPrivate) SigningKey() protocol.SigningKey {
	return protocol.SigningKey{KID: k.KID, Key: k.Sign}
}

var kidEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// kidOf is the key id derivation: prefix, then the first 10 bytes of
// SHA-256("adwriteback-v1-kid" 0x00 role 0x00 kem(2 bytes, big-endian)
// public bytes...) in lower-case unpadded base32 (16 characters).
func kidOf(prefix, role string, kem uint16, public ...[]byte) string {
	h := sha256.New()
	h.Write([]byte("adwriteback-v1-kid\x00" + role + "\x00"))
	h.Write(binary.BigEndian.AppendUint16(nil, kem))
	for _, p := range public {
		h.Write(p)
	}
	sum := h.Sum(nil)
	s := kidEncoding.EncodeToString(sum[:10])
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + ('a' - 'A')
		}
	}
	return prefix + string(b)
}

func (p *ConnectorPublic) computeKID() string {
	return kidOf("c-", "connector", p.HPKE.KEM().ID(), p.HPKE.Bytes(), p.Verify)
}

func (p *SenderPublic) computeKID() string {
	return kidOf("s-", "sender", 0, p.Verify)
}

// VerifyKeysOf collects sender public keys by key id, for a connector.
func VerifyKeysOf(pubs ...*SenderPublic) (protocol.VerifyKeys, error) {
	out := make(protocol.VerifyKeys, len(pubs))
	for _, p := range pubs {
		if _, dup := out[p.KID]; dup {
			return nil, fmt.Errorf("keys: sender key %q listed twice: %w", p.KID, ErrInvalidKey)
		}
		out[p.KID] = p.Verify
	}
	return out, nil
}

// ResultKeysOf collects connector public keys by key id, for a sender that
// verifies results.
func ResultKeysOf(pubs ...*ConnectorPublic) (protocol.VerifyKeys, error) {
	out := make(protocol.VerifyKeys, len(pubs))
	for _, p := range pubs {
		if _, dup := out[p.KID]; dup {
			return nil, fmt.Errorf("keys: connector key %q listed twice: %w", p.KID, ErrInvalidKey)
		}
		out[p.KID] = p.Verify
	}
	return out, nil
}

// OpenKeysOf collects connector private keys by key id (several during a
// rotation), for a connector.
func OpenKeysOf(privs ...*ConnectorPrivate) (protocol.OpenKeys, error) {
	out := make(protocol.OpenKeys, len(privs))
	for _, k := range privs {
		if _, dup := out[k.KID]; dup {
			return nil, fmt.Errorf("keys: connector key %q listed twice: %w", k.KID, ErrInvalidKey)
		}
		out[k.KID] = k.HPKE
	}
	return out, nil
}
