package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/adwriteback/adwriteback/relay/protocol"
)

// TestSendDescribeReadsNoPassword: describe, like unlock, reads nothing
// from standard input.
func TestSendDescribeReadsNoPassword(t *testing.T) {
	env, _, _ := testEnv()
	env.Stdin = strings.NewReader("N3w-Passw0rd!\n")
	f := newSendFlags(env)
	if _, err := parseFlags(f.fs, env, []string{"--user", "sam:alice", "--queue", "q",
		"--sender-key", "s.key", "--connector-key", "c.pub", "--wait", "0", "--op", "describe"}); err != nil {
		t.Fatal(err)
	}
	term := &fakeTerminal{passwords: []string{"N3w-Passw0rd!"}}
	req, err := f.request(passwordSource{stdin: env.Stdin, prompt: env.Stderr,
		isTerminal: func() bool { return true }, readPassword: term.readPassword})
	if err != nil {
		t.Fatal(err)
	}
	if req.Op != protocol.OpDescribe || !req.NewPassword.IsEmpty() || term.reads != 0 {
		t.Fatalf("op %s, password read %v (%d terminal reads)", req.Op, !req.NewPassword.IsEmpty(), term.reads)
	}
}

func TestSendPrintsThePolicy(t *testing.T) {
	env, out, _ := testEnv()
	next := protocol.At(time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC))
	r := &protocol.Result{V: 2, Code: protocol.CodeSucceeded, Message: "These are the password requirements.",
		Policy: &protocol.Policy{MinLength: 7, MaxLength: 256, Complexity: true, ComplexityRule: "at least 3 of: ...",
			HistoryLength: 24, MinAge: 86400, MaxAge: 42 * 86400, NextChangeAt: &next, Source: protocol.SourceFineGrained,
			Org: protocol.OrgPolicy{MinLength: 12, Banned: true}}}
	c := protocol.Command{Op: protocol.OpDescribe, User: protocol.UserRef{SAM: "alice"}}
	printResult(env, c, r, false)
	for _, want := range []string{
		"describe sam:alice -> succeeded", "a fine-grained password policy", "length: 12 to 256 characters",
		"the directory asks for 7; the organisation for 12", "complexity: at least 3 of: ...",
		"the last 24 passwords", "minimum age: 1 day", "maximum age: 42 days", "next change allowed at 2026-12-07T09:00:00Z",
		"banned words: checked; breached passwords: not checked",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	var js bytes.Buffer
	env.Stdout = &js
	printResult(env, c, r, true)
	if !strings.Contains(js.String(), `"policy": {`) || !strings.Contains(js.String(), `"source": "fine_grained"`) {
		t.Errorf("--json lacks the policy:\n%s", js.String())
	}
	for secs, want := range map[int64]string{0: "none", 3600: "1h0m0s", 1 << 40: "1099511627776 seconds", 2 * 86400: "2 days"} {
		if got := ageText(secs, "none"); got != want {
			t.Errorf("ageText(%d) = %q, want %q", secs, got, want)
		}
	}
}
