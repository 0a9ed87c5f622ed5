//go:build windows

package config

import (
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/windows"
)

// fileModeProblems reads file's owner and DACL and judges them with
// aclProblems for this process's account. A file whose security
// descriptor cannot be read is left to the code that reads the file to
// report, as on Unix.
func fileModeProblems(file string, kind fileKind) []string {
	acl, err := readFileACL(file)
	if err != nil {
		return nil
	}
	self, err := processSID()
	if err != nil {
		return []string{fmt.Sprintf("%s: cannot tell which account this process runs as: %v", file, err)}
	}
	return aclProblems(file, acl, kind, self)
}

// readFileACL reads file's owner and DACL into the model aclProblems
// judges; no security descriptor, or no DACL, is a NULL DACL.
func readFileACL(file string) (fileACL, error) {
	sd, err := windows.GetNamedSecurityInfo(file, windows.SE_FILE_OBJECT,
		windows.OWNER_SECURITY_INFORMATION|windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		return fileACL{}, err
	}
	if sd == nil {
		return fileACL{NullDACL: true}, nil
	}
	owner, _, err := sd.Owner()
	if err != nil {
		return fileACL{}, err
	}
	acl := fileACL{Owner: named(owner)}
	dacl, _, err := sd.DACL()
	if errors.Is(err, windows.ERROR_OBJECT_NOT_FOUND) || (err == nil && dacl == nil) {
		acl.NullDACL = true
		return acl, nil
	}
	if err != nil {
		return fileACL{}, err
	}
	acl.Entries, err = readACEs(dacl)
	return acl, err
}

// readACEs reads a DACL's access-allowed ACEs (callback ones too: they may
// grant) and access-denied ones (not callback ones: they may not apply);
// other types do not occur in a file's DACL.
func readACEs(dacl *windows.ACL) ([]aclEntry, error) {
	const allowedCallback = 0x9
	var out []aclEntry
	for i := uint32(0); i < uint32(dacl.AceCount); i++ {
		var ace *windows.ACCESS_ALLOWED_ACE
		if err := windows.GetAce(dacl, i, &ace); err != nil {
			return nil, err
		}
		var deny bool
		switch ace.Header.AceType {
		case windows.ACCESS_ALLOWED_ACE_TYPE, allowedCallback:
		case windows.ACCESS_DENIED_ACE_TYPE:
			deny = true
		default:
			continue
		}
		sid := (*windows.SID)(unsafe.Pointer(&ace.SidStart))
		out = append(out, aclEntry{Who: named(sid), Deny: deny, Mask: uint32(ace.Mask), Flags: ace.Header.AceFlags})
	}
	return out, nil
}

// named is sid with its account name when the system knows it.
func named(sid *windows.SID) principal {
	p := principal{SID: sid.String()}
	if account, domain, _, err := sid.LookupAccount(""); err == nil {
		p.Name = account
		if domain != "" {
			p.Name = domain + `\` + account
		}
	}
	return p
}

// processSID is the SID of the account this process runs as.
func processSID() (string, error) {
	u, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		return "", err
	}
	return u.User.Sid.String(), nil
}
