package ldapx

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
)

var errNoRootDSE = errors.New("rootDSE not returned")

// fileTimeUnixOffset is the number of seconds from 1601-01-01 (the origin
// of AD's 100ns timestamps) to the Unix epoch.
const fileTimeUnixOffset = 11644473600

// FileTime converts an AD timestamp (100ns since 1601, as a decimal
// string) to a time; 0, empty and "never" (max int64) give the zero time.
func FileTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("timestamp %q: %w", s, err)
	}
	if v <= 0 || v == 1<<63-1 {
		return time.Time{}, nil
	}
	return time.Unix(v/1e7-fileTimeUnixOffset, (v%1e7)*100).UTC(), nil
}

// Interval converts AD's negative 100ns interval (minPwdAge, lockoutDuration)
// to a duration. "Never" (the most negative int64) and 0 give 0, as does
// anything beyond time.Duration's range.
func Interval(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("interval %q: %w", s, err)
	}
	if v == -1<<63 || v == 0 {
		return 0, nil
	}
	if v < 0 {
		v = -v
	}
	if v > int64(1<<63-1)/100 {
		return 0, nil
	}
	return time.Duration(v * 100), nil
}

// EncodePassword returns the unicodePwd value for pw: the password in
// double quotes, UTF-16LE.
func EncodePassword(pw string) []byte {
	u := utf16.Encode([]rune(`"` + pw + `"`))
	b := make([]byte, 2*len(u))
	for i, v := range u {
		binary.LittleEndian.PutUint16(b[2*i:], v)
	}
	return b
}

// GUIDBytes converts a GUID in its string form
// (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx, braces allowed) to AD's binary
// objectGUID layout: the first three groups little-endian.
func GUIDBytes(s string) ([]byte, error) {
	s = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(s), "{"), "}")
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return nil, fmt.Errorf("%w: GUID must look like xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", ErrInvalidInput)
	}
	hex := strings.ReplaceAll(s, "-", "")
	raw := make([]byte, 16)
	for i := range 16 {
		v, err := strconv.ParseUint(hex[2*i:2*i+2], 16, 8)
		if err != nil {
			return nil, fmt.Errorf("%w: GUID has a non-hex digit", ErrInvalidInput)
		}
		raw[i] = byte(v)
	}
	out := make([]byte, 16)
	out[0], out[1], out[2], out[3] = raw[3], raw[2], raw[1], raw[0]
	out[4], out[5] = raw[5], raw[4]
	out[6], out[7] = raw[7], raw[6]
	copy(out[8:], raw[8:])
	return out, nil
}

// GUIDString is the inverse of GUIDBytes.
func GUIDString(b []byte) string {
	if len(b) != 16 {
		return ""
	}
	return fmt.Sprintf("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15])
}

// escapeBytes renders raw bytes for an LDAP filter (\xx each).
func escapeBytes(b []byte) string {
	var sb strings.Builder
	for _, c := range b {
		fmt.Fprintf(&sb, "\\%02x", c)
	}
	return sb.String()
}
