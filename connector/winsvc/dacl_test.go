package winsvc

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestServiceSID: the virtual account SID is what `sc showsid` prints:
// TrustedInstaller's is well known, and case does not matter.
func TestServiceSID(t *testing.T) {
	const trustedInstaller = "S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464"
	for _, name := range []string{"TrustedInstaller", "trustedinstaller"} {
		if got := ServiceSID(name); got != trustedInstaller {
			t.Errorf("ServiceSID(%q) = %s, want %s", name, got, trustedInstaller)
		}
	}
	if got := ServiceSID("adwriteback"); got != "S-1-5-80-2093958564-72526658-1826821448-3966065631-2820160711" {
		t.Errorf("ServiceSID(adwriteback) = %s", got)
	}
}

func TestKnownAccountSID(t *testing.T) {
	svc := ServiceSID("adw2")
	for account, want := range map[string]string{
		"":                            svc,
		`NT SERVICE\adw2`:             svc,
		`nt service\ADW2`:             svc,
		"LocalSystem":                 SIDLocalSystem,
		`NT AUTHORITY\SYSTEM`:         SIDLocalSystem,
		`NT AUTHORITY\LocalService`:   SIDLocalService,
		`NT AUTHORITY\NetworkService`: SIDNetworkService,
	} {
		if got, ok := KnownAccountSID("adw2", account); !ok || got != want {
			t.Errorf("KnownAccountSID(%q) = %s, %v, want %s", account, got, ok, want)
		}
	}
	for _, account := range []string{`CORP\svc-writeback`, `NT SERVICE\other`, "svc$"} {
		if got, ok := KnownAccountSID("adw2", account); ok {
			t.Errorf("KnownAccountSID(%q) = %s, want a lookup", account, got)
		}
	}
}

// TestFolderSDDL: the exact descriptors service install sets.
func TestFolderSDDL(t *testing.T) {
	svc := ServiceSID("adwriteback")
	for _, tc := range []struct {
		sid    string
		access FolderAccess
		want   string
	}{
		{svc, ReadAccess, "O:BAD:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;0x1200a9;;;" + svc + ")"},
		{svc, ModifyAccess, "O:BAD:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;0x1301bf;;;" + svc + ")"},
		{"S-1-5-21-1-2-3-1104", ReadAccess, "O:BAD:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;0x1200a9;;;S-1-5-21-1-2-3-1104)"},
		{SIDLocalService, ModifyAccess, "O:BAD:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;0x1301bf;;;S-1-5-19)"},
		{SIDLocalSystem, ModifyAccess, "O:BAD:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)"},
	} {
		got, err := FolderSDDL(tc.sid, tc.access)
		if err != nil || got != tc.want {
			t.Errorf("FolderSDDL(%s, %s) = %q, %v, want %q", tc.sid, tc.access, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "NT SERVICE\\adwriteback", "S-1-5-18)(A;;FA;;;WD"} {
		if _, err := FolderSDDL(bad, ReadAccess); !errors.Is(err, ErrBadSID) {
			t.Errorf("FolderSDDL(%q): %v, want ErrBadSID", bad, err)
		}
	}
}

// TestCheckFolder: a drive's root and the system's shared folders are
// refused; a folder of its own, even under one of them, is not.
func TestCheckFolder(t *testing.T) {
	env := map[string]string{"ProgramData": "/pd", "ProgramFiles": "/pf", "USERPROFILE": "/users/alice", "SystemRoot": "/win"}
	getenv := func(k string) string { return env[k] }
	for _, dir := range []string{"/", "/pd", "/PD/", "/pf", "/win", "/users/alice", "/users"} {
		if err := CheckFolder(dir, getenv); !errors.Is(err, ErrSharedFolder) {
			t.Errorf("CheckFolder(%s) = %v, want ErrSharedFolder", dir, err)
		}
	}
	for _, dir := range []string{"/pd/adwriteback", "/pd/adwriteback/journal", "/users/alice/adw", "/srv/adw"} {
		if err := CheckFolder(dir, getenv); err != nil {
			t.Errorf("CheckFolder(%s) = %v", dir, err)
		}
	}
}

// TestCopyBinary: the program is copied into a new folder, replaces an
// older copy, and is not copied onto itself.
func TestCopyBinary(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "build", "adwriteback.exe")
	if err := os.MkdirAll(filepath.Dir(src), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(src, []byte("new program"), 0o755); err != nil {
		t.Fatal(err)
	}
	dst := BinaryPath(filepath.Join(dir, "Program Files"))
	if dst != filepath.Join(dir, "Program Files", "adwriteback", "adwriteback.exe") {
		t.Errorf("BinaryPath = %s", dst)
	}
	for i := 0; i < 2; i++ { // into a new folder, then over the copy
		if copied, err := CopyBinary(src, dst); err != nil || !copied {
			t.Fatalf("copy %d: %v, %v", i, copied, err)
		}
		if b, err := os.ReadFile(dst); err != nil || string(b) != "new program" {
			t.Fatalf("copy %d: %q, %v", i, b, err)
		}
		if err := os.WriteFile(src, []byte("new program"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if copied, err := CopyBinary(dst, dst); err != nil || copied {
		t.Errorf("onto itself: %v, %v", copied, err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(dst)); len(entries) != 1 {
		t.Errorf("left behind: %v", entries)
	}
	if _, err := CopyBinary(filepath.Join(dir, "missing.exe"), dst); err == nil {
		t.Error("copied a missing program")
	}
}
