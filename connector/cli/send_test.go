package cli

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
)

// TestSendUsageErrorsNeverRepeatValues: a password typed as the value of
// --op, as the kind part of --user or as --actor must not come back in the
// usage error or on stderr; the error still names the flag.
func TestSendUsageErrorsNeverRepeatValues(t *testing.T) {
	const pw = "Hunter2-Secret.9"
	for _, c := range []struct {
		name, flag, value string
	}{
		{"op", "--op", pw},
		{"user kind", "--user", pw + ":alice"},
		{"actor without kind", "--actor", pw},
		{"actor with an unknown kind", "--actor", pw + ":alice"},
		{"actor with an empty id", "--actor", pw + ":"},
	} {
		t.Run(c.name, func(t *testing.T) {
			env, out, errb := testEnv()
			env.Stdin = strings.NewReader("N3w-Passw0rd!\n")
			args := []string{"--user", "sam:alice", "--queue", "q", "--sender-key", "s.key",
				"--connector-key", "c.pub", "--wait", "0", c.flag, c.value}
			err := runSend(context.Background(), env, args)
			if ExitCode(err) != 2 {
				t.Fatalf("err %v (exit %d), want a usage error", err, ExitCode(err))
			}
			if !strings.Contains(err.Error(), c.flag) {
				t.Errorf("error %q does not name %s", err, c.flag)
			}
			if strings.Contains(err.Error()+out.String()+errb.String(), "Hunter2") {
				t.Errorf("the password came back: %q / %q / %q", err, out.String(), errb.String())
			}
		})
	}
}

// fakeTerminal is a password reader standing in for a terminal: a real tty
// is not available in tests, so what is tested is the decision (terminal:
// prompt on stderr and read without echo; not a terminal: read stdin's line).
type fakeTerminal struct {
	passwords []string
	reads     int
}

func (f *fakeTerminal) readPassword() ([]byte, error) {
	if f.reads >= len(f.passwords) {
		return nil, io.EOF
	}
	f.reads++
	return []byte(f.passwords[f.reads-1]), nil
}

func TestSendReadsPasswordsWithoutEchoFromATerminal(t *testing.T) {
	for _, c := range []struct {
		name       string
		terminal   bool
		stdin      string
		typed      []string
		op         string
		wantOld    string
		wantNew    string
		wantPrompt []string
	}{
		{name: "terminal reset", terminal: true, typed: []string{"N3w-Passw0rd!"}, op: "reset",
			wantNew: "N3w-Passw0rd!", wantPrompt: []string{"New password: "}},
		{name: "terminal change", terminal: true, typed: []string{"0ld-Passw0rd!", "N3w-Passw0rd!"}, op: "change",
			wantOld: "0ld-Passw0rd!", wantNew: "N3w-Passw0rd!", wantPrompt: []string{"Old password: ", "New password: "}},
		{name: "pipe reset", stdin: "N3w-Passw0rd!\n", op: "reset", wantNew: "N3w-Passw0rd!"},
		{name: "pipe change", stdin: "0ld-Passw0rd!\nN3w-Passw0rd!\n", op: "change",
			wantOld: "0ld-Passw0rd!", wantNew: "N3w-Passw0rd!"},
	} {
		t.Run(c.name, func(t *testing.T) {
			env, out, errb := testEnv()
			env.Stdin = strings.NewReader(c.stdin)
			f := newSendFlags(env)
			if _, err := parseFlags(f.fs, env, []string{"--user", "sam:alice", "--queue", "q",
				"--sender-key", "s.key", "--connector-key", "c.pub", "--wait", "0", "--op", c.op}); err != nil {
				t.Fatal(err)
			}
			term := &fakeTerminal{passwords: c.typed}
			src := passwordSource{stdin: env.Stdin, prompt: env.Stderr,
				isTerminal: func() bool { return c.terminal }, readPassword: term.readPassword}
			req, err := f.request(src)
			if err != nil {
				t.Fatal(err)
			}
			defer req.OldPassword.Zero()
			defer req.NewPassword.Zero()
			if got := string(req.NewPassword.Bytes()); got != c.wantNew {
				t.Errorf("new password %q, want %q", got, c.wantNew)
			}
			if got := string(req.OldPassword.Bytes()); got != c.wantOld {
				t.Errorf("old password %q, want %q", got, c.wantOld)
			}
			if !c.terminal && term.reads != 0 {
				t.Errorf("not a terminal, yet the terminal was read %d time(s)", term.reads)
			}
			for _, p := range c.wantPrompt {
				if !strings.Contains(errb.String(), p) {
					t.Errorf("stderr %q lacks the prompt %q", errb.String(), p)
				}
			}
			if !c.terminal && errb.Len() != 0 {
				t.Errorf("not a terminal, yet stderr got %q", errb.String())
			}
			if strings.Contains(out.String()+errb.String(), "Passw0rd") {
				t.Errorf("a password was echoed: %q / %q", out.String(), errb.String())
			}
		})
	}
}

// TestSendTerminalReadErrorIsUsage: a failed or invalid read from the
// terminal is a usage error that does not repeat what was typed.
func TestSendTerminalReadErrorIsUsage(t *testing.T) {
	env, _, _ := testEnv()
	f := newSendFlags(env)
	if _, err := parseFlags(f.fs, env, []string{"--user", "sam:alice", "--queue", "q",
		"--sender-key", "s.key", "--connector-key", "c.pub", "--wait", "0"}); err != nil {
		t.Fatal(err)
	}
	for _, typed := range [][]string{nil, {""}} {
		term := &fakeTerminal{passwords: typed}
		_, err := f.request(passwordSource{stdin: env.Stdin, prompt: env.Stderr,
			isTerminal: func() bool { return true }, readPassword: term.readPassword})
		var ee *ExitError
		if !errors.As(err, &ee) || ee.Code != 2 {
			t.Errorf("typed %q: err %v, want a usage error", typed, err)
		}
	}
}
