package engine

import (
	"context"
	"errors"
	"testing"

	"github.com/adwriteback/adwriteback/ldapx"
	"github.com/adwriteback/adwriteback/relay/protocol"
	"github.com/adwriteback/adwriteback/relay/sender"
	"github.com/adwriteback/adwriteback/relay/transport"
)

// TestAdmitRefusesTier0AndNonUserAccounts: each account is in scope and
// has no adminCount; what it is, or a group it is in, refuses it before
// AD is written, with allow_protected on (it covers a stale adminCount
// only).
func TestAdmitRefusesTier0AndNonUserAccounts(t *testing.T) {
	const (
		tier0DN = "CN=DnsAdmins,CN=Users,DC=adw,DC=test"
		nestDN  = "CN=Nested,OU=Groups,DC=adw,DC=test"
	)
	for _, tc := range []struct {
		name  string
		edit  func(r *rig, u *ldapx.User)
		code  protocol.ResultCode
		check bool // a check is refused the same way
	}{
		{"administrator RID 500", func(_ *rig, u *ldapx.User) { u.SID = fakeDomainSID + "-500" }, protocol.CodeProtectedAccount, true},
		{"RID 999", func(_ *rig, u *ldapx.User) { u.SID = fakeDomainSID + "-999" }, protocol.CodeProtectedAccount, false},
		{"RODC krbtgt", func(_ *rig, u *ldapx.User) { u.SAMAccountName = "krbtgt_31415" }, protocol.CodeProtectedAccount, false},
		{"builtin SID", func(_ *rig, u *ldapx.User) { u.SID = "S-1-5-32-544" }, protocol.CodeProtectedAccount, false},
		{"objectSid unreadable", func(_ *rig, u *ldapx.User) { u.SID = "" }, protocol.CodeAccessDenied, false},
		{"workstation", func(_ *rig, u *ldapx.User) { u.UserAccountControl = ldapx.UACWorkstationTrustAccount }, protocol.CodeOutOfScope, true},
		{"domain controller", func(_ *rig, u *ldapx.User) { u.UserAccountControl = ldapx.UACServerTrustAccount }, protocol.CodeOutOfScope, false},
		{"trust", func(_ *rig, u *ldapx.User) { u.UserAccountControl = ldapx.UACInterdomainTrustAccount }, protocol.CodeOutOfScope, false},
		{"temp duplicate", func(_ *rig, u *ldapx.User) { u.UserAccountControl = ldapx.UACTempDuplicateAccount }, protocol.CodeOutOfScope, false},
		{"no userAccountControl", func(_ *rig, u *ldapx.User) { u.UserAccountControl = 0 }, protocol.CodeOutOfScope, false},
		{"domain admin", func(r *rig, u *ldapx.User) { r.inGroup(u, fakeDomainSID+"-512") }, protocol.CodeProtectedAccount, true},
		{"enterprise admin of the forest root", func(r *rig, u *ldapx.User) { r.inGroup(u, "S-1-5-21-7-8-9-519") }, protocol.CodeProtectedAccount, false},
		{"account operator", func(r *rig, u *ldapx.User) { r.inGroup(u, "S-1-5-32-548") }, protocol.CodeProtectedAccount, false},
		{"group policy creator owner", func(r *rig, u *ldapx.User) { r.inGroup(u, fakeDomainSID+"-520") }, protocol.CodeProtectedAccount, false},
		{"configured tier-0 group", func(r *rig, u *ldapx.User) { r.inGroup(u, fakeDomainSID+"-3000") }, protocol.CodeProtectedAccount, true},
		{"tokenGroups unreadable", func(r *rig, _ *ldapx.User) { r.dir.noTokenGroups = true }, protocol.CodeAccessDenied, true},
		{"excluded and domain admin", func(r *rig, u *ldapx.User) {
			r.dir.groups["CN=NoWriteback,DC=adw,DC=test"] = []string{u.DN}
			r.inGroup(u, fakeDomainSID+"-512")
		}, protocol.CodeProtectedAccount, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, func(_ *Config, d *Domain) {
				d.AllowProtected = true
				d.Tier0Groups = []string{tier0DN}
			})
			r.dir.groupSIDs[tier0DN] = fakeDomainSID + "-3000"
			u := r.dir.users["alice"]
			tc.edit(r, u)
			ops := []protocol.Op{protocol.OpReset}
			if tc.check {
				ops = append(ops, protocol.OpCheck)
			}
			for _, op := range ops {
				d := r.build(sender.Request{Op: op, User: protocol.UserRef{SAM: u.SAMAccountName},
					Actor: protocol.Actor{Kind: protocol.ActorAdmin, ID: "a"}, NewPassword: protocol.SecretFromString(goodPw)})
				wantAction(t, r.handle(d), transport.Complete())
				if res := r.result(d.MessageID); res.Code != tc.code {
					t.Fatalf("%s: code %s (%s), want %s", op, res.Code, res.Detail, tc.code)
				}
			}
			if r.dir.writeCount() != 0 {
				t.Fatal("AD was written")
			}
		})
	}
}

// inGroup puts u in a fresh group with the SID sid (its tokenGroups then
// holds sid).
func (r *rig) inGroup(u *ldapx.User, sid string) {
	dn := "CN=" + sid + ",OU=Groups,DC=adw,DC=test"
	r.dir.groups[dn] = append(r.dir.groups[dn], u.DN)
	r.dir.groupSIDs[dn] = sid
}

func TestTier0Group(t *testing.T) {
	for sid, want := range map[string]string{
		"S-1-5-32-544":                       "Administrators",
		"S-1-5-32-551":                       "Backup Operators",
		"S-1-5-21-1-2-3-512":                 "Domain Admins",
		"S-1-5-21-1-2-3-498":                 "Enterprise Read-only Domain Controllers",
		"S-1-5-21-1-2-3-527":                 "Enterprise Key Admins",
		"S-1-5-21-1-2-3-517":                 "Cert Publishers",
		"S-1-5-21-1-2-3-513":                 "", // Domain Users
		"S-1-5-21-1-2-3-1512":                "",
		"S-1-5-32-545":                       "", // Users
		"S-1-5-11":                           "",
		"S-1-5-21-1-2-3-4-512":               "",
		"S-1-5-21-1930037822-38868309-1-519": "Enterprise Admins",
	} {
		name, ok := tier0Group(sid)
		if name != want || ok != (want != "") {
			t.Errorf("tier0Group(%s) = %q, %v; want %q", sid, name, ok, want)
		}
	}
}

// TestScopeGroupsFailClosed: a configured group that does not exist makes
// ResolveGroups fail with ErrScopeGroup naming it, and every command in
// the domain wait (transient) rather than run without the exclusion.
func TestScopeGroupsFailClosed(t *testing.T) {
	const typo = "CN=No Writebak,DC=adw,DC=test"
	r := newRig(t, func(_ *Config, d *Domain) { d.ExcludeGroups = append(d.ExcludeGroups, typo) })
	err := r.eng.ResolveGroups(context.Background())
	var ge *GroupError
	if !errors.Is(err, ErrScopeGroup) || !errors.As(err, &ge) || ge.DN != typo || ge.Key != "exclude_groups" {
		t.Fatalf("ResolveGroups: %v; want ErrScopeGroup naming %s", err, typo)
	}
	d := r.build(reset("alice", goodPw))
	wantAction(t, r.handle(d), transport.Abandon())
	d.DeliveryCount = 5
	wantAction(t, r.handle(d), transport.Complete())
	if res := r.result(d.MessageID); res.Code != protocol.CodeTransient {
		t.Fatalf("code %s, want transient", res.Code)
	}
	if r.dir.writeCount() != 0 {
		t.Fatal("AD was written")
	}
}

// TestScopeGroupsResolvedOnceADCAnswers: when no DC answers at start the
// groups are not resolved: a command waits (transient, not an error of
// the configuration), and once a DC answers they are resolved and the
// exclusion holds.
func TestScopeGroupsResolvedOnceADCAnswers(t *testing.T) {
	r := newRig(t)
	r.dir.groupErr = &ldapx.Error{Op: "group", Kind: ldapx.KindTransient}
	if err := r.eng.ResolveGroups(context.Background()); err == nil || errors.Is(err, ErrScopeGroup) {
		t.Fatalf("ResolveGroups with no DC: %v; want a transient error", err)
	}
	d := r.build(reset("alice", goodPw))
	wantAction(t, r.handle(d), transport.Abandon())
	r.dir.groupErr = nil
	wantAction(t, r.handle(d), transport.Complete())
	if res := r.result(d.MessageID); res.Code != protocol.CodeSucceeded {
		t.Fatalf("alice once resolved: %s (%s)", res.Code, res.Detail)
	}
	ex := r.build(reset("excluded", goodPw))
	r.handle(ex)
	if res := r.result(ex.MessageID); res.Code != protocol.CodeOutOfScope {
		t.Fatalf("excluded once resolved: %s", res.Code)
	}
}
