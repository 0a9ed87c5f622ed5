package winsvc

import (
	"errors"
	"slices"
	"testing"
)

func TestParseAccount(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Account
	}{
		{"", Account{`NT SERVICE\adwriteback`, Virtual}},
		{`nt service\ADWRITEBACK`, Account{`NT SERVICE\adwriteback`, Virtual}},
		{"LocalSystem", Account{"LocalSystem", BuiltIn}},
		{`NT AUTHORITY\SYSTEM`, Account{"LocalSystem", BuiltIn}},
		{`NT AUTHORITY\Network Service`, Account{`NT AUTHORITY\NetworkService`, BuiltIn}},
		{`nt authority\localservice`, Account{`NT AUTHORITY\LocalService`, BuiltIn}},
		{`ADW\gmsa$`, Account{`ADW\gmsa$`, ManagedService}},
		{` ADW\adwriteback-gms$ `, Account{`ADW\adwriteback-gms$`, ManagedService}},
	} {
		got, err := ParseAccount("adwriteback", tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseAccount(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	for _, tc := range []struct {
		in   string
		want error
	}{
		{`ADW\svc-writeback`, ErrAccountNeedsPassword},
		{`.\localuser`, ErrAccountNeedsPassword},
		{"svc-writeback", ErrAccountNeedsPassword},
		{"gmsa$", ErrBadAccount},
		{"gmsa$@adw.test", ErrBadAccount},
		{`\gmsa$`, ErrBadAccount},
		{`.\gmsa$`, ErrBadAccount},
		{`ADW\$`, ErrBadAccount},
		{`ADW\a-name-far-too-long$`, ErrBadAccount},
		{`ADW\gm*sa$`, ErrBadAccount},
		{`NT SERVICE\other`, ErrBadAccount},
	} {
		if _, err := ParseAccount("adwriteback", tc.in); !errors.Is(err, tc.want) {
			t.Errorf("ParseAccount(%q) = %v, want %v", tc.in, err, tc.want)
		}
	}
}

func TestSettingsByAccountKind(t *testing.T) {
	base := InstallOptions{DisplayName: "d", Description: "e"}
	for _, tc := range []struct {
		account, startName string
		manual             bool
		deps               []string
	}{
		{"", `NT SERVICE\adw`, false, nil},
		{"LocalSystem", "LocalSystem", true, nil},
		{`NT AUTHORITY\NetworkService`, `NT AUTHORITY\NetworkService`, false, nil},
		{`ADW\gmsa$`, `ADW\gmsa$`, false, []string{"Netlogon"}},
	} {
		o := base
		o.Account, o.Manual = tc.account, tc.manual
		s, err := Settings("adw", o)
		if err != nil {
			t.Fatalf("%q: %v", tc.account, err)
		}
		start := StartDelayedAutomatic
		if tc.manual {
			start = StartManual
		}
		if s.ServiceStartName != tc.startName || s.Start != start || !slices.Equal(s.Dependencies, tc.deps) || s.DisplayName != "d" || s.Description != "e" {
			t.Errorf("%q: %+v", tc.account, s)
		}
	}
	if _, err := Settings("adw", InstallOptions{Account: `ADW\user`}); !errors.Is(err, ErrAccountNeedsPassword) {
		t.Errorf("user account: %v", err)
	}
}

// TestFolderSDDLByAccountKind: each kind's folders grant its SID (the
// gMSA's as Windows looks it up), except LocalSystem, which has full
// control already.
func TestFolderSDDLByAccountKind(t *testing.T) {
	const gmsaSID = "S-1-5-21-1-2-3-1105"
	for _, tc := range []struct{ sid, read, modify string }{
		{ServiceSID("adwriteback"), "O:BAD:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;0x1200a9;;;" + ServiceSID("adwriteback") + ")",
			"O:BAD:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;0x1301bf;;;" + ServiceSID("adwriteback") + ")"},
		{gmsaSID, "O:BAD:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;0x1200a9;;;" + gmsaSID + ")",
			"O:BAD:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;0x1301bf;;;" + gmsaSID + ")"},
		{SIDNetworkService, "O:BAD:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;0x1200a9;;;S-1-5-20)",
			"O:BAD:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;0x1301bf;;;S-1-5-20)"},
		{SIDLocalSystem, "O:BAD:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)", "O:BAD:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)"},
	} {
		r, err1 := FolderSDDL(tc.sid, ReadAccess)
		m, err2 := FolderSDDL(tc.sid, ModifyAccess)
		if err1 != nil || err2 != nil || r != tc.read || m != tc.modify {
			t.Errorf("%s: read %s, modify %s (%v %v)", tc.sid, r, m, err1, err2)
		}
	}
	for _, a := range []string{"", "LocalSystem", `NT AUTHORITY\LocalService`, `nt authority\network service`} {
		acct, _ := ParseAccount("adwriteback", a)
		sid1, ok1 := KnownAccountSID("adwriteback", a)
		sid2, ok2 := KnownAccountSID("adwriteback", acct.Name)
		if !ok1 || !ok2 || sid1 != sid2 {
			t.Errorf("%q: the SID of the given and the stored name differ: %s %s", a, sid1, sid2)
		}
	}
	if _, ok := KnownAccountSID("adwriteback", `ADW\gmsa$`); ok {
		t.Error("a gMSA's SID is only known to Windows")
	}
}
