package protocol

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxPasswordUTF16 is the longest password accepted, in UTF-16 code units
// (the unit Active Directory counts in).
const MaxPasswordUTF16 = 256

// MaxPasswordBytes is the longest UTF-8 encoding of a password of
// MaxPasswordUTF16 code units (every BMP rune is at most 3 bytes and one
// unit; a supplementary rune is 4 bytes and two units).
const MaxPasswordBytes = 3 * MaxPasswordUTF16

const redacted = "[REDACTED]"

// Secret holds a plaintext password. Every way of printing, logging or
// marshalling it yields "[REDACTED]". The bytes live behind a pointer so
// that even fmt's reflection on an unexported field shows only an address.
// Call Zero when done; copies of a Secret share (and zero) one buffer.
type Secret struct {
	p *secretBuf
}

type secretBuf struct{ b []byte }

// NewSecret takes ownership of b (it will be zeroed by Zero).
func NewSecret(b []byte) Secret {
	return Secret{p: &secretBuf{b: b}}
}

// SecretFromString copies s into a new Secret. The string itself cannot be
// zeroed; prefer NewSecret with a buffer you own.
func SecretFromString(s string) Secret {
	return NewSecret([]byte(s))
}

// ReadSecret reads one password line from r (for example standard
// input): the bytes up to the first "\n" or the end of input, without the
// line ending ("\n" or "\r\n"). It reads byte by byte, so it never consumes
// past that line (a second call reads the next line) and never holds more
// than MaxPasswordBytes+1 bytes: a longer line is rejected with ErrBadSecret
// without being read to its end. The result is checked by ValidatePassword.
func ReadSecret(r io.Reader) (Secret, error) {
	buf := make([]byte, 0, MaxPasswordBytes+2) // never reallocated: no stray copies
	var one [1]byte
	for {
		n, err := r.Read(one[:])
		if n == 1 {
			if one[0] == '\n' {
				break
			}
			if len(buf) > MaxPasswordBytes {
				clear(buf)
				return Secret{}, newError(ErrBadSecret, fmt.Sprintf("longer than %d bytes", MaxPasswordBytes), nil)
			}
			buf = append(buf, one[0])
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			clear(buf)
			return Secret{}, fmt.Errorf("protocol: read secret: %w", err)
		}
	}
	b := bytes.TrimSuffix(buf, []byte("\r"))
	s := NewSecret(b)
	if err := ValidatePassword(s); err != nil {
		clear(buf)
		return Secret{}, err
	}
	return s, nil
}

// Bytes returns the secret's buffer itself (not a copy). Do not retain it
// past Zero.
func (s Secret) Bytes() []byte {
	if s.p == nil {
		return nil
	}
	return s.p.b
}

// Len is the length in bytes of the UTF-8 encoding.
func (s Secret) Len() int { return len(s.Bytes()) }

// IsEmpty reports whether the secret is absent or empty.
func (s Secret) IsEmpty() bool { return s.Len() == 0 }

// Equal compares two secrets' bytes.
func (s Secret) Equal(t Secret) bool { return bytes.Equal(s.Bytes(), t.Bytes()) }

// Zero overwrites the buffer with zeros and forgets it.
func (s Secret) Zero() {
	if s.p == nil {
		return
	}
	clear(s.p.b)
	s.p.b = nil
}

// String implements fmt.Stringer.
func (s Secret) String() string { return redacted }

// GoString implements fmt.GoStringer.
func (s Secret) GoString() string { return "protocol.Secret(" + redacted + ")" }

// Format implements fmt.Formatter so that every verb (%x, %q, %d...) redacts.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		io.WriteString(f, s.GoString())
		return
	}
	io.WriteString(f, redacted)
}

// MarshalJSON implements json.Marshaler.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText implements encoding.TextMarshaler (YAML, XML and friends).
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// UTF16Len is the password's length in UTF-16 code units.
func (s Secret) UTF16Len() int {
	n := 0
	b := s.Bytes()
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		n += utf16.RuneLen(r)
		b = b[size:]
	}
	return n
}

// ValidatePassword checks that s is a usable password: not empty, valid
// UTF-8, no NUL character, at most MaxPasswordUTF16 UTF-16 code units.
// The error names the rule, never the content.
func ValidatePassword(s Secret) error {
	b := s.Bytes()
	switch {
	case len(b) == 0:
		return newError(ErrBadSecret, "empty", nil)
	case len(b) > MaxPasswordBytes:
		return newError(ErrBadSecret, fmt.Sprintf("longer than %d bytes", MaxPasswordBytes), nil)
	case !utf8.Valid(b):
		return newError(ErrBadSecret, "not valid UTF-8", nil)
	case bytes.IndexByte(b, 0) >= 0:
		return newError(ErrBadSecret, "contains a NUL character", nil)
	}
	if n := s.UTF16Len(); n > MaxPasswordUTF16 {
		return newError(ErrBadSecret, fmt.Sprintf("longer than %d UTF-16 code units", MaxPasswordUTF16), nil)
	}
	return nil
}
