package config

import (
	"fmt"
	"strings"
)

// The Windows file check (perm_windows.go reads the security descriptor)
// judges a small model of it here, on every system, so the rules are unit
// tested where the tests run.

// Well-known SIDs the check knows.
const (
	sidSystem         = "S-1-5-18"
	sidAdministrators = "S-1-5-32-544"
	sidEveryone       = "S-1-1-0"
	// sidOwnerRights (OWNER RIGHTS) stands for the object's owner.
	sidOwnerRights = "S-1-3-4"
)

// File access rights (winnt.h) the check reads in an ACE's mask.
const (
	fileReadData   = 0x1
	fileWriteData  = 0x2
	fileAppendData = 0x4
	fileWriteEA    = 0x10
	accessDelete   = 0x10000
	writeDAC       = 0x40000
	writeOwner     = 0x80000
	genericAll     = 0x10000000
	genericWrite   = 0x40000000
	genericRead    = 0x80000000

	// writeAccess lets a principal change a file, or its permissions or
	// owner (and so anything), or delete it.
	writeAccess = fileWriteData | fileAppendData | fileWriteEA | accessDelete | writeDAC | writeOwner
	// readAccess lets a principal read a file's content.
	readAccess = fileReadData
)

// ACE flags (winnt.h) the check reads.
const (
	// aceInheritOnly: the ACE is only passed on to children; it does not
	// apply to the file itself.
	aceInheritOnly = 0x08
	// aceInherited: the ACE came from the folder. It applies all the same.
	aceInherited = 0x10
)

// fileACL is what the check reads of a file's security descriptor.
type fileACL struct {
	Owner principal
	// NullDACL: the file has no DACL, which lets everyone do anything.
	NullDACL bool
	// Entries are the DACL's access-allowed and access-denied ACEs, in
	// order.
	Entries []aclEntry
}

// principal is a security principal: its SID and, when the system could
// name it, its account name (DOMAIN\name).
type principal struct {
	SID  string
	Name string
}

func (p principal) String() string {
	if p.Name == "" {
		return p.SID
	}
	return p.Name + " (" + p.SID + ")"
}

// aclEntry is one ACE.
type aclEntry struct {
	Who   principal
	Deny  bool
	Mask  uint32
	Flags uint8
}

// aclProblems judges a file's owner and DACL for kind, for a process
// running as the account whose SID is self (the service's account): the
// owner must be SYSTEM, Administrators or self (an owner can always change
// the DACL); no one but SYSTEM, Administrators and the owner may change
// the file, and for a secret no one but those and self may read it; a NULL
// DACL lets everyone do both. Inherited ACEs count as much as explicit
// ones. Each problem names the file, the principal and the icacls command
// that fixes it.
func aclProblems(file string, acl fileACL, kind fileKind, self string) []string {
	var out []string
	if o := acl.Owner.SID; o != sidSystem && o != sidAdministrators && o != self {
		out = append(out, fmt.Sprintf("%s is owned by %s, who could change its permissions; make Administrators its owner: run icacls %s /setowner *%s",
			file, acl.Owner, quoteArg(file), sidAdministrators))
	}
	if acl.NullDACL {
		return append(out, fmt.Sprintf("%s has no DACL, which lets everyone read and change it; set one: run icacls %s /inheritance:r /grant:r *%s:F *%s:F *%s:R",
			file, quoteArg(file), sidSystem, sidAdministrators, self))
	}
	mayChange := map[string]bool{sidSystem: true, sidAdministrators: true, sidOwnerRights: true, acl.Owner.SID: true}
	for _, g := range effectiveGrants(acl.Entries) {
		change := g.mask&writeAccess != 0 && !mayChange[g.who.SID]
		read := kind == secretFile && g.mask&readAccess != 0 && !mayChange[g.who.SID] && g.who.SID != self
		if !change && !read {
			continue
		}
		out = append(out, grantProblem(file, g, kind, read, change))
	}
	return out
}

// grantProblem says that g lets its principal read and/or change file,
// and how to remove the grant (inherited ones are first made explicit).
func grantProblem(file string, g grant, kind fileKind, read, change bool) string {
	what := "change what it makes the connector trust"
	if kind == secretFile {
		what = accessVerb(read, change) + " this secret"
	}
	from, fix := "", ""
	if g.inherited {
		from, fix = " (inherited from its folder)", "/inheritance:d "
	}
	return fmt.Sprintf("%s lets %s %s%s; remove that: run icacls %s %s/remove:g *%s",
		file, g.who, what, from, quoteArg(file), fix, g.who.SID)
}

// grant is what one principal is allowed on the file.
type grant struct {
	who       principal
	mask      uint32 // specific rights, generic ones mapped
	inherited bool   // some of it comes from an inherited ACE
}

// effectiveGrants sums the access-allowed ACEs that apply to the file
// itself, by principal in order of first appearance, without the rights
// an earlier access-denied ACE denies that principal or Everyone (as
// Windows reads a DACL: in order, a right denied before it is granted
// stays denied). A deny for a group the principal may be in is not
// subtracted: the check cannot know memberships, so it errs on the side
// of reporting.
func effectiveGrants(entries []aclEntry) []grant {
	denied := map[string]uint32{}
	index := map[string]int{}
	var out []grant
	for _, e := range entries {
		if e.Flags&aceInheritOnly != 0 {
			continue
		}
		m := specificRights(e.Mask)
		if e.Deny {
			denied[e.Who.SID] |= m
			continue
		}
		m &^= denied[e.Who.SID] | denied[sidEveryone]
		if m == 0 {
			continue
		}
		i, seen := index[e.Who.SID]
		if !seen {
			i = len(out)
			index[e.Who.SID] = i
			out = append(out, grant{who: e.Who})
		}
		out[i].mask |= m
		out[i].inherited = out[i].inherited || e.Flags&aceInherited != 0
	}
	return out
}

// specificRights maps a mask's generic file rights to the specific rights
// the check reads (FILE_GENERIC_READ, FILE_GENERIC_WRITE, FILE_ALL_ACCESS).
func specificRights(mask uint32) uint32 {
	m := mask &^ (genericAll | genericWrite | genericRead)
	if mask&genericAll != 0 {
		m |= writeAccess | readAccess
	}
	if mask&genericWrite != 0 {
		m |= fileWriteData | fileAppendData | fileWriteEA
	}
	if mask&genericRead != 0 {
		m |= fileReadData
	}
	return m
}

// quoteArg quotes a path for cmd.exe and PowerShell alike (Go's %q would
// double its backslashes).
func quoteArg(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, ``) + `"`
}
