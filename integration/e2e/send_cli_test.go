//go:build integration

package e2e

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/adwriteback/adwriteback/integration/testdc"
	"github.com/adwriteback/adwriteback/relay/protocol"
)

// TestSendCLI drives `adwriteback send` (in process, real flags, stdin and
// exit codes) against a running connector.
func TestSendCLI(t *testing.T) {
	s := newEnv(t)
	s.Start("a")
	u := testdc.NewUser(t, s.DC, "")
	send := s.SendCLI

	pw := "Cli!Sent.Password1"
	s.Secret(pw)
	out, code := send(pw+"\n", "--op", "reset", "--user", "upn:"+u.UPN)
	if code != 0 || !strings.Contains(out, "succeeded") {
		t.Fatalf("reset: exit %d\n%s", code, out)
	}
	if err := bindErr(t, s.DC, u.DN, pw); err != nil {
		t.Fatalf("bind after CLI reset: %v", err)
	}

	s.Secret("short")
	out, code = send("short\n", "--op", "check", "--user", "sam:"+u.SAM, "--json")
	if code != 1 {
		t.Fatalf("check of a bad password: exit %d\n%s", code, out)
	}
	var res protocol.Result
	if err := json.Unmarshal([]byte(out[:strings.LastIndex(out, "}")+1]), &res); err != nil {
		t.Fatalf("--json output: %v\n%s", err, out)
	}
	if res.Code != protocol.CodePolicyViolation || len(res.Violations) < 2 {
		t.Fatalf("check result %+v", res)
	}

	// change reads two lines: old, then new.
	u2 := testdc.NewUser(t, s.DC, "", s.DC.ChangeGroupDN)
	pw2 := "Cli!Changed.Pass2"
	s.Secret(pw2)
	out, code = send(testdc.UserPass+"\n"+pw2+"\n", "--op", "change", "--user", "sam:"+u2.SAM)
	if code != 0 {
		t.Fatalf("change: exit %d\n%s", code, out)
	}
	if err := bindErr(t, s.DC, u2.DN, pw2); err != nil {
		t.Fatalf("bind after CLI change: %v", err)
	}

	for _, bad := range [][]string{{"--op", "explode", "--user", "sam:x"}, {"--user", "sam:x", "--bogus"}, {"--op", "reset"}} {
		if _, code := send("x\n", bad...); code != 2 {
			t.Errorf("%v: exit %d, want 2 (usage)", bad, code)
		}
	}
	for _, pw := range []string{pw, pw2, "short"} {
		if strings.Contains(out, pw) {
			t.Fatal("the CLI printed a password")
		}
	}
}
