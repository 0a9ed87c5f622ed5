//go:build integration

package faults

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/adwriteback/adwriteback/integration/stack"
	"github.com/adwriteback/adwriteback/integration/testdc"
	"github.com/adwriteback/adwriteback/relay/protocol"
)

// crashRow is one stage of the pipeline where the faultinject binary kills
// itself (connector/engine/crashpoint_faultinject.go).
type crashRow struct {
	stage string
	// written: the killed command's write has returned from AD.
	written bool
	// answered: its result was sent before the kill, so the restart sends
	// it again from the journal (a duplicate the sender SDK drops).
	answered bool
	// fromJournal: the restart answers it from the journal.
	fromJournal bool
	// queued: the outcome was queued for the journal's next shared
	// transaction, maybe not yet durable at the kill; the restart answers
	// from the journal or, finding the durable mark made before the write,
	// settles the command from AD: one of the two.
	queued bool
}

var crashRows = []crashRow{
	{stage: "after_receive"},
	{stage: "after_apply", written: true},
	{stage: "after_journal", written: true, queued: true},
	{stage: "after_report", written: true, answered: true, queued: true},
	{stage: "before_settle", written: true, answered: true, fromJournal: true},
}

// crashAt is the call at the stage that kills: the first command of the
// burst has gone through the whole pipeline by then.
const crashAt = 2

// TestKill9AtEachStage kills the connector with SIGKILL at each step of the
// pipeline, deterministically: a binary built with -tags faultinject kills
// itself when the second command of a burst reaches the stage (one command
// at a time, so the state at the kill is known exactly). It checks that
// state (writes in AD, results on the reply queue), restarts on the same
// journal (with the same environment: the marker file left by the first
// kill keeps it from crashing again) and checks that every command ends
// with exactly one write in AD and one verified result, and that a result
// is sent twice only when the kill came after it was sent and before the
// message was settled.
func TestKill9AtEachStage(t *testing.T) {
	dc := testdc.Ensure(t)
	for _, row := range crashRows {
		t.Run(row.stage, func(t *testing.T) { kill9At(t, dc, row, protocol.Options{}) })
	}
}

// TestKill9AfterApplyMustChange is the after_apply row for a reset that also
// sets pwdLastSet=0 (must change at next logon). It found a double apply:
// the restarted connector resumed the command ("applying" in the journal)
// and decided whether the first write had landed by pwdLastSet moving
// forward, which a must-change reset moves to 0, so after the write window
// it wrote again (unicodePwd version +2). The engine now reads unicodePwd's
// replication version, which every password write raises.
func TestKill9AfterApplyMustChange(t *testing.T) {
	dc := testdc.Ensure(t)
	kill9At(t, dc, crashRows[1], protocol.Options{MustChange: true})
}

func kill9At(t *testing.T, dc *testdc.Info, row crashRow, opts protocol.Options) {
	marker := filepath.Join(t.TempDir(), "crash.marker")
	s := newWorld(t, dc, 10*time.Second, oneAtATime(), stack.Binary(bins.Path(stack.FaultInject)),
		stack.ProcessEnv("ADW_FAULT_CRASH_AT="+row.stage, "ADW_FAULT_CRASH_AFTER="+strconv.Itoa(crashAt),
			"ADW_FAULT_CRASH_MARKER="+marker))
	s.resetOpts = opts
	users := s.users(4)
	jobs := s.burst(users) // queued before the connector starts
	s.a.Start()

	st := s.a.WaitExit(2 * time.Minute)
	ws, ok := st.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("the connector ended with %v, not SIGKILL at %s", st, row.stage)
	}
	if b, err := os.ReadFile(marker); err != nil || string(b) != row.stage+" "+strconv.Itoa(crashAt)+"\n" {
		t.Fatalf("crash marker %q (%v), want the stage %s", b, err, row.stage)
	}

	// The state at the kill: with one command at a time, the first is done
	// and the second stopped at the stage.
	written := 0
	for _, j := range jobs {
		switch d := testdc.PwdVersion(t, dc, j.user.DN) - j.v0; {
		case d == 1:
			written++
		case d > 1:
			t.Errorf("%s: unicodePwd written %d times before the restart", j.user.SAM, d)
		}
	}
	wantWritten, wantSent := crashAt-1, crashAt-1
	if row.written {
		wantWritten++
	}
	if row.answered {
		wantSent++
	}
	if written != wantWritten {
		t.Errorf("killed at %s: %d users written in AD, want %d", row.stage, written, wantWritten)
	}
	if sent := s.repliesSent(); sent != wantSent {
		t.Errorf("killed at %s: %d results sent, want %d", row.stage, sent, wantSent)
	}
	t.Logf("killed at %s (call %d): %d written, %d answered", row.stage, crashAt, written, wantSent)

	// Restart on the same journal; the marker keeps it alive.
	s.a.Start()
	s.check(jobs)
	stack.WaitFor(t, time.Minute, "every command completed on the queue", func() bool {
		q, err := s.Emu.Queue(context.Background(), s.Queue)
		return err == nil && q.Stats.Completed == len(jobs) && q.Active == 0 && q.Locked == 0
	})
	q, err := s.Emu.Queue(context.Background(), s.Queue)
	if err != nil {
		t.Fatal(err)
	}
	if q.DeadLettered != 0 {
		t.Errorf("%d commands dead-lettered", q.DeadLettered)
	}
	// One result per command, plus the one sent again from the journal when
	// the kill came after it was sent.
	wantReplies := len(jobs)
	if row.answered {
		wantReplies++
	}
	if sent := s.repliesSent(); sent != wantReplies {
		t.Errorf("%d results sent for %d commands, want %d", sent, len(jobs), wantReplies)
	}
	s.waitAudited(jobs)
	fromJournal, fromAD := 0, 0
	for _, r := range s.a.AuditRecords() {
		if r.FromJournal {
			fromJournal++
			if r.Outcome != string(protocol.CodeSucceeded) || r.Settlement != "completed" {
				t.Errorf("answer from the journal: %+v", r)
			}
		}
		if strings.Contains(r.Detail, "applied before a restart") {
			fromAD++
		}
	}
	switch {
	case row.queued:
		if fromJournal+fromAD != 1 {
			t.Errorf("after the restart %d answered from the journal and %d settled from AD, want one of the two", fromJournal, fromAD)
		}
	case fromJournal != map[bool]int{false: 0, true: 1}[row.fromJournal]:
		t.Errorf("%d commands answered from the journal after the restart, want %v", fromJournal, row.fromJournal)
	}
	if !s.a.Running() {
		t.Error("the restarted connector exited (the crash marker did not hold)")
	}
}

// oneAtATime has the connector take one command at a time, so the state
// at a kill is known exactly.
func oneAtATime() stack.ConnectorOption {
	return stack.Configure(func(c *stack.ConfigSpec) { c.Concurrency = 1 })
}

// waitAudited waits until each job's command has an audit record of its
// completion (the record follows the settlement).
func (s *world) waitAudited(jobs []*job) {
	s.t.Helper()
	stack.WaitFor(s.t, time.Minute, "an audit record of every command's completion", func() bool {
		done := map[string]bool{}
		for _, r := range s.a.AuditRecords() {
			done[r.CommandID] = done[r.CommandID] || r.Settlement == "completed"
		}
		for _, j := range jobs {
			if !done[j.id] {
				return false
			}
		}
		return true
	})
}

// repliesSent is how many results the connectors have put on the reply
// queue.
func (s *world) repliesSent() int {
	s.t.Helper()
	return s.QueueState(s.Replies).Stats.Enqueued
}

// TestCrashPointsOnlyInFaultBuild: the production binary has no crash
// points (its engine never reads ADW_FAULT_CRASH_AT); the faultinject
// binary does.
func TestCrashPointsOnlyInFaultBuild(t *testing.T) {
	for bin, want := range map[string]bool{bins.Path(stack.Production): false, bins.Path(stack.FaultInject): true} {
		b, err := os.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(string(b), "ADW_FAULT_CRASH_AT"); got != want {
			t.Errorf("%s: holds the crash-point hook: %v, want %v", bin, got, want)
		}
	}
}

// TestKill9AfterApplyAnotherInstanceAnswers: two instances, each with its
// own journal, share the queue. Instance A (the faultinject binary, one
// command at a time) is killed right after its first write to AD returns,
// before it records the outcome or answers. The command comes back, once
// its lock expires, to instance B, whose journal never saw it: B must not
// write it again (unicodePwd's version rises once) and must answer it
// succeeded, saying why; every other command is applied once by B. B tells
// from pwdLastSet, or for must-change resets (pwdLastSet 0) from the
// replication metadata's time of the password's last write.
func TestKill9AfterApplyAnotherInstanceAnswers(t *testing.T) {
	dc := testdc.Ensure(t)
	for _, mustChange := range []bool{false, true} {
		t.Run(fmt.Sprint("must_change=", mustChange), func(t *testing.T) {
			killAfterApplyOtherInstance(t, dc, protocol.Options{MustChange: mustChange})
		})
	}
}

func killAfterApplyOtherInstance(t *testing.T, dc *testdc.Info, opts protocol.Options) {
	marker := filepath.Join(t.TempDir(), "crash.marker")
	s := newWorld(t, dc, 5*time.Second, oneAtATime(), stack.Binary(bins.Path(stack.FaultInject)),
		stack.ProcessEnv("ADW_FAULT_CRASH_AT=after_apply", "ADW_FAULT_CRASH_AFTER=1", "ADW_FAULT_CRASH_MARKER="+marker))
	s.resetOpts = opts
	jobs := s.burst(s.users(3))
	s.a.Start()
	st := s.a.WaitExit(2 * time.Minute)
	if ws, ok := st.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("instance A ended with %v, not SIGKILL after its first write", st)
	}
	var killed *job
	for _, j := range jobs {
		if testdc.PwdVersion(t, dc, j.user.DN)-j.v0 == 1 {
			if killed != nil {
				t.Fatalf("two commands written before the kill")
			}
			killed = j
		}
	}
	if killed == nil {
		t.Fatal("instance A was killed after a write that is not in AD")
	}
	if n := s.repliesSent(); n != 0 {
		t.Fatalf("instance A sent %d results before the kill, want 0", n)
	}

	// Instance B: the production binary, its own journal, audit log and
	// health listener, as a second server running adwriteback would have.
	b := s.Start("b", oneAtATime())
	s.check(jobs) // every command: one write, succeeded, the new password binds
	var said bool
	stack.WaitFor(t, time.Minute, "instance B's audit record of the killed command", func() bool {
		return strings.Contains(b.Audit(), `"command_id":"`+killed.id+`"`)
	})
	for _, r := range b.AuditRecords() {
		if r.CommandID == killed.id {
			said = r.Outcome == string(protocol.CodeSucceeded) && strings.Contains(r.Detail, "another instance")
		}
	}
	if !said {
		t.Errorf("instance B's audit does not answer %s as applied by another instance:\n%s", killed.id, b.Audit())
	}
	if n := s.repliesSent(); n != len(jobs) {
		t.Errorf("%d results sent for %d commands", n, len(jobs))
	}
}
