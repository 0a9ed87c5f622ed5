package ldapx

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// RefKind says how a user is referenced.
type RefKind int

const (
	RefObjectGUID      RefKind = iota + 1 // GUID string form
	RefConsistencyGUID                    // base64 immutable id: ms-DS-ConsistencyGuid or objectGUID (Entra's)
	RefUPN                                // userPrincipalName
	RefSAM                                // sAMAccountName
)

func (k RefKind) String() string {
	switch k {
	case RefObjectGUID:
		return "objectGUID"
	case RefConsistencyGUID:
		return "immutable id (ms-DS-ConsistencyGuid or objectGUID)"
	case RefUPN:
		return "userPrincipalName"
	case RefSAM:
		return "sAMAccountName"
	}
	return "unknown"
}

// UserRef identifies one user.
type UserRef struct {
	Kind  RefKind
	Value string
}

// User is what the connector needs to know about an account.
type User struct {
	DN                 string
	ObjectGUID         string // string form
	SID                string // objectSid, S-1-5-21-...; "" when unreadable
	SAMAccountName     string
	UserPrincipalName  string
	DisplayName        string
	GivenName          string // givenName and sn: the entra banned mode's name terms
	Surname            string
	UserAccountControl uint32
	AdminCount         int
	PwdLastSet         time.Time // zero when 0 (must change) or never set
	MustChange         bool      // pwdLastSet is 0
	// PwdVersion is unicodePwd's replication version (raised by every
	// password write); 0 when the account cannot read
	// replPropertyMetaData.
	PwdVersion uint32
	// PwdWrittenAt is when the password was last written, by the writing
	// DC's clock in whole seconds (replPropertyMetaData); zero when
	// unreadable.
	PwdWrittenAt time.Time
	LockoutTime  time.Time // zero when not locked
	ResultantPSO string    // DN of the effective PSO, "" when the domain policy applies
	DC           string
}

// userAccountControl flags used by the connector.
const (
	UACAccountDisable          = 0x0002
	UACPasswordNotReq          = 0x0020
	UACTempDuplicateAccount    = 0x0100
	UACNormalAccount           = 0x0200
	UACInterdomainTrustAccount = 0x0800
	UACWorkstationTrustAccount = 0x1000
	UACServerTrustAccount      = 0x2000
	UACDontExpirePassword      = 0x10000

	// UACAccountTypes are the account-type bits; an account has exactly
	// one of them.
	UACAccountTypes = UACTempDuplicateAccount | UACNormalAccount | UACInterdomainTrustAccount |
		UACWorkstationTrustAccount | UACServerTrustAccount
)

// Disabled reports userAccountControl ACCOUNTDISABLE.
func (u *User) Disabled() bool { return u.UserAccountControl&UACAccountDisable != 0 }

// NormalAccount reports whether the account is a person's: of the
// account-type bits of userAccountControl only NORMAL_ACCOUNT is set (not
// a computer, a DC, a trust or a temporary duplicate account).
func (u *User) NormalAccount() bool {
	return u.UserAccountControl&UACAccountTypes == UACNormalAccount
}

// Protected reports adminCount=1 (AdminSDHolder-protected).
func (u *User) Protected() bool { return u.AdminCount == 1 }

var userAttributes = []string{
	"objectGUID", "objectSid", "sAMAccountName", "userPrincipalName", "displayName", "givenName", "sn", "userAccountControl",
	"adminCount", "pwdLastSet", "lockoutTime", "msDS-ResultantPSO", "replPropertyMetaData",
}

// UserAttributes are the attributes FindUser and ReadUser read (for
// benchmarks that ask a DC for the same work).
func UserAttributes() []string { return append([]string(nil), userAttributes...) }

// filter returns the LDAP filter for ref, every value escaped.
func (ref UserRef) filter() (string, error) {
	v := strings.TrimSpace(ref.Value)
	if v == "" {
		return "", fmt.Errorf("%w: empty %s", ErrInvalidInput, ref.Kind)
	}
	if strings.ContainsRune(v, 0) {
		return "", fmt.Errorf("%w: %s contains NUL", ErrInvalidInput, ref.Kind)
	}
	// Every account class (users, computers, managed service accounts):
	// the engine refuses what is not a normal user account itself, so a
	// computer's name is answered as out of scope, not as unknown.
	const users = "(objectClass=user)"
	switch ref.Kind {
	case RefObjectGUID:
		b, err := GUIDBytes(v)
		if err != nil {
			return "", err
		}
		return "(&" + users + "(objectGUID=" + escapeBytes(b) + "))", nil
	case RefConsistencyGUID:
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil || len(b) != 16 {
			return "", fmt.Errorf("%w: immutable id must be base64 of 16 bytes", ErrInvalidInput)
		}
		return immutableIDFilter(users, b), nil
	case RefUPN:
		if len(v) > 1024 {
			return "", fmt.Errorf("%w: userPrincipalName too long", ErrInvalidInput)
		}
		return "(&" + users + "(userPrincipalName=" + ldap.EscapeFilter(v) + "))", nil
	case RefSAM:
		if len(v) > 256 {
			return "", fmt.Errorf("%w: sAMAccountName too long", ErrInvalidInput)
		}
		return "(&" + users + "(sAMAccountName=" + ldap.EscapeFilter(v) + "))", nil
	}
	return "", fmt.Errorf("%w: unknown reference kind %d", ErrInvalidInput, ref.Kind)
}

// immutableIDFilter matches Entra's immutable id as Entra Connect issues
// it: newer installations anchor on ms-DS-ConsistencyGuid (which they
// fill from objectGUID), older ones on objectGUID itself. Either
// attribute holding the 16 bytes matches; an account matching by both is
// one entry, and two accounts (one by each attribute) are two, which
// FindUser reports as ambiguous.
func immutableIDFilter(users string, b []byte) string {
	e := escapeBytes(b)
	return "(&" + users + "(|(mS-DS-ConsistencyGuid=" + e + ")(objectGUID=" + e + ")))"
}

// FindUser resolves ref to exactly one user under the base DN. No match is
// ErrNotFound, more than one ErrAmbiguous.
func (cl *Client) FindUser(ctx context.Context, ref UserRef) (*User, error) {
	const op = "ldapx.FindUser"
	filter, err := ref.filter()
	if err != nil {
		return nil, &Error{Op: op, Kind: KindInvalidInput, Err: err}
	}
	base, err := cl.baseDN(ctx)
	if err != nil {
		return nil, err
	}
	res, dc, err := cl.search(ctx, op, ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree,
		ldap.NeverDerefAliases, 2, 0, false, filter, userAttributes, nil))
	if err != nil {
		var le *Error
		if errors.As(err, &le) && le.ResultCode == ldap.LDAPResultSizeLimitExceeded {
			return nil, &Error{Op: op, Kind: KindAmbiguous, DC: dc, Err: fmt.Errorf("more than one user matches %s", ref.Kind)}
		}
		return nil, err
	}
	switch len(res.Entries) {
	case 0:
		return nil, &Error{Op: op, Kind: KindNotFound, DC: dc, Err: fmt.Errorf("no user matches %s", ref.Kind)}
	case 1:
	default:
		return nil, &Error{Op: op, Kind: KindAmbiguous, DC: dc, Err: fmt.Errorf("%d users match %s", len(res.Entries), ref.Kind)}
	}
	return userFromEntry(res.Entries[0], dc)
}

// ReadUser reads the user at dn (fresh, not cached).
func (cl *Client) ReadUser(ctx context.Context, dn string) (*User, error) {
	res, dc, err := cl.search(ctx, "ldapx.ReadUser", ldap.NewSearchRequest(dn, ldap.ScopeBaseObject,
		ldap.NeverDerefAliases, 1, 0, false, "(objectClass=user)", userAttributes, nil))
	if err != nil {
		return nil, err
	}
	if len(res.Entries) != 1 {
		return nil, &Error{Op: "ldapx.ReadUser", Kind: KindNotFound, DC: dc, Err: fmt.Errorf("no user at that DN")}
	}
	return userFromEntry(res.Entries[0], dc)
}

func userFromEntry(e *ldap.Entry, dc string) (*User, error) {
	u := &User{
		DN:                e.DN,
		ObjectGUID:        GUIDString(e.GetRawAttributeValue("objectGUID")),
		SAMAccountName:    e.GetAttributeValue("sAMAccountName"),
		UserPrincipalName: e.GetAttributeValue("userPrincipalName"),
		DisplayName:       e.GetAttributeValue("displayName"),
		GivenName:         e.GetAttributeValue("givenName"),
		Surname:           e.GetAttributeValue("sn"),
		ResultantPSO:      e.GetAttributeValue("msDS-ResultantPSO"),
		DC:                dc,
	}
	if s := e.GetAttributeValue("userAccountControl"); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, &Error{Op: "ldapx.FindUser", Kind: KindOther, DC: dc, Err: fmt.Errorf("userAccountControl: %w", err)}
		}
		u.UserAccountControl = uint32(v)
	}
	if raw := e.GetRawAttributeValue("objectSid"); len(raw) > 0 {
		sid, err := SIDString(raw)
		if err != nil {
			return nil, &Error{Op: "ldapx.FindUser", Kind: KindOther, DC: dc, Err: fmt.Errorf("objectSid: %w", err)}
		}
		u.SID = sid
	}
	if s := e.GetAttributeValue("adminCount"); s != "" {
		u.AdminCount, _ = strconv.Atoi(s)
	}
	pw, _ := PwdMeta(e.GetRawAttributeValue("replPropertyMetaData")) // zero when unreadable
	u.PwdVersion, u.PwdWrittenAt = pw.Version, pw.At
	pls := e.GetAttributeValue("pwdLastSet")
	u.MustChange = pls == "0"
	var err error
	if u.PwdLastSet, err = FileTime(pls); err != nil {
		return nil, &Error{Op: "ldapx.FindUser", Kind: KindOther, DC: dc, Err: err}
	}
	if u.LockoutTime, err = FileTime(e.GetAttributeValue("lockoutTime")); err != nil {
		return nil, &Error{Op: "ldapx.FindUser", Kind: KindOther, DC: dc, Err: err}
	}
	return u, nil
}

// TokenGroups reads the SIDs of every security group the account at dn
// is in: the primary group, nested groups and the builtin ones
// (tokenGroups, a constructed attribute that only a base-scope read
// returns). An empty list means the service account may not read it:
// every account has at least its primary group.
func (cl *Client) TokenGroups(ctx context.Context, dn string) ([]string, error) {
	const op = "ldapx.TokenGroups"
	e, err := cl.readEntry(ctx, op, dn, "(objectClass=user)", []string{"tokenGroups"})
	if err != nil {
		return nil, err
	}
	raw := e.GetRawAttributeValues("tokenGroups")
	sids := make([]string, 0, len(raw))
	for _, v := range raw {
		sid, err := SIDString(v)
		if err != nil {
			return nil, &Error{Op: op, Kind: KindOther, Err: fmt.Errorf("tokenGroups: %w", err)}
		}
		sids = append(sids, sid)
	}
	return sids, nil
}

// GroupSID reads the objectSid of the group at dn. No object at dn, or
// one that is not a group, is KindNoSuchObject.
func (cl *Client) GroupSID(ctx context.Context, dn string) (string, error) {
	const op = "ldapx.GroupSID"
	e, err := cl.readEntry(ctx, op, dn, "(objectClass=group)", []string{"objectSid"})
	if err != nil {
		return "", err
	}
	sid, err := SIDString(e.GetRawAttributeValue("objectSid"))
	if err != nil {
		return "", &Error{Op: op, Kind: KindOther, Err: fmt.Errorf("objectSid of %s: %w", dn, err)}
	}
	return sid, nil
}

func (cl *Client) baseDN(ctx context.Context) (string, error) {
	if cl.cfg.BaseDN != "" {
		return cl.cfg.BaseDN, nil
	}
	r, err := cl.RootDSE(ctx)
	if err != nil {
		return "", err
	}
	return r.DefaultNamingContext, nil
}
