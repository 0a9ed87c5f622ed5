//go:build integration

package oncall

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
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

// TestOnCallLogRotate rotates the audit log and the text log (log.path)
// as logrotate does with `create`: the files are moved away while the
// connector runs, commands keep coming, then SIGHUP. Every command's
// record is in exactly one of the two audit files (those before the
// signal in the moved one, those after in the new one), whole; the new
// files are 0600, and the text log's lines after the signal are in the
// new text log. The commands are checks of accounts that do not exist:
// their records also say who was not found (user_ref).
func TestOnCallLogRotate(t *testing.T) {
	bin := logRotateBinary(t)
	env := stack.New(t)
	textLog := filepath.Join(t.TempDir(), "adwriteback.log")
	c := env.Start("a", stack.Binary(bin), stack.Configure(func(s *stack.ConfigSpec) { s.LogPath = textLog }))
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
	textRotated := textLog + ".1"
	if err := os.Rename(textLog, textRotated); err != nil {
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
	// The text log: lines before the signal in the moved file, the
	// reload's and those after it in the new one, each line whole.
	read := func(name string) string {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for n, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
			if !json.Valid([]byte(l)) {
				t.Errorf("%s line %d split or mixed: %q", name, n+1, l)
			}
		}
		return string(b)
	}
	stack.WaitFor(t, 30*time.Second, "the last command's line in the new text log", func() bool {
		b, _ := os.ReadFile(textLog)
		return strings.Contains(string(b), after[len(after)-1])
	})
	oldText, curText := read(textRotated), read(textLog)
	if st, err := os.Stat(textLog); err != nil {
		t.Fatal(err)
	} else if st.Mode().Perm() != 0o600 {
		t.Errorf("new text log mode %v, want 0600", st.Mode().Perm())
	}
	if !strings.Contains(curText, `"what":"text log"`) || !strings.Contains(curText, "reloaded") {
		t.Errorf("no text log reload in the new text log:\n%s", curText)
	}
	for _, id := range after {
		if !strings.Contains(curText, id) || strings.Contains(oldText, id) {
			t.Errorf("command %s handled after SIGHUP: its line is not (only) in the new text log", id)
		}
	}
	for _, id := range before {
		if !strings.Contains(oldText, id) {
			t.Errorf("command %s handled before the move: its line is not in the moved text log", id)
		}
	}
	// Each command has its line, of its outcome class (its Windows event ID).
	if n := strings.Count(oldText+curText, "command_refused"); n != len(before)+len(between)+len(after) {
		t.Errorf("%d command_refused lines for %d commands:\n%s\n%s", n, len(before)+len(between)+len(after), oldText, curText)
	}
	c.Stop()
}
