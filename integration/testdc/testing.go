package testdc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/adwriteback/adwriteback/ldapx"
)

// Ensure starts the test DC if it is not running and returns how to reach
// it. It fails the test with a clear message when it cannot (no root, no
// apt, provisioning failed): integration tests were asked for, so they must
// not silently skip.
func Ensure(tb testing.TB) *Info {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	info, err := Up(ctx, Config{Log: tb.Logf})
	if errors.Is(err, ErrNeedsRoot) {
		tb.Fatalf("cannot start the Samba test DC: %v", err)
	}
	if err != nil {
		tb.Fatalf("cannot start the Samba test DC (run `go run ./integration/cmd/testdc up` to see why): %v", err)
	}
	return info
}

// NewUser creates a fresh user for one test under ou (the in-scope OU when
// empty), optionally in groups, with password UserPass, and deletes it when
// the test ends. Tests that change passwords use their own user so they can
// run in parallel with other packages against the same DC.
func NewUser(tb testing.TB, info *Info, ou string, groups ...string) SeedUser {
	tb.Helper()
	if ou == "" {
		ou = info.InScopeOU
	}
	return NewUserCN(tb, info, "", ou, groups...)
}

// NewUserCN is NewUser with the user's common name chosen by the test
// (any characters; escaped into the DN with ldap.EscapeDN, and '=' as
// \3D, which Samba's ldb requires though RFC 4514 does not), its
// sAMAccountName still fresh, directly under parent (any container: an
// OU, CN=Users, the domain root). An empty cn is the sAMAccountName.
func NewUserCN(tb testing.TB, info *Info, cn, parent string, groups ...string) SeedUser {
	tb.Helper()
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	sam := "t" + hex.EncodeToString(rnd[:])
	if cn == "" {
		cn = sam
	}
	u := SeedUser{
		DN:          "CN=" + strings.ReplaceAll(ldap.EscapeDN(cn), "=", `\3D`) + "," + parent,
		SAM:         sam,
		UPN:         sam + "@adw.test",
		DisplayName: "Test " + sam,
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := Admin(ctx, info)
	if err != nil {
		tb.Fatalf("admin bind: %v", err)
	}
	defer c.Close()
	if err := CreateUser(ctx, c, UserSpec{DN: u.DN, SAM: sam, UPN: u.UPN, DisplayName: u.DisplayName, Password: UserPass}); err != nil {
		tb.Fatal(err)
	}
	for _, g := range groups {
		if err := AddToGroup(c, g, u.DN); err != nil {
			tb.Fatal(err)
		}
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		c, err := Admin(ctx, info)
		if err != nil {
			tb.Logf("cleanup: admin bind: %v", err)
			return
		}
		defer c.Close()
		if err := c.Del(ldapDel(u.DN)); err != nil {
			tb.Logf("cleanup: delete %s: %v", u.DN, err)
		}
	})
	return u
}

// ReadAttr reads one attribute of dn, bound as the administrator, and
// fails the test when it cannot.
func ReadAttr(tb testing.TB, info *Info, dn, attr string) []byte {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Admin(ctx, info)
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	r, err := c.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 30, false,
		"(objectClass=*)", []string{attr}, nil))
	if err != nil || len(r.Entries) != 1 {
		tb.Fatalf("read %s of %s: %v", attr, dn, err)
	}
	return r.Entries[0].GetRawAttributeValue(attr)
}

// PwdVersion is the replication version of dn's unicodePwd (read with
// ldapx.PwdVersion from replPropertyMetaData): it grows by one with every
// password write, so it counts effects in AD. 0 when the account has no
// password entry yet.
func PwdVersion(tb testing.TB, info *Info, dn string) int {
	tb.Helper()
	raw := ReadAttr(tb, info, dn, "replPropertyMetaData")
	if len(raw) < 16 {
		tb.Fatalf("replPropertyMetaData of %s: %d bytes", dn, len(raw))
	}
	v, _ := ldapx.PwdVersion(raw)
	return int(v)
}

// DSACL applies an SDDL grant to dn on the test DC's database (samba-tool
// dsacl set, as the seed does).
func DSACL(tb testing.TB, info *Info, dn, sddl string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := dsacl(ctx, Config{Dir: info.Dir}, dn, sddl); err != nil {
		tb.Fatal(err)
	}
}
