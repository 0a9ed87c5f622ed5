package doctor

import (
	"fmt"
	"sort"
	"strings"
)

// GUIDs of the class, rights and attributes the connector needs (MS-ADTS,
// MS-ADA).
const (
	GUIDUserClass              = "bf967aba-0de6-11d0-a285-00aa003049e2"
	GUIDResetPassword          = "00299570-246d-11d0-a768-00aa006e0529"
	GUIDChangePassword         = "ab721a53-1e2f-11d0-9819-00aa0040529b"
	GUIDPwdLastSet             = "bf967a0a-0de6-11d0-a285-00aa003049e2"
	GUIDLockoutTime            = "28630ebf-41d5-11d1-a9c1-0000f80367c1"
	GUIDUserAccountRestriction = "4c164200-20c0-11d0-a768-00aa006e0529" // property set holding pwdLastSet
)

// Well-known SIDs every authenticated token carries.
const (
	SIDEveryone           = "S-1-1-0"
	SIDAuthenticatedUsers = "S-1-5-11"
	SIDAdministrators     = "S-1-5-32-544"
	SIDAccountOperators   = "S-1-5-32-548"
)

// Right is one permission the service account needs on the users in scope.
type Right struct {
	// ID is a stable short name (reset_password, ...).
	ID   string
	Name string // as an admin reads it
	// Mask is the access bit: control access (extended right) or write
	// property.
	Mask uint32
	GUID string
	// PropertySet is the property set the attribute belongs to, "" for none:
	// a write-property grant on the set covers the attribute.
	PropertySet string
	// SDDLRight and DsaclsRight spell the right in samba-tool's SDDL and in
	// dsacls.
	SDDLRight   string
	DsaclsRight string
	// Consequence says what fails without it.
	Consequence string
}

// Required is what the service account needs on users in each scoped OU.
var Required = []Right{
	{ID: "reset_password", Name: "Reset Password", Mask: RightDSControlAccess, GUID: GUIDResetPassword,
		SDDLRight: "CR", DsaclsRight: "CA;Reset Password;user",
		Consequence: "self-service resets are refused by the DC (access_denied)"},
	{ID: "change_password", Name: "Change Password", Mask: RightDSControlAccess, GUID: GUIDChangePassword,
		SDDLRight: "CR", DsaclsRight: "CA;Change Password;user",
		Consequence: "password changes (old + new) are refused by the DC"},
	{ID: "write_pwdlastset", Name: "Write pwdLastSet", Mask: RightDSWriteProperty, GUID: GUIDPwdLastSet,
		PropertySet: GUIDUserAccountRestriction, SDDLRight: "WP", DsaclsRight: "WP;pwdLastSet;user",
		Consequence: "must-change-at-next-logon cannot be set or cleared, and a reset asking for it fails"},
	{ID: "write_lockouttime", Name: "Write lockoutTime", Mask: RightDSWriteProperty, GUID: GUIDLockoutTime,
		SDDLRight: "WP", DsaclsRight: "WP;lockoutTime;user",
		Consequence: "locked-out users cannot be unlocked by a reset"},
}

// Grant is what the DACL says about one right for users below the OU.
type Grant struct {
	Right   Right
	Granted bool
	// Denied is set when a deny ACE decided the right.
	Denied bool
	// ACE is the ACE that decided, "" when none matched.
	ACE string
}

// Token is the set of SIDs access checks match against: the account's own
// objectSid, its tokenGroups and the well-known SIDs of any logged-on user.
type Token map[string]bool

// NewToken builds a token from the account SID and its group SIDs.
func NewToken(user string, groups []string) Token {
	t := Token{user: true, SIDEveryone: true, SIDAuthenticatedUsers: true}
	for _, g := range groups {
		t[g] = true
	}
	return t
}

// InheritedRights evaluates, for a user object created below an OU whose
// DACL is dacl, each required right: the ACEs the user inherits are the
// OU's container-inheritable ones that are not limited to another object
// class, in DACL order; the first ACE matching the token and the right
// (allow or deny) decides, as the Windows access check does.
func InheritedRights(dacl *ACL, tok Token) []Grant {
	out := make([]Grant, len(Required))
	for i, r := range Required {
		out[i] = decide(dacl, tok, r, inheritedToUser)
	}
	return out
}

// ObjectRights evaluates each right on an object from its own DACL (the
// ACEs that apply to the object itself: not inherit-only).
func ObjectRights(dacl *ACL, tok Token) []Grant {
	out := make([]Grant, len(Required))
	for i, r := range Required {
		out[i] = decide(dacl, tok, r, appliesToObject)
	}
	return out
}

func inheritedToUser(a ACE) bool {
	if a.Flags&AceFlagContainerInherit == 0 {
		return false
	}
	return a.InheritedObjectType == "" || a.InheritedObjectType == GUIDUserClass
}

func appliesToObject(a ACE) bool { return a.Flags&AceFlagInheritOnly == 0 }

func decide(dacl *ACL, tok Token, r Right, applies func(ACE) bool) Grant {
	g := Grant{Right: r}
	if dacl == nil {
		return g
	}
	for _, a := range dacl.ACEs {
		if !(a.Allow() || a.Deny()) || !tok[a.SID] || !applies(a) || !coversRight(a, r) {
			continue
		}
		g.ACE = a.String()
		if a.Deny() {
			g.Denied = true
			return g
		}
		g.Granted = true
		return g
	}
	return g
}

// coversRight reports whether an ACE's mask and object type include r.
func coversRight(a ACE, r Right) bool {
	m := a.Mask
	maskOK := m&r.Mask != 0 || m&RightGenericAll != 0 ||
		(r.Mask == RightDSWriteProperty && m&RightGenericWrite != 0)
	if !maskOK {
		return false
	}
	switch a.Type {
	case AceTypeAccessAllowed, AceTypeAccessDenied:
		return true // no object type: every property / extended right
	}
	return a.ObjectType == "" || a.ObjectType == r.GUID || (r.PropertySet != "" && a.ObjectType == r.PropertySet)
}

// Excess lists what the token holds beyond least privilege on the OU and
// the users below it: full control, permission or owner changes, writes of
// every property, every extended right, and membership of administrative
// groups. domainSID is the domain's SID (the account SID without its RID).
func Excess(dacl *ACL, tok Token, domainSID string) []string {
	var out []string
	if dacl != nil {
		seen := map[string]bool{}
		for _, a := range dacl.ACEs {
			if !a.Allow() || !tok[a.SID] {
				continue
			}
			// Only ACEs that reach users (inheritable to them) or the OU
			// itself (not inherit-only) matter.
			if !inheritedToUser(a) && !appliesToObject(a) {
				continue
			}
			if a.SID == SIDEveryone || a.SID == SIDAuthenticatedUsers {
				continue // defaults every account has; not the service account's doing
			}
			var what []string
			m := a.Mask
			if m&RightGenericAll != 0 || m&RightFullControlMask == RightFullControlMask {
				what = append(what, "full control")
			} else {
				if m&RightWriteDAC != 0 {
					what = append(what, "change permissions (WRITE_DAC)")
				}
				if m&RightWriteOwner != 0 {
					what = append(what, "take ownership (WRITE_OWNER)")
				}
				if m&RightDelete != 0 {
					what = append(what, "delete")
				}
				if m&RightDSCreateChild != 0 || m&RightDSDeleteChild != 0 {
					what = append(what, "create/delete child objects")
				}
				if (m&RightDSWriteProperty != 0 || m&RightGenericWrite != 0) && a.ObjectType == "" {
					what = append(what, "write every property")
				}
				if m&RightDSControlAccess != 0 && a.ObjectType == "" {
					what = append(what, "every extended right")
				}
			}
			if len(what) == 0 {
				continue
			}
			s := strings.Join(what, ", ") + " via " + a.String()
			if !seen[s] {
				seen[s] = true
				out = append(out, s)
			}
		}
	}
	admin := map[string]string{SIDAdministrators: "BUILTIN\\Administrators", SIDAccountOperators: "BUILTIN\\Account Operators"}
	if domainSID != "" {
		admin[domainSID+"-512"] = "Domain Admins"
		admin[domainSID+"-518"] = "Schema Admins"
		admin[domainSID+"-519"] = "Enterprise Admins"
	}
	var groups []string
	for sid, name := range admin {
		if tok[sid] {
			groups = append(groups, fmt.Sprintf("member of %s (%s)", name, sid))
		}
	}
	sort.Strings(groups)
	return append(out, groups...)
}

// DomainSIDOf returns the domain part of an account SID (without the RID).
func DomainSIDOf(userSID string) string {
	i := strings.LastIndexByte(userSID, '-')
	if i <= 0 || !strings.HasPrefix(userSID, "S-1-5-21-") {
		return ""
	}
	return userSID[:i]
}

// SambaFix is the samba-tool line granting r on ou to sid, inherited by
// user objects only.
func SambaFix(r Right, ou, sid string) string {
	return fmt.Sprintf(`samba-tool dsacl set -H /var/lib/samba/private/sam.ldb --objectdn=%q --sddl="(OA;CIIO;%s;%s;%s;%s)"`,
		ou, r.SDDLRight, r.GUID, GUIDUserClass, sid)
}

// DsaclsFix is the Windows dsacls line granting r on ou to account
// (DOMAIN\name or a UPN), inherited by user objects only.
func DsaclsFix(r Right, ou, account string) string {
	return fmt.Sprintf(`dsacls %q /I:S /G "%s:%s"`, ou, account, r.DsaclsRight)
}
