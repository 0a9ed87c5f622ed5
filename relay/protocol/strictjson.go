package protocol

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// schema names, for each enclosing key ("" = the top-level object), the
// exact member names an object there may have. A nil set means "any name
// that is a valid field key" (used for Violation.Fields). Objects under a
// key not in the schema are rejected.
type schema map[string]map[string]bool

func keys(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

const maxJSONDepth = 5

// strictDecode decodes one JSON object from data into v, more strictly than
// encoding/json: data must be valid UTF-8 holding exactly one object (no
// trailing data), with no duplicate member names, member names exactly as
// the schema spells them (encoding/json would match case-insensitively) and
// without escapes, no null, nesting at most maxJSONDepth. Numbers decode as
// json.Number into interface values.
func strictDecode(data []byte, sch schema, v any) error {
	if err := scan(data, sch); err != nil {
		return err
	}
	// The scan above checked names and shape but not full JSON syntax;
	// encoding/json does that now. Unknown names cannot reach it;
	// DisallowUnknownFields still guards a schema naming a member its
	// struct lacks.
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var pe *Error
		if errors.As(err, &pe) {
			return pe
		}
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return newError(ErrMalformed, fmt.Sprintf("bad JSON at byte %d", se.Offset), nil)
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return newError(ErrMalformed, "truncated JSON", nil)
		}
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			return newError(ErrInvalidField, fmt.Sprintf("%s: wrong JSON type", ute.Field), nil)
		}
		return newError(ErrInvalidField, "", err)
	}
	return nil
}

// scan checks the structure of data against sch (PROTOCOL.md §2): valid
// UTF-8, exactly one object, member names, duplicates, null, depth, member
// counts and surrogate escapes. It does not validate literals.
func scan(data []byte, sch schema) error {
	if !utf8.Valid(data) {
		return newError(ErrMalformed, "not valid UTF-8", nil)
	}
	sc := scanner{data: data, sch: sch}
	sc.skipSpace()
	if sc.i >= len(data) || data[sc.i] != '{' {
		return newError(ErrMalformed, "not a JSON object", nil)
	}
	if err := sc.value("", 0); err != nil {
		return err
	}
	sc.skipSpace()
	if sc.i != len(data) {
		return newError(ErrMalformed, "trailing data after the JSON object", nil)
	}
	return nil
}

// scanner is a single-pass structural check of JSON text: member names
// against the schema, duplicates, nulls and depth. It does not validate
// literals or string escapes (encoding/json does, afterwards), but it
// follows the structure of any valid JSON text exactly.
type scanner struct {
	data []byte
	i    int
	sch  schema
}

func (s *scanner) skipSpace() {
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) malformed() error {
	return newError(ErrMalformed, fmt.Sprintf("bad JSON at byte %d", s.i), nil)
}

// value scans one value; key is the member name it belongs to.
func (s *scanner) value(key string, depth int) error {
	s.skipSpace()
	if s.i >= len(s.data) {
		return s.malformed()
	}
	switch c := s.data[s.i]; {
	case c == '{':
		return s.object(key, depth+1)
	case c == '[':
		if depth+1 > maxJSONDepth {
			return newError(ErrMalformed, "nested too deeply", nil)
		}
		s.i++
		s.skipSpace()
		if s.i < len(s.data) && s.data[s.i] == ']' {
			s.i++
			return nil
		}
		for {
			if err := s.value(key, depth+1); err != nil {
				return err
			}
			s.skipSpace()
			if s.i >= len(s.data) {
				return s.malformed()
			}
			switch s.data[s.i] {
			case ',':
				s.i++
			case ']':
				s.i++
				return nil
			default:
				return s.malformed()
			}
		}
	case c == '"':
		_, err := s.str()
		return err
	case c == 'n':
		return newError(ErrInvalidField, fmt.Sprintf("%s: null is not allowed", key), nil)
	case c == 't' || c == 'f' || c == '-' || c >= '0' && c <= '9':
		start := s.i
		for s.i < len(s.data) {
			c := s.data[s.i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'E') {
				break
			}
			s.i++
		}
		if s.i == start {
			return s.malformed()
		}
		return nil
	default:
		return s.malformed()
	}
}

// str scans a string starting at its quote and returns its raw content.
// It refuses a \u escape of a lone surrogate (a high one not followed by
// a low one, or a low one alone): encoding/json would turn it into
// U+FFFD, another implementation into something else (PROTOCOL.md §2).
func (s *scanner) str() ([]byte, error) {
	s.i++ // opening quote
	start := s.i
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case '"':
			raw := s.data[start:s.i]
			s.i++
			return raw, nil
		case '\\':
			if err := s.escape(); err != nil {
				return nil, err
			}
		default:
			s.i++
		}
	}
	return nil, s.malformed()
}

// escape steps over one escape at s.i; a \u escape of a surrogate must be
// a high one directly followed by an escaped low one.
func (s *scanner) escape() error {
	u, ok := s.hex4(s.i)
	if !ok {
		s.i += 2 // not \uXXXX: encoding/json checks the rest
		return nil
	}
	switch {
	case u >= 0xd800 && u < 0xdc00:
		if lo, ok := s.hex4(s.i + 6); ok && lo >= 0xdc00 && lo < 0xe000 {
			s.i += 12
			return nil
		}
		return newError(ErrMalformed, fmt.Sprintf("lone surrogate escape at byte %d", s.i), nil)
	case u >= 0xdc00 && u < 0xe000:
		return newError(ErrMalformed, fmt.Sprintf("lone surrogate escape at byte %d", s.i), nil)
	}
	s.i += 6
	return nil
}

// hex4 reads the code unit of a \uXXXX escape starting at i.
func (s *scanner) hex4(i int) (rune, bool) {
	if i+6 > len(s.data) || s.data[i] != '\\' || s.data[i+1] != 'u' {
		return 0, false
	}
	var u rune
	for _, c := range s.data[i+2 : i+6] {
		switch {
		case c >= '0' && c <= '9':
			u = u<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			u = u<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			u = u<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return u, true
}

func (s *scanner) object(parent string, depth int) error {
	if depth > maxJSONDepth {
		return newError(ErrMalformed, "nested too deeply", nil)
	}
	allowed, ok := s.sch[parent]
	if !ok {
		return newError(ErrInvalidField, fmt.Sprintf("%s: must not be an object", parent), nil)
	}
	s.i++ // '{'
	s.skipSpace()
	if s.i < len(s.data) && s.data[s.i] == '}' {
		s.i++
		return nil
	}
	var seen [16]string
	n := 0
	for {
		s.skipSpace()
		if s.i >= len(s.data) || s.data[s.i] != '"' {
			return s.malformed()
		}
		raw, err := s.str()
		if err != nil {
			return err
		}
		if bytes.IndexByte(raw, '\\') >= 0 || len(raw) > 64 {
			return newError(ErrUnknownField, "member name with an escape or too long", nil)
		}
		name := string(raw)
		if allowed == nil {
			if !validFieldKey(name) {
				return newError(ErrInvalidField, fmt.Sprintf("%s: bad key %q", parent, name), nil)
			}
		} else if !allowed[name] {
			return newError(ErrUnknownField, fmt.Sprintf("%q", name), nil)
		}
		for _, prev := range seen[:n] {
			if prev == name {
				return newError(ErrMalformed, fmt.Sprintf("duplicate member %q", name), nil)
			}
		}
		if n == len(seen) {
			return newError(ErrInvalidField, fmt.Sprintf("%s: more than %d members", parent, len(seen)), nil)
		}
		seen[n] = name
		n++
		s.skipSpace()
		if s.i >= len(s.data) || s.data[s.i] != ':' {
			return s.malformed()
		}
		s.i++
		if err := s.value(name, depth); err != nil {
			return err
		}
		s.skipSpace()
		if s.i >= len(s.data) {
			return s.malformed()
		}
		switch s.data[s.i] {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return s.malformed()
		}
	}
}

// validFieldKey: [a-z][a-z0-9_]{0,63}.
func validFieldKey(s string) bool {
	if len(s) == 0 || len(s) > 64 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// decodeB64 decodes standard, padded base64 strictly: no line breaks, no
// non-zero padding bits, and at most max decoded bytes.
func decodeB64(field, s string, max int) ([]byte, error) {
	if base64.StdEncoding.DecodedLen(len(s)) > max+2 {
		return nil, newError(ErrTooLarge, fmt.Sprintf("%s: longer than %d bytes", field, max), nil)
	}
	b, err := strictBase64(s)
	if err != nil {
		return nil, newError(ErrMalformed, fmt.Sprintf("%s: bad base64", field), nil)
	}
	if len(b) > max {
		return nil, newError(ErrTooLarge, fmt.Sprintf("%s: longer than %d bytes", field, max), nil)
	}
	return b, nil
}

// strictBase64 decodes standard, padded base64 with nothing else in it:
// encoding/base64 skips line breaks even in Strict mode, this does not.
func strictBase64(s string) ([]byte, error) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, errors.New("line break in base64")
	}
	return base64.StdEncoding.Strict().DecodeString(s)
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
