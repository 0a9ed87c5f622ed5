package doctor

import (
	"encoding/binary"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/adwriteback/adwriteback/ldapx"
)

// Builders of binary structures, written from MS-DTYP, independent of the
// parser.

func sidBytes(t testing.TB, s string) []byte {
	t.Helper()
	parts := strings.Split(s, "-")
	auth, _ := strconv.ParseUint(parts[2], 10, 48)
	b := []byte{1, byte(len(parts) - 3)}
	for i := 5; i >= 0; i-- {
		b = append(b, byte(auth>>(8*i)))
	}
	for _, p := range parts[3:] {
		v, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			t.Fatal(err)
		}
		b = binary.LittleEndian.AppendUint32(b, uint32(v))
	}
	return b
}

func guidBytes(t testing.TB, g string) []byte {
	t.Helper()
	b, err := ldapx.GUIDBytes(g)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type testACE struct {
	typ, flags    byte
	mask          uint32
	obj, inherObj string
	sid           string
}

func aceBytes(t testing.TB, a testACE) []byte {
	body := binary.LittleEndian.AppendUint32(nil, a.mask)
	if a.typ == AceTypeAccessAllowedObject || a.typ == AceTypeAccessDeniedObject {
		var f uint32
		var g []byte
		if a.obj != "" {
			f |= 1
			g = append(g, guidBytes(t, a.obj)...)
		}
		if a.inherObj != "" {
			f |= 2
			g = append(g, guidBytes(t, a.inherObj)...)
		}
		body = binary.LittleEndian.AppendUint32(body, f)
		body = append(body, g...)
	}
	body = append(body, sidBytes(t, a.sid)...)
	h := []byte{a.typ, a.flags}
	h = binary.LittleEndian.AppendUint16(h, uint16(4+len(body)))
	return append(h, body...)
}

func aclBytes(t testing.TB, aces []testACE) []byte {
	var body []byte
	for _, a := range aces {
		body = append(body, aceBytes(t, a)...)
	}
	h := []byte{4, 0}
	h = binary.LittleEndian.AppendUint16(h, uint16(8+len(body)))
	h = binary.LittleEndian.AppendUint16(h, uint16(len(aces)))
	h = append(h, 0, 0)
	return append(h, body...)
}

// sdBytes builds a self-relative SD: header, owner, then the DACL.
func sdBytes(t testing.TB, owner string, aces []testACE) []byte {
	ctrl := uint16(sdSelfRelative | sdDACLPresent)
	o := sidBytes(t, owner)
	acl := aclBytes(t, aces)
	b := []byte{1, 0}
	b = binary.LittleEndian.AppendUint16(b, ctrl)
	b = binary.LittleEndian.AppendUint32(b, 20)                // owner
	b = binary.LittleEndian.AppendUint32(b, 0)                 // group
	b = binary.LittleEndian.AppendUint32(b, 0)                 // SACL
	b = binary.LittleEndian.AppendUint32(b, uint32(20+len(o))) // DACL
	b = append(b, o...)
	return append(b, acl...)
}

const (
	svcSID  = "S-1-5-21-1517632835-1727758383-560565325-1104"
	grpSID  = "S-1-5-21-1517632835-1727758383-560565325-1200"
	otherSD = "S-1-5-21-1517632835-1727758383-560565325-1300"
	domSID  = "S-1-5-21-1517632835-1727758383-560565325"
)

func leastPrivilegeACEs() []testACE {
	return []testACE{
		{AceTypeAccessAllowedObject, AceFlagContainerInherit | AceFlagInheritOnly, RightDSControlAccess, GUIDResetPassword, GUIDUserClass, svcSID},
		{AceTypeAccessAllowedObject, AceFlagContainerInherit | AceFlagInheritOnly, RightDSControlAccess, GUIDChangePassword, GUIDUserClass, svcSID},
		{AceTypeAccessAllowedObject, AceFlagContainerInherit | AceFlagInheritOnly, RightDSWriteProperty, GUIDPwdLastSet, GUIDUserClass, svcSID},
		{AceTypeAccessAllowedObject, AceFlagContainerInherit | AceFlagInheritOnly, RightDSWriteProperty, GUIDLockoutTime, GUIDUserClass, svcSID},
		// Defaults every OU has: admins full control, authenticated users read.
		{AceTypeAccessAllowed, 0, RightFullControlMask, "", "", domSID + "-512"},
		{AceTypeAccessAllowed, AceFlagContainerInherit, 0x20094, "", "", SIDAuthenticatedUsers},
	}
}

func TestParseSD(t *testing.T) {
	aces := leastPrivilegeACEs()
	aces = append(aces, testACE{AceTypeAccessDeniedObject, AceFlagContainerInherit | AceFlagInherited, RightDSWriteProperty, GUIDLockoutTime, "", otherSD},
		testACE{AceTypeAccessDenied, AceFlagObjectInherit, RightDelete, "", "", SIDEveryone})
	sd, err := ParseSD(sdBytes(t, domSID+"-512", aces))
	if err != nil {
		t.Fatal(err)
	}
	if sd.Owner != domSID+"-512" || sd.Group != "" || sd.DACL == nil || len(sd.DACL.ACEs) != len(aces) {
		t.Fatalf("parsed %+v", sd)
	}
	for i, want := range aces {
		got := sd.DACL.ACEs[i]
		if got.Type != want.typ || got.Flags != want.flags || got.Mask != want.mask || got.ObjectType != want.obj ||
			got.InheritedObjectType != want.inherObj || got.SID != want.sid {
			t.Errorf("ACE %d: got %+v, want %+v", i, got, want)
		}
	}
	if !sd.DACL.ACEs[6].Deny() || sd.DACL.ACEs[6].Allow() || !sd.DACL.ACEs[0].Allow() {
		t.Error("Allow/Deny")
	}
	if s := sd.DACL.ACEs[0].String(); s != "(OA;CIIO;0x100;"+GUIDResetPassword+";"+GUIDUserClass+";"+svcSID+")" {
		t.Errorf("String: %s", s)
	}
}

// A real descriptor read from the Samba test DC (OU=Managed, DACL only)
// parses and grants the four rights.
func TestParseSDFromSamba(t *testing.T) {
	sd, err := ParseSD(sambaManagedOU(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range InheritedRights(sd.DACL, NewToken(svcSID, []string{domSID + "-513", "S-1-5-32-545"})) {
		if !g.Granted {
			t.Errorf("%s not granted", g.Right.ID)
		}
	}
}

func TestParseSDRejectsMalformed(t *testing.T) {
	good := sdBytes(t, svcSID, leastPrivilegeACEs())
	mut := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	cases := map[string][]byte{
		"empty":         nil,
		"short header":  good[:10],
		"revision":      mut(func(b []byte) []byte { b[0] = 2; return b }),
		"not relative":  mut(func(b []byte) []byte { b[3] = 0; return b }),
		"owner offset":  mut(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[4:], 1<<30); return b }),
		"dacl offset":   mut(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[16:], uint32(len(b)-2)); return b }),
		"truncated":     good[:len(good)-3],
		"ace count":     mut(func(b []byte) []byte { d := binary.LittleEndian.Uint32(b[16:]); b[d+4] = 200; return b }),
		"sid subauths":  mut(func(b []byte) []byte { b[21] = 16; return b }),
		"acl revision":  mut(func(b []byte) []byte { d := binary.LittleEndian.Uint32(b[16:]); b[d] = 9; return b }),
		"ace size zero": mut(func(b []byte) []byte { d := binary.LittleEndian.Uint32(b[16:]); b[d+8+2], b[d+8+3] = 0, 0; return b }),
	}
	for name, b := range cases {
		if _, err := ParseSD(b); !errors.Is(err, ErrMalformedSD) {
			t.Errorf("%s: err %v, want ErrMalformedSD", name, err)
		}
	}
}

func TestSIDString(t *testing.T) {
	for _, s := range []string{svcSID, "S-1-1-0", "S-1-5-32-544", "S-1-5-11"} {
		got, err := SIDString(sidBytes(t, s))
		if err != nil || got != s {
			t.Errorf("%s: got %q, %v", s, got, err)
		}
	}
	if _, err := SIDString(append(sidBytes(t, "S-1-1-0"), 0)); err == nil {
		t.Error("trailing byte accepted")
	}
}

func FuzzParseSD(f *testing.F) {
	f.Add(sdBytes(f, svcSID, leastPrivilegeACEs()))
	f.Add(sambaManagedOU(f))
	f.Add([]byte{1, 0, 0x04, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 20, 0, 0, 0, 4, 0, 8, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		sd, err := ParseSD(b)
		if err != nil {
			if !errors.Is(err, ErrMalformedSD) {
				t.Fatalf("error not wrapping ErrMalformedSD: %v", err)
			}
			return
		}
		if sd.DACL != nil {
			tok := NewToken(svcSID, nil)
			InheritedRights(sd.DACL, tok)
			ObjectRights(sd.DACL, tok)
			Excess(sd.DACL, tok, domSID)
			for _, a := range sd.DACL.ACEs {
				_ = a.String()
			}
		}
	})
}
