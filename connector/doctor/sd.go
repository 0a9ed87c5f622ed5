package doctor

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/adwriteback/adwriteback/ldapx"
)

// ErrMalformedSD is wrapped by every error about a security descriptor
// that cannot be parsed.
var ErrMalformedSD = errors.New("malformed security descriptor")

// Security descriptor control bits (MS-DTYP 2.4.6).
const (
	sdDACLPresent  = 0x0004
	sdSACLPresent  = 0x0010
	sdSelfRelative = 0x8000
)

// ACE types (MS-DTYP 2.4.4.1).
const (
	AceTypeAccessAllowed       = 0x00
	AceTypeAccessDenied        = 0x01
	AceTypeAccessAllowedObject = 0x05
	AceTypeAccessDeniedObject  = 0x06
)

// ACE flags (MS-DTYP 2.4.4.1).
const (
	AceFlagObjectInherit    = 0x01
	AceFlagContainerInherit = 0x02
	AceFlagNoPropagate      = 0x04
	AceFlagInheritOnly      = 0x08
	AceFlagInherited        = 0x10
)

// Object ACE flags (MS-DTYP 2.4.4.3).
const (
	aceObjectTypePresent          = 0x1
	aceInheritedObjectTypePresent = 0x2
)

// Access mask bits for directory objects (MS-ADTS 5.1.3.2, MS-DTYP 2.4.3).
const (
	RightDSCreateChild    = 0x00000001
	RightDSDeleteChild    = 0x00000002
	RightDSSelf           = 0x00000008
	RightDSReadProperty   = 0x00000010
	RightDSWriteProperty  = 0x00000020
	RightDSControlAccess  = 0x00000100
	RightDelete           = 0x00010000
	RightReadControl      = 0x00020000
	RightWriteDAC         = 0x00040000
	RightWriteOwner       = 0x00080000
	RightGenericAll       = 0x10000000
	RightGenericWrite     = 0x40000000
	RightFullControlMask  = 0x000F01FF // GENERIC_ALL as AD stores it after mapping
	sdHeaderLen           = 20
	aclHeaderLen          = 8
	aceHeaderLen          = 4
	minSIDLen             = 8
	guidLen               = 16
	objectACEFixedPartLen = 8 // mask + flags
)

// SecurityDescriptor is a parsed self-relative security descriptor. Only
// what the doctor needs is kept: owner, group and the DACL (the SACL is
// parsed for bounds but not kept).
type SecurityDescriptor struct {
	Control uint16
	Owner   string // SID string, "" when absent
	Group   string
	// DACL is nil when the descriptor carries none (not present, or not
	// requested with the SD flags control).
	DACL *ACL
}

// ACL is an access control list.
type ACL struct {
	Revision byte
	ACEs     []ACE
}

// ACE is one access control entry. Types other than the four allow/deny
// kinds are kept with their type and flags only.
type ACE struct {
	Type  byte
	Flags byte
	Mask  uint32
	// ObjectType and InheritedObjectType are GUID strings (lower case), ""
	// when the ACE does not carry them (it then applies to every property /
	// right, or is inherited by every object class).
	ObjectType          string
	InheritedObjectType string
	SID                 string
}

// Allow reports whether the ACE is an allow ACE (plain or object).
func (a ACE) Allow() bool {
	return a.Type == AceTypeAccessAllowed || a.Type == AceTypeAccessAllowedObject
}

// Deny reports whether the ACE is a deny ACE (plain or object).
func (a ACE) Deny() bool {
	return a.Type == AceTypeAccessDenied || a.Type == AceTypeAccessDeniedObject
}

// String renders the ACE close to SDDL, for reports.
func (a ACE) String() string {
	var b strings.Builder
	b.WriteString("(")
	switch a.Type {
	case AceTypeAccessAllowed:
		b.WriteString("A")
	case AceTypeAccessDenied:
		b.WriteString("D")
	case AceTypeAccessAllowedObject:
		b.WriteString("OA")
	case AceTypeAccessDeniedObject:
		b.WriteString("OD")
	default:
		fmt.Fprintf(&b, "type%d", a.Type)
	}
	b.WriteString(";")
	for _, f := range []struct {
		bit  byte
		name string
	}{{AceFlagObjectInherit, "OI"}, {AceFlagContainerInherit, "CI"}, {AceFlagNoPropagate, "NP"}, {AceFlagInheritOnly, "IO"}, {AceFlagInherited, "ID"}} {
		if a.Flags&f.bit != 0 {
			b.WriteString(f.name)
		}
	}
	fmt.Fprintf(&b, ";0x%x;%s;%s;%s)", a.Mask, a.ObjectType, a.InheritedObjectType, a.SID)
	return b.String()
}

// ParseSD parses a self-relative security descriptor (MS-DTYP 2.4.6), as
// AD returns in nTSecurityDescriptor. It never panics: every offset and
// length is checked against the buffer.
func ParseSD(b []byte) (*SecurityDescriptor, error) {
	if len(b) < sdHeaderLen {
		return nil, fmt.Errorf("%w: %d bytes, the header alone is %d", ErrMalformedSD, len(b), sdHeaderLen)
	}
	if b[0] != 1 {
		return nil, fmt.Errorf("%w: revision %d, want 1", ErrMalformedSD, b[0])
	}
	sd := &SecurityDescriptor{Control: binary.LittleEndian.Uint16(b[2:])}
	if sd.Control&sdSelfRelative == 0 {
		return nil, fmt.Errorf("%w: not self-relative", ErrMalformedSD)
	}
	offOwner := binary.LittleEndian.Uint32(b[4:])
	offGroup := binary.LittleEndian.Uint32(b[8:])
	offSACL := binary.LittleEndian.Uint32(b[12:])
	offDACL := binary.LittleEndian.Uint32(b[16:])
	var err error
	if offOwner != 0 {
		if sd.Owner, _, err = parseSIDAt(b, offOwner); err != nil {
			return nil, fmt.Errorf("owner: %w", err)
		}
	}
	if offGroup != 0 {
		if sd.Group, _, err = parseSIDAt(b, offGroup); err != nil {
			return nil, fmt.Errorf("group: %w", err)
		}
	}
	if sd.Control&sdSACLPresent != 0 && offSACL != 0 {
		if _, err := parseACLAt(b, offSACL); err != nil {
			return nil, fmt.Errorf("SACL: %w", err)
		}
	}
	if sd.Control&sdDACLPresent != 0 && offDACL != 0 {
		if sd.DACL, err = parseACLAt(b, offDACL); err != nil {
			return nil, fmt.Errorf("DACL: %w", err)
		}
	}
	return sd, nil
}

func parseACLAt(b []byte, off uint32) (*ACL, error) {
	if uint64(off)+aclHeaderLen > uint64(len(b)) {
		return nil, fmt.Errorf("%w: ACL offset %d beyond %d bytes", ErrMalformedSD, off, len(b))
	}
	h := b[off:]
	rev := h[0]
	if rev != 2 && rev != 4 {
		return nil, fmt.Errorf("%w: ACL revision %d", ErrMalformedSD, rev)
	}
	size := int(binary.LittleEndian.Uint16(h[2:]))
	count := int(binary.LittleEndian.Uint16(h[4:]))
	if size < aclHeaderLen || size > len(h) {
		return nil, fmt.Errorf("%w: ACL size %d does not fit in %d bytes", ErrMalformedSD, size, len(h))
	}
	body := h[aclHeaderLen:size]
	acl := &ACL{Revision: rev}
	// Each ACE is at least a header and a minimal SID; cap the allocation
	// by what the buffer can actually hold.
	if max := len(body) / (aceHeaderLen + 4 + minSIDLen); count > max {
		return nil, fmt.Errorf("%w: ACL claims %d ACEs but has room for at most %d", ErrMalformedSD, count, max)
	}
	acl.ACEs = make([]ACE, 0, count)
	for i := 0; i < count; i++ {
		if len(body) < aceHeaderLen {
			return nil, fmt.Errorf("%w: ACE %d: truncated header", ErrMalformedSD, i)
		}
		aceSize := int(binary.LittleEndian.Uint16(body[2:]))
		if aceSize < aceHeaderLen || aceSize > len(body) {
			return nil, fmt.Errorf("%w: ACE %d: size %d does not fit in %d bytes", ErrMalformedSD, i, aceSize, len(body))
		}
		ace, err := parseACE(body[:aceSize])
		if err != nil {
			return nil, fmt.Errorf("ACE %d: %w", i, err)
		}
		acl.ACEs = append(acl.ACEs, ace)
		body = body[aceSize:]
	}
	return acl, nil
}

func parseACE(b []byte) (ACE, error) {
	a := ACE{Type: b[0], Flags: b[1]}
	p := b[aceHeaderLen:]
	switch a.Type {
	case AceTypeAccessAllowed, AceTypeAccessDenied:
		if len(p) < 4 {
			return a, fmt.Errorf("%w: truncated access mask", ErrMalformedSD)
		}
		a.Mask = binary.LittleEndian.Uint32(p)
		sid, _, err := parseSID(p[4:])
		if err != nil {
			return a, err
		}
		a.SID = sid
	case AceTypeAccessAllowedObject, AceTypeAccessDeniedObject:
		if len(p) < objectACEFixedPartLen {
			return a, fmt.Errorf("%w: truncated object ACE", ErrMalformedSD)
		}
		a.Mask = binary.LittleEndian.Uint32(p)
		flags := binary.LittleEndian.Uint32(p[4:])
		p = p[objectACEFixedPartLen:]
		if flags&aceObjectTypePresent != 0 {
			if len(p) < guidLen {
				return a, fmt.Errorf("%w: truncated object type", ErrMalformedSD)
			}
			a.ObjectType = ldapx.GUIDString(p[:guidLen])
			p = p[guidLen:]
		}
		if flags&aceInheritedObjectTypePresent != 0 {
			if len(p) < guidLen {
				return a, fmt.Errorf("%w: truncated inherited object type", ErrMalformedSD)
			}
			a.InheritedObjectType = ldapx.GUIDString(p[:guidLen])
			p = p[guidLen:]
		}
		sid, _, err := parseSID(p)
		if err != nil {
			return a, err
		}
		a.SID = sid
	default:
		// Audit, alarm, callback and other ACEs: not used for access here.
	}
	return a, nil
}

func parseSIDAt(b []byte, off uint32) (string, int, error) {
	if uint64(off) >= uint64(len(b)) {
		return "", 0, fmt.Errorf("%w: SID offset %d beyond %d bytes", ErrMalformedSD, off, len(b))
	}
	return parseSID(b[off:])
}

// parseSID parses a binary SID (MS-DTYP 2.4.2.2) at the start of b and
// returns its string form and its length.
func parseSID(b []byte) (string, int, error) {
	s, n, err := ldapx.ParseSID(b)
	if err != nil {
		return "", 0, fmt.Errorf("%w: %w", ErrMalformedSD, err)
	}
	return s, n, nil
}

// SIDString renders a binary SID (objectSid, tokenGroups values) as S-1-....
func SIDString(b []byte) (string, error) {
	s, err := ldapx.SIDString(b)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrMalformedSD, err)
	}
	return s, nil
}
