package testdc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/adwriteback/adwriteback/ldapx"
)

// Well-known groups of the test domain.
const (
	DomainAdminsDN = "CN=Domain Admins,CN=Users," + BaseDN
	DomainUsersRID = 513
)

// Group is a group created for one test.
type Group struct {
	DN, SID string
}

// NewGroup creates a fresh global security group for one test under
// OU=Groups and deletes it when the test ends (after whatever the test
// created later: a group cannot go while it is someone's primary group).
func NewGroup(tb testing.TB, info *Info) Group {
	tb.Helper()
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	name := "g" + hex.EncodeToString(rnd[:])
	g := Group{DN: "CN=" + name + ",OU=Groups," + info.BaseDN}
	admin(tb, info, func(c *ldap.Conn) error {
		a := ldap.NewAddRequest(g.DN, nil)
		a.Attribute("objectClass", []string{"group"})
		a.Attribute("sAMAccountName", []string{name})
		return c.Add(a)
	})
	tb.Cleanup(func() { cleanup(tb, info, func(c *ldap.Conn) error { return c.Del(ldapDel(g.DN)) }) })
	sid, err := SIDString(ReadAttr(tb, info, g.DN, "objectSid"))
	if err != nil {
		tb.Fatalf("objectSid of %s: %v", g.DN, err)
	}
	g.SID = sid
	return g
}

// AddMember adds member to group and takes it out again when the test
// ends (Domain Admins outlives the test).
func AddMember(tb testing.TB, info *Info, group, member string) {
	tb.Helper()
	admin(tb, info, func(c *ldap.Conn) error { return AddToGroup(c, group, member) })
	tb.Cleanup(func() {
		cleanup(tb, info, func(c *ldap.Conn) error {
			m := ldap.NewModifyRequest(group, nil)
			m.Delete("member", []string{member})
			return c.Modify(m)
		})
	})
}

// SetPrimaryGroup makes group (which the user must already be a member
// of) the user's primary group: primaryGroupID is the group's RID, and
// AD then no longer lists the user in the group's member attribute, nor
// the group in the user's memberOf. The user's primary group is Domain
// Users again when the test ends.
func SetPrimaryGroup(tb testing.TB, info *Info, user string, group Group) {
	tb.Helper()
	_, rid, ok := ldapx.DomainRID(group.SID)
	if !ok {
		tb.Fatalf("%s: not a domain group's SID", group.SID)
	}
	set := func(rid uint32) func(c *ldap.Conn) error {
		return func(c *ldap.Conn) error {
			m := ldap.NewModifyRequest(user, nil)
			m.Replace("primaryGroupID", []string{strconv.FormatUint(uint64(rid), 10)})
			return c.Modify(m)
		}
	}
	admin(tb, info, set(rid))
	tb.Cleanup(func() { cleanup(tb, info, set(DomainUsersRID)) })
}

// NewComputer creates a workstation account (objectClass computer,
// WORKSTATION_TRUST_ACCOUNT, a password set) named NAME$ under ou and
// deletes it when the test ends. It returns its DN and sAMAccountName.
func NewComputer(tb testing.TB, info *Info, ou string) (dn, sam string) {
	tb.Helper()
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	name := "WS" + hex.EncodeToString(rnd[:])
	dn, sam = "CN="+name+","+ou, name+"$"
	admin(tb, info, func(c *ldap.Conn) error {
		a := ldap.NewAddRequest(dn, nil)
		a.Attribute("objectClass", []string{"computer"})
		a.Attribute("sAMAccountName", []string{sam})
		a.Attribute("userAccountControl", []string{"4096"}) // WORKSTATION_TRUST_ACCOUNT
		a.Attribute("unicodePwd", []string{EncodePassword(UserPass)})
		return c.Add(a)
	})
	tb.Cleanup(func() { cleanup(tb, info, func(c *ldap.Conn) error { return c.Del(ldapDel(dn)) }) })
	return dn, sam
}

// admin runs f bound as the administrator and fails the test on error.
func admin(tb testing.TB, info *Info, f func(*ldap.Conn) error) {
	tb.Helper()
	if err := asAdmin(info, f); err != nil {
		tb.Fatal(err)
	}
}

// cleanup runs f bound as the administrator and logs an error.
func cleanup(tb testing.TB, info *Info, f func(*ldap.Conn) error) {
	if err := asAdmin(info, f); err != nil {
		tb.Logf("cleanup: %v", err)
	}
}

func asAdmin(info *Info, f func(*ldap.Conn) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := Admin(ctx, info)
	if err != nil {
		return err
	}
	defer c.Close()
	return f(c)
}
