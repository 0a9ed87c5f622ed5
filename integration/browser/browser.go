// Package browser drives Debian's headless Chromium for tests that look at
// a page the way an admin would: the rendered DOM and a screenshot.
package browser

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Phone-sized viewport (a common Android phone in CSS pixels).
const PhoneW, PhoneH = 412, 915

// Chromium finds Debian's headless-capable Chromium, or fails the test with
// how to install it. ADWRITEBACK_CHROMIUM overrides the binary.
func Chromium(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("ADWRITEBACK_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("chromium not found in PATH: the status page browser test needs headless Chromium. " +
		"Install it from Debian's packages with: apt-get install -y chromium " +
		"(or set ADWRITEBACK_CHROMIUM to a Chromium binary)")
	return ""
}

// RepoRoot walks up from the working directory to the one with go.mod.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test directory")
		}
		dir = parent
	}
}

// Artifacts returns integration/artifacts (created), where tests leave
// screenshots.
func Artifacts(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(RepoRoot(t), "integration", "artifacts")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Run runs headless Chromium with a phone-sized window, no network beyond
// the page, and a throw-away profile, and returns its standard output.
func Run(t testing.TB, bin string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	base := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--hide-scrollbars",
		"--user-data-dir=" + t.TempDir(),
		fmt.Sprintf("--window-size=%d,%d", PhoneW, PhoneH),
	}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\nstderr:\n%s", args, err, stderr.String())
	}
	return stdout.Bytes()
}
