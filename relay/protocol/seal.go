package protocol

import (
	"crypto/hpke"
	"encoding/binary"
	"errors"
	"fmt"
)

// HPKE algorithm identifiers (RFC 9180 registry, draft-ietf-hpke-pq).
const (
	KEMMLKEM768X25519 uint16 = 0x647a // X-Wing; the default
	KEMMLKEM768       uint16 = 0x0041
	KEMX25519         uint16 = 0x0020 // DHKEM(X25519, HKDF-SHA256)
	KDFHKDFSHA256     uint16 = 0x0001
	AEADAES256GCM     uint16 = 0x0002 // the default
	AEADChaCha20      uint16 = 0x0003
)

// Suite is the HPKE KDF and AEAD a sender uses; the KEM is the connector
// key's own.
type Suite struct {
	KDF  hpke.KDF
	AEAD hpke.AEAD
}

// DefaultSuite is HKDF-SHA256 with AES-256-GCM. AES-256-GCM runs in
// hardware on every server CPU the connector targets, is FIPS-approved, and
// HPKE derives its nonces, so GCM's nonce-reuse hazard does not arise.
// ChaCha20-Poly1305 is accepted too, for senders without AES hardware.
func DefaultSuite() Suite {
	return Suite{KDF: hpke.HKDFSHA256(), AEAD: hpke.AES256GCM()}
}

// suiteOf maps wire identifiers to algorithms, accepting only the set this
// version allows.
func suiteOf(kemID, kdfID, aeadID uint16) (hpke.KEM, error) {
	switch kemID {
	case KEMMLKEM768X25519, KEMMLKEM768, KEMX25519:
	default:
		return nil, invalid("secret.kem", fmt.Sprintf("unsupported KEM 0x%04x", kemID))
	}
	if kdfID != KDFHKDFSHA256 {
		return nil, invalid("secret.kdf", fmt.Sprintf("unsupported KDF 0x%04x", kdfID))
	}
	if aeadID != AEADAES256GCM && aeadID != AEADChaCha20 {
		return nil, invalid("secret.aead", fmt.Sprintf("unsupported AEAD 0x%04x", aeadID))
	}
	return hpke.NewKEM(kemID)
}

// SealKey is a connector public key that secrets are sealed to.
type SealKey struct {
	KID string
	Key hpke.PublicKey
}

// OpenKeys are the connector's private keys by key id. Several may be active
// at once during a rotation; the opener picks by the kid in the command.
type OpenKeys map[string]hpke.PrivateKey

// Secrets are the opened passwords of a command. Zero them when done.
type Secrets struct {
	New Secret
	Old Secret // OpChange only
}

// Zero wipes both passwords.
func (s Secrets) Zero() {
	s.New.Zero()
	s.Old.Zero()
}

const infoLabel = "adwriteback-v1-secret\x00"

// secretInfo is the HPKE info string: the label, then the command's id, op,
// user kind, user value and domain, each as a 2-byte big-endian length and
// the bytes. It binds the sealed secret to this command and this user.
func secretInfo(c *Command) []byte {
	kind, value := c.User.Kind()
	fields := [...]string{c.ID, string(c.Op), kind, value, c.User.Domain}
	n := len(infoLabel)
	for _, f := range fields {
		n += 2 + len(f)
	}
	b := make([]byte, 0, n)
	b = append(b, infoLabel...)
	for _, f := range fields {
		b = binary.BigEndian.AppendUint16(b, uint16(len(f)))
		b = append(b, f...)
	}
	return b
}

var (
	aadNew = []byte("new")
	aadOld = []byte("old")
)

// Seal seals the command's password(s) to the connector key and sets
// c.Secret. It must be called after every other field of c is final (the id,
// op and user are bound into the ciphertext). newPw is required; oldPw only
// for OpChange. Each plaintext is padded with zero bytes to
// MaxPasswordBytes, so the ciphertext does not reveal the password length.
func Seal(c *Command, to SealKey, suite Suite, newPw, oldPw Secret) error {
	if !c.Op.HasSecret() {
		return invalid("secret", "op "+string(c.Op)+" carries no secret")
	}
	if err := validKID("seal key id", to.KID); err != nil {
		return err
	}
	if to.Key == nil || suite.KDF == nil || suite.AEAD == nil {
		return fmt.Errorf("protocol: seal: key and suite are required")
	}
	if err := ValidatePassword(newPw); err != nil {
		return err
	}
	if c.Op == OpChange {
		if err := ValidatePassword(oldPw); err != nil {
			return err
		}
	} else if !oldPw.IsEmpty() {
		return invalid("secret.old", "only allowed with op change")
	}
	if _, value := c.User.Kind(); value == "" {
		return invalid("user", "exactly one of objectGUID, immutableId, upn, sam is required")
	}
	enc, s, err := hpke.NewSender(to.Key, suite.KDF, suite.AEAD, secretInfo(c))
	if err != nil {
		return fmt.Errorf("protocol: seal: %w", err)
	}
	sealed := &Sealed{
		KID: to.KID, KEM: to.Key.KEM().ID(), KDF: suite.KDF.ID(), AEAD: suite.AEAD.ID(),
		Enc: b64(enc),
	}
	buf := make([]byte, MaxPasswordBytes)
	defer clear(buf)
	copy(buf, newPw.Bytes())
	ct, err := s.Seal(aadNew, buf)
	if err != nil {
		return fmt.Errorf("protocol: seal: %w", err)
	}
	sealed.New = b64(ct)
	if c.Op == OpChange {
		clear(buf)
		copy(buf, oldPw.Bytes())
		ct, err := s.Seal(aadOld, buf)
		if err != nil {
			return fmt.Errorf("protocol: seal: %w", err)
		}
		sealed.Old = b64(ct)
	}
	c.Secret = sealed
	return nil
}

// Open opens the command's sealed secret with the connector key its kid
// names. Errors are *Error with Kind ErrUnknownRecipient, ErrDecrypt,
// ErrBadSecret or ErrInvalidField; they never contain plaintext.
func (c *Command) Open(keys OpenKeys) (Secrets, error) {
	s := c.Secret
	if s == nil {
		return Secrets{}, invalid("secret", "missing")
	}
	if err := s.validate(c.Op); err != nil {
		return Secrets{}, err
	}
	priv, ok := keys[s.KID]
	if !ok || priv == nil {
		return Secrets{}, newError(ErrUnknownRecipient, fmt.Sprintf("kid %q", s.KID), nil)
	}
	if priv.KEM().ID() != s.KEM {
		return Secrets{}, newError(ErrDecrypt, fmt.Sprintf("kem 0x%04x does not match key %q", s.KEM, s.KID), nil)
	}
	kdf, err := hpke.NewKDF(s.KDF)
	if err != nil {
		return Secrets{}, invalid("secret.kdf", "unsupported")
	}
	aead, err := hpke.NewAEAD(s.AEAD)
	if err != nil {
		return Secrets{}, invalid("secret.aead", "unsupported")
	}
	enc, err := decodeB64("secret.enc", s.Enc, maxEnc)
	if err != nil {
		return Secrets{}, err
	}
	r, err := hpke.NewRecipient(enc, priv, kdf, aead, secretInfo(c))
	if err != nil {
		return Secrets{}, newError(ErrDecrypt, "bad encapsulated key", nil)
	}
	var out Secrets
	out.New, err = openOne(r, "secret.new", s.New, aadNew)
	if err != nil {
		return Secrets{}, err
	}
	if c.Op == OpChange {
		out.Old, err = openOne(r, "secret.old", s.Old, aadOld)
		if err != nil {
			out.Zero()
			return Secrets{}, err
		}
	}
	return out, nil
}

func openOne(r *hpke.Recipient, field, ctB64 string, aad []byte) (Secret, error) {
	ct, err := decodeB64(field, ctB64, MaxSealedSecret)
	if err != nil {
		return Secret{}, err
	}
	pt, err := r.Open(aad, ct)
	if err != nil {
		return Secret{}, newError(ErrDecrypt, field, nil)
	}
	// Strip the zero padding; passwords never contain NUL.
	n := len(pt)
	for n > 0 && pt[n-1] == 0 {
		n--
	}
	sec := NewSecret(pt[:n])
	if err := ValidatePassword(sec); err != nil {
		clear(pt)
		var pe *Error
		if errors.As(err, &pe) {
			pe.Detail = field + ": " + pe.Detail
		}
		return Secret{}, err
	}
	return sec, nil
}
