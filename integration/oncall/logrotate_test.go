//go:build integration

package oncall

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/adwriteback/adwriteback/integration/stack"
	"github.com/adwriteback/adwriteback/relay/protocol"
	"github.com/adwriteback/adwriteback/relay/sender"
)

// logRotateBinary builds the shipped connector binary for this test.
func logRotateBinary(t *testing.T) string {
	t.Helper()
	b, err := stack.BuildBinaries(context.Background(), stack.Production)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b.Path(stack.Production)
}

// TestOnCallLogRotate rotates the audit log as logrotate does with
// `create`: the file is moved away while the connector runs, commands
// keep coming, then SIGHUP. Every command's record is in exactly one of
// the two files (those before the signal in the moved one, those after
// in the new one), whole; the new file is 0600. The commands are checks
// of accounts that do not exist: their records also say who was not
// found (user_ref).
func TestOnCallLogRotate(t *testing.T) {
	bin := logRotateBinary(t)
	env := stack.New(t)
	c := env.Start("a", stack.Binary(bin))
	c.WaitReady(200)
	path := c.Setup().Spec.Audit
	snd := env.Sender()
	pw := env.Secret("Rotate-Check-Pw-7f3a!")
	send := func(batch string, n int) []string {
		var ids []string
		for i := range n {
			sam := fmt.Sprintf("oncall-%s-%d", batch, i)
			res := snd.Do(sender.Request{Op: protocol.OpCheck, User: protocol.UserRef{SAM: sam}, NewPassword: pw})
			if res.Code != protocol.CodeUserNotFound {
				t.Fatalf("%s: %s, want user_not_found", sam, res.Code)
			}
			ids = append(ids, res.CommandID)
		}
		return ids
	}

	before := send("before", 5)
	rotated := path + ".1"
	if err := os.Rename(path, rotated); err != nil {
		t.Fatal(err)
	}
	// Between logrotate's move and its postrotate: still the old file.
	between := send("between", 3)
	// A record is written once its message is settled, after the result
	// went out: wait for the last one so that the signal comes after it.
	stack.WaitFor(t, 30*time.Second, "the last record before the signal", func() bool {
		b, _ := os.ReadFile(rotated)
		return strings.Contains(string(b), between[len(between)-1])
	})
	c.Signal(syscall.SIGHUP)
	stack.WaitFor(t, 30*time.Second, "the audit log reopened at "+path, func() bool {
		_, err := os.Stat(path)
		return err == nil
	})
	after := send("after", 5)

	records := func(name string) map[string]int {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]int{}
		for n, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
			if l == "" {
				continue
			}
			var r struct {
				CommandID string `json:"command_id"`
				Outcome   string `json:"outcome"`
				UserRef   string `json:"user_ref"`
			}
			if err := json.Unmarshal([]byte(l), &r); err != nil {
				t.Fatalf("%s line %d split or mixed: %v", name, n+1, err)
			}
			if r.Outcome == string(protocol.CodeUserNotFound) && !strings.HasPrefix(r.UserRef, "oncall-") {
				t.Errorf("%s line %d: user_not_found without the reference: %s", name, n+1, l)
			}
			seen[r.CommandID]++
		}
		return seen
	}
	// The records are written once the message is settled: wait for the
	// last one before reading.
	stack.WaitFor(t, 30*time.Second, "the last command's audit record", func() bool {
		b, _ := os.ReadFile(path)
		return strings.Contains(string(b), after[len(after)-1])
	})
	old, cur := records(rotated), records(path)
	for _, id := range append(append(append([]string(nil), before...), between...), after...) {
		if old[id]+cur[id] != 1 {
			t.Errorf("command %s: %d record(s) in %s, %d in %s; want exactly one in all", id, old[id], rotated, cur[id], path)
		}
	}
	for _, id := range append(append([]string(nil), before...), between...) {
		if old[id] != 1 {
			t.Errorf("command %s handled before SIGHUP is not in the moved file", id)
		}
	}
	for _, id := range after {
		if cur[id] != 1 {
			t.Errorf("command %s handled after SIGHUP is not in the new file", id)
		}
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("new audit file mode %v, want 0600", st.Mode().Perm())
	}
	if !strings.Contains(c.Logs(), "reloaded") {
		t.Errorf("no reload in the log:\n%s", c.Logs())
	}
	// Each command has its line, of its outcome class (its Windows event ID).
	if n := strings.Count(c.Logs(), "command_refused"); n != len(before)+len(between)+len(after) {
		t.Errorf("%d command_refused lines for %d commands:\n%s", n, len(before)+len(between)+len(after), c.Logs())
	}
	c.Stop()
}
