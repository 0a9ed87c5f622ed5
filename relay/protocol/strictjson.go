package protocol

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
// trailing data), with no duplicate member names, no member name that
// differs from the schema (encoding/json would match case-insensitively),
// no null, nesting at most maxJSONDepth. Numbers decode as json.Number
// into interface values.
func strictDecode(data []byte, sch schema, v any) error {
	if !utf8.Valid(data) {
		return newError(ErrMalformed, "not valid UTF-8", nil)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return newError(ErrMalformed, "not JSON", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return newError(ErrMalformed, "not a JSON object", nil)
	}
	if err := walkObject(dec, sch, "", 1); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return newError(ErrMalformed, "trailing data after the JSON object", nil)
	}

	dec = json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var pe *Error
		if errors.As(err, &pe) {
			return pe
		}
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			return newError(ErrInvalidField, fmt.Sprintf("%s: wrong JSON type", ute.Field), nil)
		}
		// Unknown names were already rejected by the walk; anything left is
		// a value the Go type cannot hold.
		return newError(ErrInvalidField, "", err)
	}
	return nil
}

// walkObject consumes the members of an object whose '{' was just read.
func walkObject(dec *json.Decoder, sch schema, parent string, depth int) error {
	if depth > maxJSONDepth {
		return newError(ErrMalformed, "nested too deeply", nil)
	}
	allowed, ok := sch[parent]
	if !ok {
		return newError(ErrInvalidField, fmt.Sprintf("%s: must not be an object", parent), nil)
	}
	seen := make(map[string]bool, 8)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return newError(ErrMalformed, "bad JSON", err)
		}
		name, ok := tok.(string)
		if !ok {
			return newError(ErrMalformed, "bad member name", nil)
		}
		if seen[name] {
			return newError(ErrMalformed, fmt.Sprintf("duplicate member %q", name), nil)
		}
		seen[name] = true
		if allowed == nil {
			if !validFieldKey(name) {
				return newError(ErrInvalidField, fmt.Sprintf("%s: bad key %q", parent, name), nil)
			}
		} else if !allowed[name] {
			return newError(ErrUnknownField, fmt.Sprintf("%q", name), nil)
		}
		if err := walkValue(dec, sch, name, depth); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // '}'
		return newError(ErrMalformed, "bad JSON", err)
	}
	return nil
}

func walkValue(dec *json.Decoder, sch schema, key string, depth int) error {
	tok, err := dec.Token()
	if err != nil {
		return newError(ErrMalformed, "bad JSON", err)
	}
	switch t := tok.(type) {
	case nil:
		return newError(ErrInvalidField, fmt.Sprintf("%s: null is not allowed", key), nil)
	case json.Delim:
		switch t {
		case '{':
			return walkObject(dec, sch, key, depth+1)
		case '[':
			if depth+1 > maxJSONDepth {
				return newError(ErrMalformed, "nested too deeply", nil)
			}
			for dec.More() {
				if err := walkValue(dec, sch, key, depth+1); err != nil {
					return err
				}
			}
			if _, err := dec.Token(); err != nil { // ']'
				return newError(ErrMalformed, "bad JSON", err)
			}
		}
	}
	return nil
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
	for i := 0; i < len(s); i++ {
		if s[i] == '\r' || s[i] == '\n' {
			return nil, newError(ErrMalformed, fmt.Sprintf("%s: line break in base64", field), nil)
		}
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, newError(ErrMalformed, fmt.Sprintf("%s: bad base64", field), nil)
	}
	if len(b) > max {
		return nil, newError(ErrTooLarge, fmt.Sprintf("%s: longer than %d bytes", field, max), nil)
	}
	return b, nil
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
