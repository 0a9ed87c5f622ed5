package protocol

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// MaxEnvelopeSize is the largest envelope accepted, in bytes. A typical
// command envelope is about 5 KiB.
const MaxEnvelopeSize = 64 << 10

// Envelope types.
const (
	TypeCommand = "command"
	TypeResult  = "result"
)

// Envelope is the outer JSON object of every message: the exact payload
// bytes (base64) and a detached Ed25519 signature over them.
type Envelope struct {
	V       int    `json:"v"`
	Type    string `json:"type"`
	KID     string `json:"kid"`
	Sig     string `json:"sig"`
	Payload string `json:"payload"`
}

var envelopeSchema = schema{"": keys("v", "type", "kid", "sig", "payload")}

// SigningKey is an Ed25519 private key with its key id.
type SigningKey struct {
	KID string
	Key ed25519.PrivateKey
}

// VerifyKeys are Ed25519 public keys by key id.
type VerifyKeys map[string]ed25519.PublicKey

// SigningInput is what the signature covers: the ASCII label
// "adwriteback-v1-" + type, one zero byte, then the payload bytes exactly
// as carried (after base64 decoding). The label keeps a command signature
// from ever verifying as a result signature and vice versa.
func SigningInput(typ string, payload []byte) []byte {
	b := make([]byte, 0, len("adwriteback-v1-")+len(typ)+1+len(payload))
	b = append(b, "adwriteback-v1-"...)
	b = append(b, typ...)
	b = append(b, 0)
	return append(b, payload...)
}

// ReadEnvelope reads one envelope from r, refusing (without reading on)
// anything longer than MaxEnvelopeSize.
func ReadEnvelope(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxEnvelopeSize+1))
	if err != nil {
		return nil, fmt.Errorf("protocol: read envelope: %w", err)
	}
	if len(b) > MaxEnvelopeSize {
		return nil, newError(ErrTooLarge, fmt.Sprintf("envelope larger than %d bytes", MaxEnvelopeSize), nil)
	}
	return b, nil
}

func signEnvelope(v int, typ string, payload []byte, k SigningKey) ([]byte, error) {
	if err := validKID("signing key id", k.KID); err != nil {
		return nil, err
	}
	if len(k.Key) != ed25519.PrivateKeySize {
		return nil, errors.New("protocol: sign: no Ed25519 private key")
	}
	env := Envelope{
		V: v, Type: typ, KID: k.KID,
		Sig:     b64(ed25519.Sign(k.Key, SigningInput(typ, payload))),
		Payload: b64(payload),
	}
	out, err := encodeJSON(env)
	if err != nil {
		return nil, fmt.Errorf("protocol: sign: %w", err)
	}
	if len(out) > MaxEnvelopeSize {
		return nil, newError(ErrTooLarge, fmt.Sprintf("envelope larger than %d bytes", MaxEnvelopeSize), nil)
	}
	return out, nil
}

// verified is an envelope's checked content: the payload bytes, the
// signer's key id and the envelope's version (which the payload's must
// equal).
type verified struct {
	payload []byte
	kid     string
	v       int
}

// verifyEnvelope checks an envelope of the given type.
func verifyEnvelope(raw []byte, typ string, keys VerifyKeys) (verified, error) {
	payload, kid, v, err := openEnvelope(raw, typ, keys)
	return verified{payload: payload, kid: kid, v: v}, err
}

func openEnvelope(raw []byte, typ string, keys VerifyKeys) (payload []byte, kid string, v int, err error) {
	if len(raw) > MaxEnvelopeSize {
		return nil, "", 0, newError(ErrTooLarge, fmt.Sprintf("envelope larger than %d bytes", MaxEnvelopeSize), nil)
	}
	var env Envelope
	if err := strictDecode(raw, envelopeSchema, &env); err != nil {
		return nil, "", 0, err
	}
	if !supported(env.V) {
		return nil, "", 0, newError(ErrUnsupportedVersion, fmt.Sprintf("v=%d", env.V), nil)
	}
	if env.Type != typ {
		return nil, "", 0, invalid("type", fmt.Sprintf("must be %q", typ))
	}
	if env.Sig == "" || env.KID == "" {
		return nil, "", 0, newError(ErrUnsigned, "", nil)
	}
	if err := validKID("kid", env.KID); err != nil {
		return nil, "", 0, err
	}
	pub, ok := keys[env.KID]
	if !ok || len(pub) != ed25519.PublicKeySize {
		return nil, "", 0, newError(ErrUnknownSigner, fmt.Sprintf("kid %q", env.KID), nil)
	}
	sig, err := decodeB64("sig", env.Sig, ed25519.SignatureSize)
	if err != nil {
		return nil, "", 0, err
	}
	if len(sig) != ed25519.SignatureSize {
		return nil, "", 0, newError(ErrBadSignature, "signature is not 64 bytes", nil)
	}
	if env.Payload == "" {
		return nil, "", 0, newError(ErrMalformed, "payload: empty", nil)
	}
	payload, err = decodeB64("payload", env.Payload, MaxEnvelopeSize)
	if err != nil {
		return nil, "", 0, err
	}
	if !ed25519.Verify(pub, SigningInput(typ, payload), sig) {
		return nil, "", 0, newError(ErrBadSignature, fmt.Sprintf("kid %q", env.KID), nil)
	}
	return payload, env.KID, env.V, nil
}

// VerifiedCommand is a command whose signature, syntax and fields have been
// checked (but not its times, replay or secret: see Receiver).
type VerifiedCommand struct {
	Command
	// SignerKID is the key id of the sender key that signed it.
	SignerKID string
	// Digest is the SHA-256 of the signed payload bytes; a replay cache uses
	// it to tell a redelivery of the same command from a different command
	// reusing an id.
	Digest [32]byte
}

// SignCommand validates c and returns its signed envelope. c.Secret must
// already be sealed (Seal) for operations that carry one.
func SignCommand(c *Command, k SigningKey) ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	payload, err := encodeJSON(c)
	if err != nil {
		return nil, fmt.Errorf("protocol: encode command: %w", err)
	}
	return signEnvelope(c.V, TypeCommand, payload, k)
}

// VerifyCommand checks a command envelope's size, syntax, signature (by
// the sender key its kid names) and every field. It does not check times,
// replay or the sealed secret; Receiver.Receive does all of it.
func VerifyCommand(raw []byte, keys VerifyKeys) (*VerifiedCommand, error) {
	env, err := verifyEnvelope(raw, TypeCommand, keys)
	if err != nil {
		return nil, err
	}
	v := &VerifiedCommand{SignerKID: env.kid, Digest: sha256.Sum256(env.payload)}
	if err := decodeCommand(env.payload, &v.Command); err != nil {
		err.CommandID = answerableID(env.payload)
		return nil, err
	}
	if v.V != env.v {
		e := invalid("v", fmt.Sprintf("payload v=%d differs from the envelope's v=%d", v.V, env.v))
		e.CommandID = v.ID
		return nil, e
	}
	return v, nil
}

// answerableID is the id a signed command that failed its payload rules
// is answered under (PROTOCOL.md §6): its "id" member, when the payload is
// well-formed JSON of §2 (structure and syntax) and the member is a valid
// id; else "" (no answer: the message is dead-lettered). It does not
// depend on where in the payload the failure is.
func answerableID(payload []byte) string {
	if scan(payload, commandSchema) != nil {
		return ""
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(payload, &m) != nil {
		return ""
	}
	var id string
	if json.Unmarshal(m["id"], &id) != nil || validID("id", id) != nil {
		return ""
	}
	return id
}

// EnvelopeDigest is the SHA-256 of an envelope's payload bytes (for a
// command, its Digest, which a v2 result names as commandDigest). It
// checks the envelope's syntax, not its signature: for the sender that
// built it.
func EnvelopeDigest(raw []byte) ([32]byte, error) {
	var env Envelope
	if err := strictDecode(raw, envelopeSchema, &env); err != nil {
		return [32]byte{}, err
	}
	payload, err := decodeB64("payload", env.Payload, MaxEnvelopeSize)
	if err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256(payload), nil
}

// ParseCommand strictly decodes and validates a command payload (the JSON
// inside an envelope), without any signature. For tools and tests.
func ParseCommand(payload []byte) (*Command, error) {
	var c Command
	if err := decodeCommand(payload, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

func decodeCommand(payload []byte, c *Command) *Error {
	if err := strictDecode(payload, commandSchema, c); err != nil {
		return asError(err)
	}
	if err := c.Validate(); err != nil {
		return asError(err)
	}
	return nil
}

func asError(err error) *Error {
	var pe *Error
	if errors.As(err, &pe) {
		return pe
	}
	return newError(ErrMalformed, "", err)
}
