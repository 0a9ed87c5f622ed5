package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDoctorUsage(t *testing.T) {
	env, _, _ := testEnv()
	cmd := DoctorCommand()
	for _, args := range [][]string{nil, {"--json"}, {"--config", "x", "extra"}, {"--bogus"}, {"--config", "x", "--timeout", "0s"}} {
		if err := cmd.Run(context.Background(), env, args); ExitCode(err) != 2 {
			t.Errorf("%q: exit %d (%v), want 2", args, ExitCode(err), err)
		}
	}
}

// A configuration that does not load is a FAIL in the report (exit 1),
// with the problems listed and a fix, in text and in JSON.
func TestDoctorBadConfigIsAFailure(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(path, []byte("version: 1\nbogus_key: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env, out, _ := testEnv()
	err := DoctorCommand().Run(context.Background(), env, []string{"--config", path})
	if ExitCode(err) != 1 {
		t.Fatalf("exit %d (%v), want 1", ExitCode(err), err)
	}
	for _, w := range []string{"[FAIL] config", "bogus_key", "fix: edit " + path} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("report lacks %q:\n%s", w, out.String())
		}
	}

	env, out, _ = testEnv()
	err = DoctorCommand().Run(context.Background(), env, []string{"--config", path, "--json"})
	if ExitCode(err) != 1 {
		t.Fatalf("json: exit %d", ExitCode(err))
	}
	var rep struct {
		Checks  []struct{ Name, Status, Detail, Fix string }
		Summary struct{ Fail int }
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out.String())
	}
	if len(rep.Checks) != 1 || rep.Checks[0].Name != "config" || rep.Checks[0].Status != "FAIL" || rep.Summary.Fail != 1 || rep.Checks[0].Fix == "" {
		t.Fatalf("json report: %+v", rep)
	}
}
