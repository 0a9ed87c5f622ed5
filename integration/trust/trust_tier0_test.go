//go:build integration

package trust

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/adwriteback/adwriteback/connector/app"
	"github.com/adwriteback/adwriteback/connector/config"
	"github.com/adwriteback/adwriteback/connector/engine"
	"github.com/adwriteback/adwriteback/integration/stack"
	"github.com/adwriteback/adwriteback/integration/testdc"
	"github.com/adwriteback/adwriteback/relay/protocol"
	"github.com/adwriteback/adwriteback/relay/sender"
)

// TestTrustDomainAdminWithoutAdminCount: a user in scope just added to
// Domain Admins has no adminCount (SDProp has not run yet; Samba never
// sets it). The connector must still refuse to write its password:
// protected_account, and the old password still binds.
func TestTrustDomainAdminWithoutAdminCount(t *testing.T) {
	s := stack.New(t)
	u := testdc.NewUser(t, s.DC, "")
	testdc.AddMember(t, s.DC, testdc.DomainAdminsDN, u.DN)
	if ac := testdc.ReadAttr(t, s.DC, u.DN, "adminCount"); len(ac) != 0 {
		t.Fatalf("adminCount of %s is %s: the test needs a Domain Admin without it", u.DN, ac)
	}
	s.Start("a")
	expectRefused(t, s, u.DN, protocol.UserRef{SAM: u.SAM}, protocol.CodeProtectedAccount)
}

// TestTrustNestedDomainAdmin: a user in a group that is itself a member
// of Domain Admins is a Domain Admin too (nested membership).
func TestTrustNestedDomainAdmin(t *testing.T) {
	s := stack.New(t)
	g := testdc.NewGroup(t, s.DC)
	testdc.AddMember(t, s.DC, testdc.DomainAdminsDN, g.DN)
	u := testdc.NewUser(t, s.DC, "")
	testdc.AddMember(t, s.DC, g.DN, u.DN)
	s.Start("a")
	expectRefused(t, s, u.DN, protocol.UserRef{SAM: u.SAM}, protocol.CodeProtectedAccount)
}

// TestTrustConfiguredTier0Group: a member of a group listed in
// scope.tier0_groups is refused as protected, like a Domain Admin.
func TestTrustConfiguredTier0Group(t *testing.T) {
	s := stack.New(t)
	g := testdc.NewGroup(t, s.DC)
	u := testdc.NewUser(t, s.DC, "")
	testdc.AddMember(t, s.DC, g.DN, u.DN)
	s.Start("a", stack.Configure(func(c *stack.ConfigSpec) { c.Tier0Groups = []string{g.DN} }))
	expectRefused(t, s, u.DN, protocol.UserRef{SAM: u.SAM}, protocol.CodeProtectedAccount)
}

// TestTrustExcludedPrimaryGroup: an excluded group that is the user's
// primary group does not list the user as a member (nor does the user's
// memberOf list it): the membership is in primaryGroupID alone. The
// user is still in the group: out_of_scope, nothing written.
func TestTrustExcludedPrimaryGroup(t *testing.T) {
	s := stack.New(t)
	g := testdc.NewGroup(t, s.DC)
	u := testdc.NewUser(t, s.DC, "")
	testdc.AddMember(t, s.DC, g.DN, u.DN)
	testdc.SetPrimaryGroup(t, s.DC, u.DN, g)
	if m := testdc.ReadAttr(t, s.DC, g.DN, "member"); len(m) != 0 {
		t.Fatalf("member of %s is %s: a primary group's members are not listed", g.DN, m)
	}
	s.Start("a", stack.Configure(func(c *stack.ConfigSpec) { c.ExcludeGroups = []string{g.DN} }))
	expectRefused(t, s, u.DN, protocol.UserRef{SAM: u.SAM}, protocol.CodeOutOfScope)
}

// TestTrustComputerAccount: a workstation account in a scope OU, named by
// its sAMAccountName (NAME$), is not a user account: out_of_scope, and
// its password is not written.
func TestTrustComputerAccount(t *testing.T) {
	s := stack.New(t)
	dn, sam := testdc.NewComputer(t, s.DC, s.DC.InScopeOU)
	s.Start("a")
	expectRefused(t, s, dn, protocol.UserRef{SAM: sam}, protocol.CodeOutOfScope)
}

// TestTrustMisspelledExcludedGroup: an excluded group whose DN names
// nothing (a typo) would exclude nobody. The connector must not run
// that way: it fails to start, naming the DN.
func TestTrustMisspelledExcludedGroup(t *testing.T) {
	s := stack.New(t)
	typo := "CN=No Writebak,OU=Groups," + s.DC.BaseDN
	c := s.Connector("a", stack.Configure(func(c *stack.ConfigSpec) { c.ExcludeGroups = []string{typo} }))
	cfg, err := config.Load(c.WriteConfig(), os.Getenv)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	logs := &stack.Buffer{}
	a, err := app.Build(context.Background(), cfg, app.Deps{Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	defer a.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = a.Run(ctx)
	if err == nil || ctx.Err() != nil {
		t.Fatalf("the connector ran with an excluded group that does not exist (Run: %v)\n%s", err, logs)
	}
	if !errors.Is(err, engine.ErrScopeGroup) || !strings.Contains(err.Error(), typo) {
		t.Errorf("Run: %v; want engine.ErrScopeGroup naming %s", err, typo)
	}
	t.Logf("Run: %v", err)
}

// expectRefused sends a reset of the account at dn, by ref, and checks it
// is answered want and nothing was written: the password's replication
// version has not moved, the account's password still binds and the new
// one does not.
func expectRefused(t *testing.T, s *stack.Env, dn string, ref protocol.UserRef, want protocol.ResultCode) {
	t.Helper()
	before := testdc.PwdVersion(t, s.DC, dn)
	const pw = "Trust!Tier0.Reset1"
	res := s.Sender().Do(sender.Request{Op: protocol.OpReset, User: ref, NewPassword: s.Secret(pw)})
	if res.Code != want {
		t.Errorf("reset of %s: %s (%s), want %s", dn, res.Code, res.Detail, want)
	}
	if now := testdc.PwdVersion(t, s.DC, dn); now != before {
		t.Errorf("the password's version moved from %d to %d: written", before, now)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if c, err := testdc.Bind(ctx, s.DC, dn, testdc.UserPass); err != nil {
		t.Errorf("the old password no longer binds as %s: %v", dn, err)
	} else {
		c.Close()
	}
	if c, err := testdc.Bind(ctx, s.DC, dn, pw); err == nil {
		c.Close()
		t.Errorf("the new password binds as %s: written", dn)
	}
}
