package cli

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
)

func testEnv() (*Env, *bytes.Buffer, *bytes.Buffer) {
	var out, errb bytes.Buffer
	return &Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}, &out, &errb
}

func table() Table {
	t := Table{}
	t["version"] = VersionCommand(BuildInfo{Version: "v1.2.3"})
	t["help"] = HelpCommand(t)
	return t
}

func TestVersion(t *testing.T) {
	env, out, _ := testEnv()
	if err := table().Dispatch(context.Background(), env, []string{"version"}); err != nil {
		t.Fatal(err)
	}
	want := "adwriteback v1.2.3 (" + runtime.Version() + ", " + runtime.GOOS + "/" + runtime.GOARCH + ")\n"
	if out.String() != want {
		t.Fatalf("got %q, want %q", out.String(), want)
	}
	if err := table().Dispatch(context.Background(), env, []string{"version", "extra"}); ExitCode(err) != 2 {
		t.Fatalf("extra argument: exit %d", ExitCode(err))
	}
}

func TestHelpListsCommandsAndUnknownIsUsageError(t *testing.T) {
	env, out, errb := testEnv()
	tb := table()
	if err := tb.Dispatch(context.Background(), env, []string{"help"}); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"version", "help", "Usage: adwriteback"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("help lacks %q:\n%s", w, out.String())
		}
	}
	err := tb.Dispatch(context.Background(), env, []string{"frobnicate"})
	if ExitCode(err) != 2 || !strings.Contains(err.Error(), "unknown command (not repeated here)") || strings.Contains(err.Error()+errb.String(), "frobnicate") {
		t.Fatalf("unknown command: %v (exit %d); the word must not be repeated (it may be a password)", err, ExitCode(err))
	}
	if err := tb.Dispatch(context.Background(), env, []string{"verison"}); !strings.Contains(err.Error(), `did you mean "version"?`) {
		t.Errorf("a typo: %v", err)
	}
	if !strings.Contains(errb.String(), "Commands:") {
		t.Error("unknown command does not print the command list")
	}
	if err := tb.Dispatch(context.Background(), env, nil); ExitCode(err) != 2 {
		t.Fatalf("no command: exit %d", ExitCode(err))
	}
}

func TestExitCode(t *testing.T) {
	if ExitCode(nil) != 0 || ExitCode(errors.New("x")) != 1 {
		t.Fatal("plain errors")
	}
	wrapped := errors.Join(errors.New("ctx"), &ExitError{Code: 3})
	if ExitCode(wrapped) != 3 {
		t.Fatal("wrapped ExitError not found")
	}
}

// TestStrayArgumentIsNotEchoed: a password typed on the command line by
// mistake is refused without being repeated in the error.
func TestStrayArgumentIsNotEchoed(t *testing.T) {
	const pw = "Typed!On.The.Line9"
	env, _, errb := testEnv()
	err := SendCommand().Run(context.Background(), env, []string{"--op", "reset", pw})
	if ExitCode(err) != 2 || strings.Contains(err.Error(), pw) || strings.Contains(errb.String(), pw) {
		t.Fatalf("exit %d, err %v, stderr %q", ExitCode(err), err, errb.String())
	}
}
