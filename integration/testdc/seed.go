package testdc

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/adwriteback/adwriteback/ldapx"
)

type seedUser struct {
	sam, cn, display string
	inScope          bool
	groups           []string // group CNs under OU=Groups
	consistencyGUID  string   // base64 ms-DS-ConsistencyGuid
	adminCount       bool
}

// ConsistencyGUIDAlice is the immutable id (base64 ms-DS-ConsistencyGuid) of
// the seeded user alice; ConsistencyGUIDDup is shared by dup1 and dup2.
const (
	ConsistencyGUIDAlice = "q83vEjRWeJCrze8SNFZ4kA=="
	ConsistencyGUIDDup   = "ERERESIiMzNERFVVZmZ3dw=="
)

var seedUsers = []seedUser{
	{sam: "alice", cn: "Alice Liddell", display: "Alice Liddell", inScope: true, consistencyGUID: ConsistencyGUIDAlice},
	{sam: "erin", cn: "Erin Hagens", display: "Erin M. Hagens", inScope: true},
	{sam: "bob", cn: "Bob Tables", display: "Robert'); Tables-Smith", inScope: true},
	{sam: "strict", cn: "Stella Strict", display: "Stella Strict", inScope: true, groups: []string{"pso-strict-members"}},
	{sam: "changer", cn: "Chang Er", display: "Chang Er", inScope: true, groups: []string{"pso-change-members"}},
	{sam: "protected", cn: "Pat Protected", display: "Pat Protected", inScope: true, adminCount: true},
	{sam: "outsider", cn: "Otto Outsider", display: "Otto Outsider", inScope: false},
	{sam: "dup1", cn: "Dup One", display: "Dup One", inScope: true, consistencyGUID: ConsistencyGUIDDup},
	{sam: "dup2", cn: "Dup Two", display: "Dup Two", inScope: true, consistencyGUID: ConsistencyGUIDDup},
}

// Rights GUIDs (MS-ADTS) used in the service account's ACEs.
const (
	guidUserClass      = "bf967aba-0de6-11d0-a285-00aa003049e2"
	guidResetPassword  = "00299570-246d-11d0-a768-00aa006e0529"
	guidChangePassword = "ab721a53-1e2f-11d0-9819-00aa0040529b"
	guidPwdLastSet     = "bf967a0a-0de6-11d0-a285-00aa003049e2"
	guidLockoutTime    = "28630ebf-41d5-11d1-a9c1-0000f80367c1"
)

// Admin opens an LDAPS connection bound as the domain Administrator.
func Admin(ctx context.Context, info *Info) (*ldap.Conn, error) {
	return Bind(ctx, info, info.AdminDN, info.AdminPass)
}

// Bind opens an LDAPS connection to the test DC bound as dn.
func Bind(ctx context.Context, info *Info, dn, password string) (*ldap.Conn, error) {
	cfg, err := TLSConfig(info)
	if err != nil {
		return nil, err
	}
	d := tls.Dialer{Config: cfg}
	nc, err := d.DialContext(ctx, "tcp", info.Addr+":636")
	if err != nil {
		return nil, err
	}
	c := ldap.NewConn(nc, true)
	c.Start()
	c.SetTimeout(30 * time.Second)
	if err := c.Bind(dn, password); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// EncodePassword is the unicodePwd value for pw (ldapx's encoding, as a
// go-ldap attribute value).
func EncodePassword(pw string) string { return string(ldapx.EncodePassword(pw)) }

// BindData returns the sub-code AD puts after "data " in a failed bind's
// diagnostic (775 locked, 773 must change, 52e wrong password), "" if none.
func BindData(err error) string {
	var le *ldap.Error
	if errors.As(err, &le) && le.Err != nil {
		s := le.Err.Error()
		if i := strings.Index(s, "data "); i >= 0 {
			return strings.SplitN(s[i+5:], ",", 2)[0]
		}
	}
	return ""
}

func seed(ctx context.Context, cfg Config, info *Info) error {
	c, err := Admin(ctx, info)
	if err != nil {
		return fmt.Errorf("bind as Administrator: %w", err)
	}
	defer c.Close()

	for _, ou := range []string{"Managed", "Unmanaged", "Service", "Groups"} {
		a := ldap.NewAddRequest("OU="+ou+","+BaseDN, nil)
		a.Attribute("objectClass", []string{"organizationalUnit"})
		if err := c.Add(a); err != nil {
			return fmt.Errorf("add OU %s: %w", ou, err)
		}
	}
	for _, g := range []string{"pso-strict-members", "pso-change-members", ServiceGroupCN} {
		a := ldap.NewAddRequest("CN="+g+",OU=Groups,"+BaseDN, nil)
		a.Attribute("objectClass", []string{"group"})
		a.Attribute("sAMAccountName", []string{g})
		if err := c.Add(a); err != nil {
			return fmt.Errorf("add group %s: %w", g, err)
		}
	}
	// Fine-grained policies: strict (min length 16) and change (no minimum
	// age, short history, lockout after 3 bad passwords so unlock is testable).
	psos := []struct {
		dn, group                                string
		prec, minLen, hist, lockThreshold        int
		minAge, maxAge, lockWindow, lockDuration time.Duration
	}{
		{info.StrictPSODN, info.StrictGroupDN, 10, 16, 24, 0, 0, 0, 30 * time.Minute, 30 * time.Minute},
		{info.ChangePSODN, info.ChangeGroupDN, 20, 7, 5, 3, 0, 0, 30 * time.Minute, 30 * time.Minute},
	}
	for _, p := range psos {
		a := ldap.NewAddRequest(p.dn, nil)
		a.Attribute("objectClass", []string{"msDS-PasswordSettings"})
		a.Attribute("msDS-PasswordSettingsPrecedence", []string{strconv.Itoa(p.prec)})
		a.Attribute("msDS-PasswordReversibleEncryptionEnabled", []string{"FALSE"})
		a.Attribute("msDS-PasswordHistoryLength", []string{strconv.Itoa(p.hist)})
		a.Attribute("msDS-PasswordComplexityEnabled", []string{"TRUE"})
		a.Attribute("msDS-MinimumPasswordLength", []string{strconv.Itoa(p.minLen)})
		a.Attribute("msDS-MinimumPasswordAge", []string{interval(p.minAge)})
		a.Attribute("msDS-MaximumPasswordAge", []string{interval(p.maxAge)})
		a.Attribute("msDS-LockoutThreshold", []string{strconv.Itoa(p.lockThreshold)})
		a.Attribute("msDS-LockoutObservationWindow", []string{interval(p.lockWindow)})
		a.Attribute("msDS-LockoutDuration", []string{interval(p.lockDuration)})
		a.Attribute("msDS-PSOAppliesTo", []string{p.group})
		if err := c.Add(a); err != nil {
			return fmt.Errorf("add PSO %s: %w", p.dn, err)
		}
	}

	svc := ldap.NewAddRequest(info.ServiceDN, nil)
	svc.Attribute("objectClass", []string{"user"})
	svc.Attribute("sAMAccountName", []string{"svc-writeback"})
	svc.Attribute("userPrincipalName", []string{info.ServiceUPN})
	svc.Attribute("displayName", []string{"adwriteback service account"})
	svc.Attribute("unicodePwd", []string{EncodePassword(info.ServicePass)})
	svc.Attribute("userAccountControl", []string{"66048"}) // normal account, password never expires
	if err := c.Add(svc); err != nil {
		return fmt.Errorf("add service account: %w", err)
	}
	for _, u := range seedUsers {
		su := info.Users[u.sam]
		if err := CreateUser(ctx, c, UserSpec{
			DN: su.DN, SAM: u.sam, UPN: su.UPN, DisplayName: u.display,
			Password: UserPass, ConsistencyGUID: u.consistencyGUID,
		}); err != nil {
			return err
		}
		for _, g := range u.groups {
			if err := AddToGroup(c, "CN="+g+",OU=Groups,"+BaseDN, su.DN); err != nil {
				return err
			}
		}
	}

	// The service account and the group of the tests' own service
	// accounts (NewServiceAccount) get the same rights.
	for _, dn := range []string{info.ServiceDN, info.ServiceGroupDN()} {
		if err := grantService(ctx, c, cfg, info, dn); err != nil {
			return err
		}
	}
	if err := seedKerberos(ctx, cfg, info); err != nil {
		return err
	}
	// The protected account as AdminSDHolder leaves it: adminCount=1 and a
	// DACL that does not inherit the OU's ACEs, so the service account's
	// rights do not reach it.
	return protect(ctx, c, cfg, info.ProtectedDN)
}

// grantService gives dn the service account's rights.
func grantService(ctx context.Context, c *ldap.Conn, cfg Config, info *Info, dn string) error {
	sid, err := objectSID(c, dn)
	if err != nil {
		return err
	}
	// Least privilege: only these four rights, inherited by user objects
	// below the in-scope OU.
	sddl := fmt.Sprintf("(OA;CIIO;CR;%[1]s;%[5]s;%[6]s)(OA;CIIO;CR;%[2]s;%[5]s;%[6]s)(OA;CIIO;WP;%[3]s;%[5]s;%[6]s)(OA;CIIO;WP;%[4]s;%[5]s;%[6]s)",
		guidResetPassword, guidChangePassword, guidPwdLastSet, guidLockoutTime, guidUserClass, sid)
	if err := dsacl(ctx, cfg, info.InScopeOU, sddl); err != nil {
		return err
	}
	// Reading fine-grained policies (PSOs) is limited to admins by default;
	// the connector's local pre-check needs to read the one in force.
	return dsacl(ctx, cfg, "CN=Password Settings Container,CN=System,"+BaseDN,
		fmt.Sprintf("(A;CI;RPLCLORC;;;%s)", sid))
}

// UserSpec describes a user to create.
type UserSpec struct {
	DN, SAM, UPN, DisplayName, Password string
	ConsistencyGUID                     string // base64, optional
}

// CreateUser adds an enabled user with a password.
func CreateUser(ctx context.Context, c *ldap.Conn, u UserSpec) error {
	a := ldap.NewAddRequest(u.DN, nil)
	a.Attribute("objectClass", []string{"user"})
	a.Attribute("sAMAccountName", []string{u.SAM})
	if u.UPN != "" {
		a.Attribute("userPrincipalName", []string{u.UPN})
	}
	if u.DisplayName != "" {
		a.Attribute("displayName", []string{u.DisplayName})
	}
	a.Attribute("unicodePwd", []string{EncodePassword(u.Password)})
	a.Attribute("userAccountControl", []string{"512"})
	if u.ConsistencyGUID != "" {
		g, err := base64.StdEncoding.DecodeString(u.ConsistencyGUID)
		if err != nil {
			return err
		}
		a.Attribute("mS-DS-ConsistencyGuid", []string{string(g)})
	}
	if err := c.Add(a); err != nil {
		return fmt.Errorf("add user %s: %w", u.DN, err)
	}
	return nil
}

// AddToGroup adds member to group.
func AddToGroup(c *ldap.Conn, group, member string) error {
	m := ldap.NewModifyRequest(group, nil)
	m.Add("member", []string{member})
	if err := c.Modify(m); err != nil {
		return fmt.Errorf("add %s to %s: %w", member, group, err)
	}
	return nil
}

func objectSID(c *ldap.Conn, dn string) (string, error) {
	res, err := c.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 0, false,
		"(objectClass=*)", []string{"objectSid"}, nil))
	if err != nil || len(res.Entries) != 1 {
		return "", fmt.Errorf("read objectSid of %s: %v", dn, err)
	}
	return SIDString(res.Entries[0].GetRawAttributeValue("objectSid"))
}

// SIDString renders a binary SID as S-1-....
func SIDString(b []byte) (string, error) { return ldapx.SIDString(b) }

func dsacl(ctx context.Context, cfg Config, dn, sddl string) error {
	out, err := exec.CommandContext(ctx, "samba-tool", "dsacl", "set", "-s", cfg.confFile(),
		"-H", cfg.Dir+"/private/sam.ldb", "--objectdn="+dn, "--sddl="+sddl).CombinedOutput()
	if err != nil {
		return fmt.Errorf("samba-tool dsacl set on %s: %w\n%s", dn, err, tail(out))
	}
	return nil
}

// interval renders d as AD's negative 100-nanosecond interval.
func interval(d time.Duration) string {
	return strconv.FormatInt(-int64(d/100), 10)
}

func ldapDel(dn string) *ldap.DelRequest { return ldap.NewDelRequest(dn, nil) }
