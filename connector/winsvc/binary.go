package winsvc

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// BinaryPath is where service install puts the program: under
// programFiles (%ProgramFiles%), in a folder of its own, where only
// Administrators, SYSTEM and TrustedInstaller may change it (the folder
// inherits Program Files' DACL), so no other account can replace what
// the service runs.
func BinaryPath(programFiles string) string {
	return filepath.Join(programFiles, "adwriteback", "adwriteback.exe")
}

// CopyBinary copies the program at src to dst, creating dst's folder,
// unless they are already the same file; copied reports whether it did.
// It writes a temporary file beside dst and renames it into place, so a
// half-written program is never at dst; on Windows the rename fails while
// the service runs the old one (stop it first).
func CopyBinary(src, dst string) (copied bool, err error) {
	if same(src, dst) {
		return false, nil
	}
	in, err := os.Open(src)
	if err != nil {
		return false, fmt.Errorf("winsvc: open this program: %w", err)
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return false, fmt.Errorf("winsvc: create the program folder: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".adwriteback-*.exe")
	if err != nil {
		return false, fmt.Errorf("winsvc: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	_, err = io.Copy(tmp, in)
	err = errors.Join(err, tmp.Sync(), tmp.Close())
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o755)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), dst)
	}
	if err != nil {
		return false, fmt.Errorf("winsvc: copy this program to %s (if the service runs, stop it first): %w", dst, err)
	}
	return true, nil
}

// same reports whether a and b name one file (or one path, any case).
func same(a, b string) bool {
	if strings.EqualFold(filepath.Clean(a), filepath.Clean(b)) {
		return true
	}
	sa, err := os.Stat(a)
	if err != nil {
		return false
	}
	sb, err := os.Stat(b)
	return err == nil && os.SameFile(sa, sb)
}

// ErrSharedFolder is returned by CheckFolder for a folder a protected DACL
// must not be set on.
var ErrSharedFolder = errors.New("winsvc: a folder other programs or users share")

// CheckFolder refuses a folder service install must not protect: a drive's
// root, and the system's own folders (%SystemRoot%, %ProgramFiles%,
// %ProgramFiles(x86)%, %ProgramData%, %ALLUSERSPROFILE%, %PUBLIC%,
// %USERPROFILE% and the folder of the users' profiles), read with getenv;
// a protected DACL there would lock others out of them.
func CheckFolder(dir string, getenv func(string) string) error {
	clean := filepath.Clean(dir)
	if filepath.Dir(clean) == clean {
		return fmt.Errorf("%w: %s is a drive's root; keep the files in a folder of their own", ErrSharedFolder, dir)
	}
	shared := map[string]string{} // folder: what it is
	for _, v := range []string{"SystemRoot", "ProgramFiles", "ProgramFiles(x86)", "ProgramData", "ALLUSERSPROFILE", "PUBLIC", "USERPROFILE"} {
		if f := getenv(v); f != "" {
			shared[strings.ToLower(filepath.Clean(f))] = "%" + v + "%"
			if v == "USERPROFILE" || v == "PUBLIC" {
				shared[strings.ToLower(filepath.Dir(filepath.Clean(f)))] = "the users' profiles folder"
			}
		}
	}
	if what, ok := shared[strings.ToLower(clean)]; ok {
		return fmt.Errorf("%w: %s is %s; keep the files in a folder of their own, e.g. %s", ErrSharedFolder, dir, what,
			filepath.Join(getenv("ProgramData"), "adwriteback"))
	}
	return nil
}
