package doctor

import (
	"encoding/hex"
	"os"
	"strings"
	"testing"
)

func sambaManagedOU(t testing.TB) []byte {
	t.Helper()
	h, err := os.ReadFile("testdata/samba-managed-ou.sd.hex")
	if err != nil {
		t.Fatal(err)
	}
	b, err := hex.DecodeString(strings.TrimSpace(string(h)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func dacl(t *testing.T, aces []testACE) *ACL {
	t.Helper()
	sd, err := ParseSD(sdBytes(t, svcSID, aces))
	if err != nil {
		t.Fatal(err)
	}
	return sd.DACL
}

func grants(gs []Grant) map[string]Grant {
	m := map[string]Grant{}
	for _, g := range gs {
		m[g.Right.ID] = g
	}
	return m
}

func TestInheritedRights(t *testing.T) {
	tok := NewToken(svcSID, []string{grpSID})
	ci := byte(AceFlagContainerInherit | AceFlagInheritOnly)
	cases := []struct {
		name    string
		aces    []testACE
		granted []string
		denied  []string
	}{
		{"least privilege", leastPrivilegeACEs(), []string{"reset_password", "change_password", "write_pwdlastset", "write_lockouttime"}, nil},
		{"only reset", leastPrivilegeACEs()[:1], []string{"reset_password"}, nil},
		{"granted to a group in the token", []testACE{{AceTypeAccessAllowedObject, ci, RightDSControlAccess, GUIDResetPassword, GUIDUserClass, grpSID}}, []string{"reset_password"}, nil},
		{"granted to someone else", []testACE{{AceTypeAccessAllowedObject, ci, RightDSControlAccess, GUIDResetPassword, GUIDUserClass, otherSD}}, nil, nil},
		{"not inheritable", []testACE{{AceTypeAccessAllowedObject, 0, RightDSControlAccess, GUIDResetPassword, "", svcSID}}, nil, nil},
		{"inherited by computers only", []testACE{{AceTypeAccessAllowedObject, ci, RightDSControlAccess, GUIDResetPassword, "bf967a86-0de6-11d0-a285-00aa003049e2", svcSID}}, nil, nil},
		{"no inherited object type: all classes", []testACE{{AceTypeAccessAllowedObject, ci, RightDSControlAccess, GUIDResetPassword, "", svcSID}}, []string{"reset_password"}, nil},
		{"wrong right GUID", []testACE{{AceTypeAccessAllowedObject, ci, RightDSControlAccess, GUIDPwdLastSet, GUIDUserClass, svcSID}}, nil, nil},
		{"write property where control access is needed", []testACE{{AceTypeAccessAllowedObject, ci, RightDSWriteProperty, GUIDResetPassword, GUIDUserClass, svcSID}}, nil, nil},
		{"property set covers pwdLastSet only", []testACE{{AceTypeAccessAllowedObject, ci, RightDSWriteProperty, GUIDUserAccountRestriction, GUIDUserClass, svcSID}}, []string{"write_pwdlastset"}, nil},
		{"all extended rights", []testACE{{AceTypeAccessAllowedObject, ci, RightDSControlAccess, "", GUIDUserClass, svcSID}}, []string{"reset_password", "change_password"}, nil},
		{"plain generic all", []testACE{{AceTypeAccessAllowed, AceFlagContainerInherit, RightGenericAll, "", "", svcSID}}, []string{"reset_password", "change_password", "write_pwdlastset", "write_lockouttime"}, nil},
		{"plain full control", []testACE{{AceTypeAccessAllowed, AceFlagContainerInherit, RightFullControlMask, "", "", svcSID}}, []string{"reset_password", "change_password", "write_pwdlastset", "write_lockouttime"}, nil},
		{"plain generic write", []testACE{{AceTypeAccessAllowed, AceFlagContainerInherit, RightGenericWrite, "", "", svcSID}}, []string{"write_pwdlastset", "write_lockouttime"}, nil},
		{"deny first wins", append([]testACE{{AceTypeAccessDeniedObject, ci, RightDSControlAccess, GUIDResetPassword, "", SIDEveryone}}, leastPrivilegeACEs()...),
			[]string{"change_password", "write_pwdlastset", "write_lockouttime"}, []string{"reset_password"}},
		{"allow first wins", append(leastPrivilegeACEs(), testACE{AceTypeAccessDenied, AceFlagContainerInherit, RightDSWriteProperty, "", "", svcSID}),
			[]string{"reset_password", "change_password", "write_pwdlastset", "write_lockouttime"}, nil},
		{"plain deny", []testACE{{AceTypeAccessDenied, AceFlagContainerInherit, RightDSWriteProperty, "", "", grpSID}, {AceTypeAccessAllowed, AceFlagContainerInherit, RightGenericAll, "", "", svcSID}},
			[]string{"reset_password", "change_password"}, []string{"write_pwdlastset", "write_lockouttime"}},
	}
	for _, c := range cases {
		got := grants(InheritedRights(dacl(t, c.aces), tok))
		for _, r := range Required {
			g := got[r.ID]
			wantGrant := contains(c.granted, r.ID)
			wantDeny := contains(c.denied, r.ID)
			if g.Granted != wantGrant || g.Denied != wantDeny {
				t.Errorf("%s: %s granted=%v denied=%v, want %v/%v", c.name, r.ID, g.Granted, g.Denied, wantGrant, wantDeny)
			}
			if (g.Granted || g.Denied) && g.ACE == "" {
				t.Errorf("%s: %s: no deciding ACE reported", c.name, r.ID)
			}
		}
	}
	if gs := InheritedRights(nil, tok); gs[0].Granted {
		t.Error("nil DACL grants")
	}
}

func TestObjectRightsIgnoresInheritOnly(t *testing.T) {
	tok := NewToken(svcSID, nil)
	d := dacl(t, []testACE{
		{AceTypeAccessAllowedObject, AceFlagContainerInherit | AceFlagInheritOnly, RightDSControlAccess, GUIDResetPassword, GUIDUserClass, svcSID},
		{AceTypeAccessAllowedObject, 0, RightDSControlAccess, GUIDChangePassword, "", SIDEveryone},
	})
	got := grants(ObjectRights(d, tok))
	if got["reset_password"].Granted || !got["change_password"].Granted {
		t.Fatalf("object rights: %+v", got)
	}
}

func TestExcess(t *testing.T) {
	tok := NewToken(svcSID, []string{domSID + "-513"})
	if ex := Excess(dacl(t, leastPrivilegeACEs()), tok, domSID); len(ex) != 0 {
		t.Fatalf("least privilege flagged: %v", ex)
	}
	ex := Excess(dacl(t, append(leastPrivilegeACEs(), testACE{AceTypeAccessAllowed, AceFlagContainerInherit, RightFullControlMask, "", "", svcSID})), tok, domSID)
	if len(ex) != 1 || !strings.Contains(ex[0], "full control") {
		t.Fatalf("full control: %v", ex)
	}
	ex = Excess(dacl(t, []testACE{{AceTypeAccessAllowedObject, AceFlagContainerInherit, RightDSWriteProperty | RightWriteDAC, "", GUIDUserClass, svcSID}}), tok, domSID)
	if len(ex) != 1 || !strings.Contains(ex[0], "WRITE_DAC") || !strings.Contains(ex[0], "every property") {
		t.Fatalf("write dac: %v", ex)
	}
	// Domain Admins membership: the default OU ACE for Domain Admins now
	// applies, and the membership itself is reported.
	admin := NewToken(svcSID, []string{domSID + "-512"})
	ex = Excess(dacl(t, leastPrivilegeACEs()), admin, domSID)
	if len(ex) != 2 || !strings.Contains(strings.Join(ex, ";"), "member of Domain Admins") {
		t.Fatalf("domain admin: %v", ex)
	}
}

func TestFixLines(t *testing.T) {
	ou := "OU=Managed,DC=adw,DC=test"
	s := SambaFix(Required[2], ou, svcSID)
	want := `samba-tool dsacl set -H /var/lib/samba/private/sam.ldb --objectdn="OU=Managed,DC=adw,DC=test" --sddl="(OA;CIIO;WP;bf967a0a-0de6-11d0-a285-00aa003049e2;bf967aba-0de6-11d0-a285-00aa003049e2;` + svcSID + `)"`
	if s != want {
		t.Errorf("samba fix:\n got %s\nwant %s", s, want)
	}
	d := DsaclsFix(Required[0], ou, "svc@adw.test")
	if d != `dsacls "OU=Managed,DC=adw,DC=test" /I:S /G "svc@adw.test:CA;Reset Password;user"` {
		t.Errorf("dsacls fix: %s", d)
	}
}

func TestCheckRights(t *testing.T) {
	acct := &ServiceAccount{DN: "CN=svc", SID: svcSID, UPN: "svc@adw.test"}
	ou := "OU=X,DC=adw,DC=test"
	cs := CheckRights(RightsInput{OU: ou, Account: acct, DACL: dacl(t, leastPrivilegeACEs()[:1]),
		Sample: &sampleUser{DN: "CN=u," + ou, Writable: []string{"description"}}})
	byName := map[string]Check{}
	for _, c := range cs {
		byName[c.Name] = c
	}
	if c := byName["right reset_password"]; c.Status != OK {
		t.Errorf("reset: %+v", c)
	}
	for _, id := range []string{"change_password", "write_pwdlastset", "write_lockouttime"} {
		c := byName["right "+id]
		if c.Status != Fail || !strings.Contains(c.Fix, "samba-tool dsacl set") || !strings.Contains(c.Fix, "dsacls") || !strings.Contains(c.Fix, svcSID) {
			t.Errorf("%s: %+v", id, c)
		}
	}
	if c := byName["effective attributes"]; c.Status != Warn || !strings.Contains(c.Detail, "pwdLastSet, lockoutTime") {
		t.Errorf("effective attributes: %+v", c)
	}
	if c := byName["least privilege"]; c.Status != OK {
		t.Errorf("least privilege: %+v", c)
	}
	cs = CheckRights(RightsInput{OU: ou, Account: acct, DACLErr: errNoSD})
	if cs[0].Status != Warn || !strings.Contains(cs[0].Fix, "RC") {
		t.Errorf("unreadable SD: %+v", cs[0])
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
