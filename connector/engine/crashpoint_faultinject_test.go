//go:build faultinject

package engine

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestCrashPointChild is the child process of TestCrashPoint: it passes
// the after_apply stage three times, saying so after each.
func TestCrashPointChild(t *testing.T) {
	if os.Getenv("ADW_TEST_CRASH_CHILD") != "1" {
		t.Skip("child of TestCrashPoint")
	}
	c, err := newCrashPoints()
	if err != nil {
		t.Fatal(err)
	}
	e := &Engine{crash: c}
	for i := 1; i <= 3; i++ {
		e.crashPoint("after_receive") // another stage: never counted
		e.crashPoint("after_apply")
		os.Stdout.WriteString("passed " + string(rune('0'+i)) + "\n")
	}
}

func runCrashChild(t *testing.T, env ...string) (string, error) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashPointChild$", "-test.v")
	cmd.Env = append(append(os.Environ(), "ADW_TEST_CRASH_CHILD=1"), env...)
	out, err := cmd.Output()
	return string(out), err
}

// TestCrashPoint: the process is killed with SIGKILL on the Nth call at the
// configured stage, once per marker file.
func TestCrashPoint(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "crashed")
	env := []string{envCrashAt + "=after_apply", envCrashAfter + "=2", envCrashMarker + "=" + marker}
	out, err := runCrashChild(t, env...)
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("child was not killed: %v\n%s", err, out)
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child ended with %v, want SIGKILL\n%s", ee, out)
	}
	if !strings.Contains(out, "passed 1") || strings.Contains(out, "passed 2") {
		t.Fatalf("killed at the wrong call:\n%s", out)
	}
	b, err := os.ReadFile(marker)
	if err != nil || string(b) != "after_apply 2\n" {
		t.Fatalf("marker %q, %v", b, err)
	}

	// The marker exists: the same environment runs to the end.
	out, err = runCrashChild(t, env...)
	if err != nil || !strings.Contains(out, "passed 3") {
		t.Fatalf("second run with the marker: %v\n%s", err, out)
	}
}

func TestCrashPointsEnv(t *testing.T) {
	for _, tc := range []struct {
		at, after string
		ok        bool
	}{
		{"", "", true},
		{"before_settle", "", true},
		{"after_journal", "3", true},
		{"after_jurnal", "", false},
		{"after_report", "0", false},
		{"after_report", "x", false},
	} {
		t.Setenv(envCrashAt, tc.at)
		t.Setenv(envCrashAfter, tc.after)
		_, err := newCrashPoints()
		if (err == nil) != tc.ok {
			t.Errorf("%s=%q %s=%q: err %v", envCrashAt, tc.at, envCrashAfter, tc.after, err)
		}
	}
}
