package winsvc

import (
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"unicode/utf16"
)

// Well-known SIDs.
const (
	SIDLocalSystem    = "S-1-5-18"
	SIDLocalService   = "S-1-5-19"
	SIDNetworkService = "S-1-5-20"
	SIDAdministrators = "S-1-5-32-544"
)

// ServiceSID is the SID of the virtual account "NT SERVICE\<name>": S-1-5-80
// followed by the SHA-1 of the upper-cased name in UTF-16LE, read as five
// little-endian 32-bit numbers (what `sc showsid` prints). It exists
// whether or not the service is installed yet.
func ServiceSID(name string) string {
	u := utf16.Encode([]rune(strings.ToUpper(name)))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	h := sha1.Sum(b)
	sid := "S-1-5-80"
	for i := 0; i < 5; i++ {
		sid += fmt.Sprintf("-%d", binary.LittleEndian.Uint32(h[4*i:]))
	}
	return sid
}

// KnownAccountSID is the SID of the account a service of this name runs
// as, when it is one whose SID needs no lookup: the service's virtual
// account (also for an empty account, Install's default), LocalSystem,
// LocalService or NetworkService (any case). ok is false for any other
// account (a domain or local user, a gMSA), which only Windows can look up.
func KnownAccountSID(name, account string) (sid string, ok bool) {
	a := strings.ToLower(strings.TrimSpace(account))
	if a == "" || a == strings.ToLower(VirtualAccount(name)) {
		return ServiceSID(name), true
	}
	if n, found := builtIns[a]; found {
		return builtInSIDs[n], true
	}
	return "", false
}

// builtInSIDs are the SIDs of the built-in accounts, by the name the
// service manager stores.
var builtInSIDs = map[string]string{
	"LocalSystem": SIDLocalSystem, `NT AUTHORITY\LocalService`: SIDLocalService, `NT AUTHORITY\NetworkService`: SIDNetworkService,
}

// FolderAccess is what the service's account may do in a folder Install
// protects.
type FolderAccess int

const (
	// ReadAccess: list and read (icacls RX), for the configuration and
	// key folders.
	ReadAccess FolderAccess = iota
	// ModifyAccess: read, write, create and delete (icacls M), for the
	// journal folder.
	ModifyAccess
)

func (a FolderAccess) String() string {
	if a == ModifyAccess {
		return "modify"
	}
	return "read"
}

// Access masks of FolderSDDL's ACEs: what icacls calls RX and M.
const (
	maskReadExecute = "0x1200a9"
	maskModify      = "0x1301bf"
)

// ErrBadSID is returned by FolderSDDL for an account SID that is not one.
var ErrBadSID = errors.New("winsvc: not a SID")

// FolderSDDL is the security descriptor, in SDDL, that service install sets
// on a folder the service keeps files in: owned by Administrators; a
// protected DACL ("P": nothing inherited from the folders above, so a
// grant to Users or Everyone there does not reach in) giving SYSTEM and
// Administrators full control and the service's account (accountSID) the
// access asked for; each ACE inherited by the folder's files and
// subfolders (OICI). An account that already has full control (SYSTEM)
// gets no ACE of its own.
func FolderSDDL(accountSID string, access FolderAccess) (string, error) {
	if !strings.HasPrefix(accountSID, "S-1-") || strings.ContainsAny(accountSID, ";()") {
		return "", fmt.Errorf("%w: %q", ErrBadSID, accountSID)
	}
	sddl := "O:BAD:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)"
	if accountSID == SIDLocalSystem || accountSID == SIDAdministrators {
		return sddl, nil
	}
	mask := maskReadExecute
	if access == ModifyAccess {
		mask = maskModify
	}
	return sddl + "(A;OICI;" + mask + ";;;" + accountSID + ")", nil
}
