package config

import (
	"strings"
	"testing"
)

// Principals of the ACL tests.
var (
	system   = principal{SID: sidSystem, Name: `NT AUTHORITY\SYSTEM`}
	admins   = principal{SID: sidAdministrators, Name: `BUILTIN\Administrators`}
	everyone = principal{SID: sidEveryone, Name: "Everyone"}
	users    = principal{SID: "S-1-5-32-545", Name: `BUILTIN\Users`}
	authUser = principal{SID: "S-1-5-11", Name: `NT AUTHORITY\Authenticated Users`}
	service  = principal{SID: "S-1-5-80-1111111111-2222222222-3333333333-4444444444-555555555", Name: `NT SERVICE\adwriteback`}
	alice    = principal{SID: "S-1-5-21-1-2-3-1104", Name: `CORP\alice`}
	unnamed  = principal{SID: "S-1-5-21-1-2-3-1999"}
)

const (
	fullControl = 0x1F01FF // FILE_ALL_ACCESS
	readExecute = 0x1200A9 // icacls (RX)
	modify      = 0x1301BF // icacls (M)
)

func allow(p principal, mask uint32) aclEntry { return aclEntry{Who: p, Mask: mask} }
func deny(p principal, mask uint32) aclEntry  { return aclEntry{Who: p, Mask: mask, Deny: true} }
func inherited(e aclEntry) aclEntry           { e.Flags |= aceInherited; return e }
func inheritOnly(e aclEntry) aclEntry         { e.Flags |= aceInheritOnly; return e }

// protected is what service install sets: SYSTEM and Administrators full
// control, the service account read, owned by Administrators.
func protected(extra ...aclEntry) fileACL {
	return fileACL{Owner: admins, Entries: append([]aclEntry{
		allow(system, fullControl), allow(admins, fullControl), allow(service, readExecute),
	}, extra...)}
}

const winFile = `C:\ProgramData\adwriteback\config.yaml`

// TestACLProblems: the Windows owner and DACL rules, on a model of the
// security descriptor: each case lists the text every problem must hold,
// one problem per entry (none: the file passes).
func TestACLProblems(t *testing.T) {
	q := `"` + winFile + `"`
	for _, tc := range []struct {
		name string
		acl  fileACL
		kind fileKind
		want [][]string
	}{
		{"protected secret", protected(), secretFile, nil},
		{"protected config", protected(), trustAnchor, nil},
		{"owned by SYSTEM", fileACL{Owner: system, Entries: protected().Entries}, secretFile, nil},
		{"owned by the service account, which may then change it", fileACL{Owner: service, Entries: append(protected().Entries, allow(service, modify))}, secretFile, nil},
		{"Everyone read on a secret", protected(allow(everyone, readExecute)), secretFile,
			[][]string{{winFile, "lets Everyone (S-1-1-0) read this secret", "icacls " + q + " /remove:g *S-1-1-0"}}},
		{"Everyone read on a config", protected(allow(everyone, readExecute)), trustAnchor, nil},
		{"Users write on a config", protected(allow(users, modify)), trustAnchor,
			[][]string{{winFile, `BUILTIN\Users (S-1-5-32-545) change what it makes the connector trust`, "/remove:g *S-1-5-32-545"}}},
		{"Users write, inherited from the folder", protected(inherited(allow(users, 0x2))), trustAnchor,
			[][]string{{"(inherited from its folder)", "icacls " + q + " /inheritance:d /remove:g *S-1-5-32-545"}}},
		{"Authenticated Users GENERIC_ALL on a secret", protected(allow(authUser, genericAll)), secretFile,
			[][]string{{`NT AUTHORITY\Authenticated Users (S-1-5-11) read and change this secret`}}},
		{"GENERIC_WRITE on a config", protected(allow(users, genericWrite)), trustAnchor,
			[][]string{{"S-1-5-32-545", "change"}}},
		{"GENERIC_READ on a secret", protected(allow(users, genericRead)), secretFile,
			[][]string{{"S-1-5-32-545", "read this secret"}}},
		{"WRITE_DAC alone", protected(allow(users, writeDAC)), trustAnchor, [][]string{{"S-1-5-32-545", "change"}}},
		{"WRITE_OWNER alone", protected(allow(users, writeOwner)), trustAnchor, [][]string{{"S-1-5-32-545", "change"}}},
		{"DELETE alone", protected(allow(users, accessDelete)), trustAnchor, [][]string{{"S-1-5-32-545", "change"}}},
		{"append only", protected(allow(users, fileAppendData)), trustAnchor, [][]string{{"S-1-5-32-545", "change"}}},
		{"read attributes and permissions only", protected(allow(users, 0x120080)), secretFile, nil},
		{"the service account may read a secret, not change it", protected(allow(service, modify)), secretFile,
			[][]string{{`NT SERVICE\adwriteback`, "change this secret"}}},
		{"a deny for the same principal first (GENERIC_WRITE and DELETE: all Modify changes)", protected(deny(users, genericWrite|accessDelete), allow(users, modify)), trustAnchor,
			[][]string{}},
		{"a deny for Everyone first", protected(deny(everyone, writeAccess), allow(users, modify)), trustAnchor, [][]string{}},
		{"a deny after the grant does not take it back", protected(allow(users, modify), deny(users, writeAccess)), trustAnchor,
			[][]string{{"S-1-5-32-545", "change"}}},
		{"a deny for another group does not count", protected(deny(authUser, writeAccess), allow(users, modify)), trustAnchor,
			[][]string{{"S-1-5-32-545", "change"}}},
		{"a deny ACE alone is no grant", protected(deny(everyone, fullControl)), secretFile, nil},
		{"inherit-only ACEs do not apply to the file", protected(inheritOnly(allow(users, fullControl))), secretFile, nil},
		{"two grants of one principal are one problem", protected(allow(users, fileReadData), inherited(allow(users, fileWriteData))), secretFile,
			[][]string{{"read and change this secret", "(inherited from its folder)"}}},
		{"OWNER RIGHTS may write", protected(allow(principal{SID: sidOwnerRights}, modify)), trustAnchor, nil},
		{"an unnamed SID is shown as the SID", protected(allow(unnamed, modify)), trustAnchor,
			[][]string{{"lets S-1-5-21-1-2-3-1999 change", "*S-1-5-21-1-2-3-1999"}}},
		{"a NULL DACL", fileACL{Owner: admins, NullDACL: true}, trustAnchor,
			[][]string{{winFile, "has no DACL", "icacls " + q + " /inheritance:r /grant:r *S-1-5-18:F *S-1-5-32-544:F *" + service.SID + ":R"}}},
		{"owner not trusted", fileACL{Owner: alice, Entries: protected().Entries}, trustAnchor,
			[][]string{{winFile, `is owned by CORP\alice (S-1-5-21-1-2-3-1104)`, "icacls " + q + " /setowner *S-1-5-32-544"}}},
		{"owner not trusted, and the owner's own write is then not reported twice", fileACL{Owner: alice, Entries: append(protected().Entries, allow(alice, fullControl))}, secretFile,
			[][]string{{"is owned by CORP\\alice"}}},
		{"owner not trusted and a NULL DACL", fileACL{Owner: alice, NullDACL: true}, secretFile,
			[][]string{{"is owned by"}, {"has no DACL"}}},
		{"several principals, each named", protected(allow(everyone, readExecute), allow(users, modify)), secretFile,
			[][]string{{"Everyone", "read this secret"}, {"BUILTIN\\Users", "read and change this secret"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := aclProblems(winFile, tc.acl, tc.kind, service.SID)
			if len(got) != len(tc.want) {
				t.Fatalf("%d problems, want %d:\n%s", len(got), len(tc.want), strings.Join(got, "\n"))
			}
			for i, wants := range tc.want {
				for _, w := range wants {
					if !strings.Contains(got[i], w) {
						t.Errorf("problem %d lacks %q:\n%s", i, w, got[i])
					}
				}
			}
		})
	}
}

// TestSpecificRights: generic rights count as the specific ones they map
// to, so a deny of GENERIC_WRITE takes back FILE_WRITE_DATA.
func TestSpecificRights(t *testing.T) {
	for mask, want := range map[uint32]uint32{
		genericAll:                 writeAccess | readAccess,
		genericWrite:               fileWriteData | fileAppendData | fileWriteEA,
		genericRead:                fileReadData,
		genericRead | accessDelete: fileReadData | accessDelete,
		0x20000000:                 0, // GENERIC_EXECUTE reads no data
	} {
		if got := specificRights(mask); got&(writeAccess|readAccess) != want {
			t.Errorf("specificRights(%#x) = %#x, want %#x", mask, got&(writeAccess|readAccess), want)
		}
	}
}
