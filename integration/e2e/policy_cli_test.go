//go:build integration

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/adwriteback/adwriteback/connector/cli"
	"github.com/adwriteback/adwriteback/integration/testdc"
)

// TestPolicyCheckLive runs `adwriteback policy check --config --user`: the
// user's live effective policy (here the strict PSO, minimum 16) plus the
// config's organisation rules, read from the Samba DC.
func TestPolicyCheckLive(t *testing.T) {
	s := newEnv(t)
	cfgPath := s.Connector("policy").WriteConfig()
	u := testdc.NewUser(t, s.DC, "", s.DC.StrictGroupDN)
	var lastErr error
	run := func(pw string, args ...string) (string, string, int) {
		s.Secret(pw)
		var out, errb bytes.Buffer
		env := &cli.Env{Stdin: strings.NewReader(pw + "\n"), Stdout: &out, Stderr: &errb, Getenv: os.Getenv}
		err := cli.PolicyCommand().Run(context.Background(), env, append([]string{"check", "--config", cfgPath}, args...))
		lastErr = err
		s.Results.Write(out.Bytes())
		s.Results.Write(errb.Bytes())
		return out.String(), errb.String(), cli.ExitCode(err)
	}
	out, errOut, code := run("Thirteen!Ch1", "--user", "sam:"+u.SAM, "--json")
	if code != 1 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	var res struct {
		OK         bool `json:"ok"`
		Violations []struct {
			Rule     string `json:"rule"`
			Required int    `json:"required"`
		} `json:"violations"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if res.OK || len(res.Violations) != 1 || res.Violations[0].Rule != "min_length" || res.Violations[0].Required != 16 {
		t.Fatalf("violations %+v, want min_length 16 from the PSO", res.Violations)
	}
	if !strings.Contains(errOut, "pso-strict") {
		t.Errorf("the PSO in force is not named: %s", errOut)
	}
	if _, _, code := run("Sixteen!Chars.ok", "--user", "upn:"+u.UPN); code != 0 {
		t.Fatalf("16 characters: exit %d", code)
	}
	// A domain-policy user gets the config's org minimum (12), not AD's 7.
	plain := testdc.NewUser(t, s.DC, "")
	out, _, code = run("Eleven!Ch1x", "--user", "sam:"+plain.SAM)
	if code != 1 || !strings.Contains(out, "12") {
		t.Fatalf("org minimum not applied: exit %d %s", code, out)
	}
	if _, _, code := run("Unknown!User.Pw1", "--user", "sam:nobody-here"); code != 1 || lastErr == nil || !strings.Contains(lastErr.Error(), "not_found") {
		t.Fatalf("unknown user: exit %d, %v", code, lastErr)
	}
}
