package cli

import (
	"bytes"
	"context"
	"flag"
	"strings"
	"testing"
	"time"
)

// TestFlagErrorsNeverRepeatArguments: a password typed where a flag or a
// value goes must not come back in the error or on stderr; the error still
// says which flag or argument is wrong.
func TestFlagErrorsNeverRepeatArguments(t *testing.T) {
	const pw = "Hunter2-Secret.9"
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"password as a flag", []string{"--queue", "q", "--" + pw}, "argument 3 is not a flag of send"},
		{"password as a flag with a value", []string{"-" + pw + "=x"}, "argument 1 is not a flag"},
		{"password as a duration", []string{"--wait", pw}, "invalid value for --wait (argument 2"},
		{"password after =", []string{"--wait=" + pw}, "invalid value for --wait (argument 1"},
		{"password as a bool", []string{"--json=" + pw}, "--json takes true or false"},
		{"stray password", []string{"--queue", "q", pw}, "unexpected argument (1 given"},
		{"typo", []string{"--qeue", "q"}, "did you mean --queue?"},
		{"missing value", []string{"--queue"}, "--queue needs a value"},
	} {
		t.Run(c.name, func(t *testing.T) {
			fs := flag.NewFlagSet("send", flag.ContinueOnError)
			fs.String("queue", "", "the queue")
			fs.Duration("wait", time.Second, "how long")
			fs.Bool("json", false, "JSON out")
			var stderr bytes.Buffer
			help, err := parseFlags(fs, &Env{Stderr: &stderr}, c.args)
			if help || err == nil || ExitCode(err) != 2 {
				t.Fatalf("help %v, err %v (exit %d), want a usage error", help, err, ExitCode(err))
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not say %q", err, c.want)
			}
			if strings.Contains(err.Error()+stderr.String(), "Hunter2") {
				t.Errorf("the password came back: %q / %q", err, stderr.String())
			}
		})
	}
}

func TestFlagHelpPrintsUsage(t *testing.T) {
	fs := flag.NewFlagSet("send", flag.ContinueOnError)
	fs.String("queue", "", "the command queue")
	var stderr bytes.Buffer
	help, err := parseFlags(fs, &Env{Stderr: &stderr}, []string{"-h"})
	if !help || err != nil || !strings.Contains(stderr.String(), "the command queue") {
		t.Fatalf("help %v, err %v, stderr %q", help, err, stderr.String())
	}
}

// TestSendListsMissingFlagsInOrder: every missing required flag of send is
// named, always in the same order (they were once listed in map order).
func TestSendListsMissingFlagsInOrder(t *testing.T) {
	const want = "send: missing --user, --queue, --sender-key, --connector-key, --reply-queue (or --wait 0)"
	for range 5 {
		env, _, _ := testEnv()
		err := runSend(context.Background(), env, nil)
		if ExitCode(err) != 2 || err.Error() != want {
			t.Fatalf("err %v (exit %d), want usage error %q", err, ExitCode(err), want)
		}
	}
}
