package ldapx

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrMalformedSID is wrapped by every SID decoding error.
var ErrMalformedSID = errors.New("ldapx: malformed SID")

const (
	sidHeaderLen         = 8 // revision, count, 6-byte identifier authority
	sidMaxSubAuthorities = 15
)

// ParseSID decodes the binary SID (MS-DTYP 2.4.2.2) at the start of b and
// returns its string form (S-1-5-21-...) and its length in bytes; bytes
// after it are left to the caller (a security descriptor holds SIDs
// among other fields).
func ParseSID(b []byte) (string, int, error) {
	if len(b) < sidHeaderLen {
		return "", 0, fmt.Errorf("%w: %d bytes", ErrMalformedSID, len(b))
	}
	if b[0] != 1 {
		return "", 0, fmt.Errorf("%w: revision %d", ErrMalformedSID, b[0])
	}
	n := int(b[1])
	if n > sidMaxSubAuthorities {
		return "", 0, fmt.Errorf("%w: %d sub-authorities (at most %d)", ErrMalformedSID, n, sidMaxSubAuthorities)
	}
	size := sidHeaderLen + 4*n
	if len(b) < size {
		return "", 0, fmt.Errorf("%w: %d bytes for %d sub-authorities", ErrMalformedSID, len(b), n)
	}
	var auth uint64
	for _, x := range b[2:8] {
		auth = auth<<8 | uint64(x)
	}
	var s strings.Builder
	s.WriteString("S-1-")
	s.WriteString(strconv.FormatUint(auth, 10))
	for i := range n {
		s.WriteByte('-')
		s.WriteString(strconv.FormatUint(uint64(binary.LittleEndian.Uint32(b[8+4*i:])), 10))
	}
	return s.String(), size, nil
}

// SIDString decodes a value that is exactly one binary SID (objectSid,
// a tokenGroups value) into its string form.
func SIDString(b []byte) (string, error) {
	s, n, err := ParseSID(b)
	if err != nil {
		return "", err
	}
	if n != len(b) {
		return "", fmt.Errorf("%w: %d bytes after it", ErrMalformedSID, len(b)-n)
	}
	return s, nil
}

// DomainRID splits an account or group SID of a domain (S-1-5-21-a-b-c-RID)
// into the domain's SID and the relative id; ok is false for any other
// SID (builtin, well-known, malformed).
func DomainRID(sid string) (domain string, rid uint32, ok bool) {
	parts := strings.Split(sid, "-")
	if len(parts) != 8 || parts[0] != "S" || parts[1] != "1" || parts[2] != "5" || parts[3] != "21" {
		return "", 0, false
	}
	for _, p := range parts[4:] {
		if _, err := strconv.ParseUint(p, 10, 32); err != nil {
			return "", 0, false
		}
	}
	v, _ := strconv.ParseUint(parts[7], 10, 32)
	return strings.Join(parts[:7], "-"), uint32(v), true
}
