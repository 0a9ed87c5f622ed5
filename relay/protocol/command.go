package protocol

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Version is the newest protocol version this package speaks ("v":2):
// it sends v2 commands and results. A v1 command (the same members) is
// still accepted and answered with a v1 result (MinVersion).
const Version = 2

// MinVersion is the oldest protocol version accepted.
const MinVersion = 1

// supported reports whether v is a protocol version this package reads.
func supported(v int) bool { return v >= MinVersion && v <= Version }

// Op is a command's operation.
type Op string

// The operations of protocol v1.
const (
	// OpReset sets a new password (administrative reset).
	OpReset Op = "reset"
	// OpChange changes the password as the user, proving the old one.
	OpChange Op = "change"
	// OpUnlock clears the account lockout; it carries no secret.
	OpUnlock Op = "unlock"
	// OpCheck evaluates the candidate against the user's live policy
	// without applying it.
	OpCheck Op = "check"
)

// Valid reports whether o is an operation of the latest version.
func (o Op) Valid() bool { return o.ValidIn(Version) }

// HasSecret reports whether the operation carries a sealed secret.
func (o Op) HasSecret() bool { return o == OpReset || o == OpChange || o == OpCheck }

// UserRef names the target account by exactly one of its identifiers, with
// an optional DNS domain name.
type UserRef struct {
	// ObjectGUID is the account's objectGUID in its usual text form
	// (8-4-4-4-12 hex digits, as .NET Guid.ToString and Get-ADUser show it).
	ObjectGUID string `json:"objectGUID,omitempty"`
	// ImmutableID is the Entra ID "immutableId": the standard base64 of
	// the account's 16-byte ms-DS-ConsistencyGuid or objectGUID (Entra
	// Connect anchors on either; the connector matches both).
	ImmutableID string `json:"immutableId,omitempty"`
	// UPN is the userPrincipalName.
	UPN string `json:"upn,omitempty"`
	// SAM is the sAMAccountName.
	SAM string `json:"sam,omitempty"`
	// Domain optionally restricts the lookup to one AD domain (DNS name).
	Domain string `json:"domain,omitempty"`
}

// The user reference kinds, as named on the wire.
const (
	UserKindObjectGUID  = "objectGUID"
	UserKindImmutableID = "immutableId"
	UserKindUPN         = "upn"
	UserKindSAM         = "sam"
)

// Kind returns which identifier is set and its value, or "" if none or more
// than one is set.
func (u UserRef) Kind() (kind, value string) {
	n := 0
	for _, kv := range [...][2]string{
		{UserKindObjectGUID, u.ObjectGUID}, {UserKindImmutableID, u.ImmutableID},
		{UserKindUPN, u.UPN}, {UserKindSAM, u.SAM},
	} {
		if kv[1] != "" {
			n++
			kind, value = kv[0], kv[1]
		}
	}
	if n != 1 {
		return "", ""
	}
	return kind, value
}

// Options modify a reset.
type Options struct {
	// MustChange forces a password change at next logon (pwdLastSet=0).
	MustChange bool `json:"mustChange,omitempty"`
	// Unlock also clears the lockout (lockoutTime=0) with the reset.
	Unlock bool `json:"unlock,omitempty"`
}

// ActorKind says who asked for the command.
type ActorKind string

// The actor kinds of protocol v1.
const (
	ActorSelfService ActorKind = "self_service"
	ActorAdmin       ActorKind = "admin"
)

// Actor identifies who asked, opaquely, for the audit log.
type Actor struct {
	Kind ActorKind `json:"kind"`
	ID   string    `json:"id"`
}

// Sealed is the HPKE-sealed secret of a command (see seal.go).
type Sealed struct {
	// KID is the connector key the secret is sealed to.
	KID string `json:"kid"`
	// KEM, KDF and AEAD are the RFC 9180 algorithm identifiers.
	KEM  uint16 `json:"kem"`
	KDF  uint16 `json:"kdf"`
	AEAD uint16 `json:"aead"`
	// Enc is the base64 encapsulated key.
	Enc string `json:"enc"`
	// New is the base64 ciphertext of the new password (sequence 0).
	New string `json:"new"`
	// Old is the base64 ciphertext of the old password (sequence 1), for
	// OpChange only.
	Old string `json:"old,omitempty"`
}

// Command is the signed payload of a command envelope.
type Command struct {
	V         int       `json:"v"`
	ID        string    `json:"id"`
	Op        Op        `json:"op"`
	User      UserRef   `json:"user"`
	Options   Options   `json:"options,omitzero"`
	Actor     Actor     `json:"actor"`
	IssuedAt  Timestamp `json:"issuedAt"`
	ExpiresAt Timestamp `json:"expiresAt"`
	Secret    *Sealed   `json:"secret,omitempty"`
}

var commandSchema = schema{
	"":        keys("v", "id", "op", "user", "options", "actor", "issuedAt", "expiresAt", "secret"),
	"user":    keys("objectGUID", "immutableId", "upn", "sam", "domain"),
	"options": keys("mustChange", "unlock"),
	"actor":   keys("kind", "id"),
	"secret":  keys("kid", "kem", "kdf", "aead", "enc", "new", "old"),
}

// Timestamp is an instant on the wire: an RFC 3339 string in UTC ending in
// "Z", with optional fractional seconds ("2025-06-01T12:00:00Z").
type Timestamp struct{ time.Time }

// At makes a Timestamp (converted to UTC).
func At(t time.Time) Timestamp { return Timestamp{t.UTC()} }

// MarshalJSON writes RFC 3339 in UTC.
func (t Timestamp) MarshalJSON() ([]byte, error) {
	return []byte(`"` + t.UTC().Format(time.RFC3339Nano) + `"`), nil
}

// timestampForm is the one accepted form of a timestamp (PROTOCOL.md §2):
// upper-case T and Z, a fraction of 1 to 9 digits after a full stop.
var timestampForm = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?Z$`)

// UnmarshalJSON accepts only an RFC 3339 string in UTC ("Z").
func (t *Timestamp) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return newError(ErrInvalidField, "timestamp: not a string", nil)
	}
	if !timestampForm.MatchString(s) {
		return newError(ErrInvalidField, "timestamp: must be YYYY-MM-DDTHH:MM:SS, optionally . and 1 to 9 digits, then Z", nil)
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return newError(ErrInvalidField, "timestamp: not RFC 3339", nil)
	}
	t.Time = v.UTC()
	return nil
}

// Validate checks every field of the command, independently of keys and
// clocks. The errors are *Error with Kind ErrUnsupportedVersion or
// ErrInvalidField (or ErrMalformed/ErrTooLarge for base64).
func (c *Command) Validate() error {
	if !supported(c.V) {
		return newError(ErrUnsupportedVersion, fmt.Sprintf("v=%d", c.V), nil)
	}
	if err := validID("id", c.ID); err != nil {
		return err
	}
	if !c.Op.ValidIn(c.V) {
		return invalid("op", opsText(c.V))
	}
	if err := c.User.validate(); err != nil {
		return err
	}
	if c.Op != OpReset && c.Options != (Options{}) {
		return invalid("options", "only allowed with op reset")
	}
	if c.Actor.Kind != ActorSelfService && c.Actor.Kind != ActorAdmin {
		return invalid("actor.kind", "must be self_service or admin")
	}
	if err := validText("actor.id", c.Actor.ID, 256); err != nil {
		return err
	}
	if c.IssuedAt.IsZero() {
		return invalid("issuedAt", "required")
	}
	if c.ExpiresAt.IsZero() {
		return invalid("expiresAt", "required")
	}
	if !c.ExpiresAt.After(c.IssuedAt.Time) {
		return invalid("expiresAt", "must be after issuedAt")
	}
	switch {
	case !c.Op.HasSecret() && c.Secret != nil:
		return invalid("secret", "not allowed with op "+string(c.Op))
	case c.Op.HasSecret() && c.Secret == nil:
		return invalid("secret", "required with op "+string(c.Op))
	case c.Secret != nil:
		return c.Secret.validate(c.Op)
	}
	return nil
}

// Validate checks the user reference alone (exactly one identifier, each
// in its form, optional DNS domain).
func (u UserRef) Validate() error { return u.validate() }

func (u UserRef) validate() error {
	kind, v := u.Kind()
	switch kind {
	case "":
		return invalid("user", "exactly one of objectGUID, immutableId, upn, sam is required")
	case UserKindObjectGUID:
		if !isGUID(v) {
			return invalid("user.objectGUID", "must be 8-4-4-4-12 hex digits")
		}
	case UserKindImmutableID:
		b, err := strictBase64(v)
		if err != nil || len(b) != 16 {
			return invalid("user.immutableId", "must be the base64 of 16 bytes")
		}
	case UserKindUPN:
		at := strings.LastIndexByte(v, '@')
		if at <= 0 || at == len(v)-1 {
			return invalid("user.upn", "must be name@suffix")
		}
		if err := validText("user.upn", v, 1024); err != nil {
			return err
		}
		if strings.ContainsFunc(v, unicode.IsSpace) {
			return invalid("user.upn", "must not contain spaces")
		}
	case UserKindSAM:
		if err := validText("user.sam", v, 256); err != nil {
			return err
		}
		if strings.ContainsAny(v, `"/\[]:;|=,+*?<>`) {
			return invalid("user.sam", `must not contain any of "/\[]:;|=,+*?<>`)
		}
	}
	if u.Domain != "" && !isDNSName(u.Domain) {
		return invalid("user.domain", "must be a DNS domain name")
	}
	return nil
}

// maxEnc bounds the encapsulated key (ML-KEM-1024 hybrids are the largest).
const maxEnc = 1700

// MaxSealedSecret is the longest accepted password ciphertext: the padded
// plaintext plus the 16-byte AEAD tag.
const MaxSealedSecret = MaxPasswordBytes + 16

func (s *Sealed) validate(op Op) error {
	if err := validKID("secret.kid", s.KID); err != nil {
		return err
	}
	if _, err := suiteOf(s.KEM, s.KDF, s.AEAD); err != nil {
		return err
	}
	if _, err := decodeB64("secret.enc", s.Enc, maxEnc); err != nil {
		return err
	}
	if s.Enc == "" {
		return invalid("secret.enc", "required")
	}
	if s.New == "" {
		return invalid("secret.new", "required")
	}
	if _, err := decodeB64("secret.new", s.New, MaxSealedSecret); err != nil {
		return err
	}
	switch {
	case op == OpChange && s.Old == "":
		return invalid("secret.old", "required with op change")
	case op != OpChange && s.Old != "":
		return invalid("secret.old", "only allowed with op change")
	case s.Old != "":
		if _, err := decodeB64("secret.old", s.Old, MaxSealedSecret); err != nil {
			return err
		}
	}
	return nil
}

func invalid(field, why string) *Error {
	return newError(ErrInvalidField, field+": "+why, nil)
}

// validID: 1..128 characters from [A-Za-z0-9._:-] (fits a Service Bus
// MessageId).
func validID(field, s string) error {
	if len(s) == 0 || len(s) > 128 {
		return invalid(field, "must be 1 to 128 characters")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return invalid(field, "may only contain A-Z a-z 0-9 . _ : -")
		}
	}
	return nil
}

// validKID: 1..64 characters from [A-Za-z0-9._-].
func validKID(field, s string) error {
	if len(s) == 0 || len(s) > 64 {
		return invalid(field, "must be 1 to 64 characters")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return invalid(field, "may only contain A-Z a-z 0-9 . _ -")
		}
	}
	return nil
}

// validText: non-empty, at most max bytes, valid UTF-8, no control
// characters.
func validText(field, s string, max int) error {
	if s == "" {
		return invalid(field, "required")
	}
	if len(s) > max {
		return invalid(field, fmt.Sprintf("longer than %d bytes", max))
	}
	if !utf8.ValidString(s) || strings.ContainsFunc(s, unicode.IsControl) {
		return invalid(field, "must be printable UTF-8")
	}
	return nil
}

func isGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return false
			}
		}
	}
	return true
}

func isDNSName(s string) bool {
	if len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// encodeJSON marshals v without HTML escaping and without a trailing
// newline.
func encodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
