package journal

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	bolt "go.etcd.io/bbolt"

	"github.com/adwriteback/adwriteback/relay/protocol"
)

func newClock() *clockwork.FakeClock {
	return clockwork.NewFakeClockAt(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
}

func open(t *testing.T, path string, c *clockwork.FakeClock) *Journal {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "journal.db")
	}
	j, err := Open(path, Options{Clock: c, Retention: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return j
}

func TestClaimLifecycleSurvivesReopen(t *testing.T) {
	c := newClock()
	path := filepath.Join(t.TempDir(), "j.db")
	j, err := Open(path, Options{Clock: c})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	d := sha256.Sum256([]byte("cmd-1"))
	until := c.Now().Add(10 * time.Minute)
	for i, want := range []protocol.ClaimStatus{protocol.ClaimNew, protocol.ClaimDuplicate} {
		st, err := j.Claim(ctx, "cmd-1", d, until)
		if err != nil || st != want {
			t.Fatalf("claim %d: %v %v, want %v", i, st, err, want)
		}
	}
	if st, _ := j.Claim(ctx, "cmd-1", sha256.Sum256([]byte("other")), until); st != protocol.ClaimConflict {
		t.Fatalf("different digest: %v, want conflict", st)
	}
	if err := j.MarkApplying(ctx, "cmd-1", "CN=u", time.Time{}, 0); err != nil {
		t.Fatal(err)
	}
	pend, err := j.Pending(ctx)
	if err != nil || len(pend) != 1 || pend[0].UserDN != "CN=u" {
		t.Fatalf("pending %+v %v", pend, err)
	}
	if err := j.Finish(ctx, "cmd-1", "succeeded", "ldaps://dc1", []byte("signed")); err != nil {
		t.Fatal(err)
	}
	if err := j.Finish(ctx, "cmd-1", "transient", "ldaps://dc2", []byte("second")); err != nil {
		t.Fatal(err)
	}
	j.Close()

	j = open(t, path, c)
	e, err := j.Get(ctx, "cmd-1")
	if err != nil {
		t.Fatal(err)
	}
	if e.State != StateDone || e.Code != "succeeded" || string(e.Result) != "signed" || e.DC != "ldaps://dc1" {
		t.Fatalf("after reopen: %+v (the first outcome must win)", e)
	}
	if err := j.MarkApplying(ctx, "cmd-1", "CN=u", time.Time{}, 0); err == nil {
		t.Fatal("a done command was marked applying again")
	}
	if _, err := j.Get(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing id: %v", err)
	}
	if err := j.Finish(ctx, "nope", "x", "", nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("finish of unknown id: %v", err)
	}
}

func TestConcurrentClaimsOfOneIDOnlyOneNew(t *testing.T) {
	j := open(t, "", newClock())
	d := sha256.Sum256([]byte("x"))
	var wg sync.WaitGroup
	var mu sync.Mutex
	counts := map[protocol.ClaimStatus]int{}
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := j.Claim(context.Background(), "same", d, time.Now().Add(time.Hour))
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			counts[st]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if counts[protocol.ClaimNew] != 1 || counts[protocol.ClaimDuplicate] != 31 {
		t.Fatalf("claims %v, want exactly one new", counts)
	}
}

func TestSweep(t *testing.T) {
	c := newClock()
	j := open(t, "", c)
	ctx := context.Background()
	for i, until := range []time.Duration{time.Minute, 3 * time.Hour} {
		id := fmt.Sprint("c", i)
		if _, err := j.Claim(ctx, id, sha256.Sum256([]byte(id)), c.Now().Add(until)); err != nil {
			t.Fatal(err)
		}
		if err := j.Finish(ctx, id, "succeeded", "", []byte("r")); err != nil {
			t.Fatal(err)
		}
	}
	// A claim never written (its command was abandoned and never came
	// back) is forgotten once its replay window is over.
	if _, err := j.Claim(ctx, "unwritten", [32]byte{1}, c.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Claim(ctx, "applying", [32]byte{}, c.Now()); err != nil {
		t.Fatal(err)
	}
	if err := j.MarkApplying(ctx, "applying", "CN=x", time.Time{}, 0); err != nil {
		t.Fatal(err)
	}
	c.Advance(30 * time.Minute)
	if sw, err := j.Sweep(ctx, 24*time.Hour); err != nil || sw.Finished != 0 || len(sw.Unresolved) != 0 {
		t.Fatalf("inside retention swept %+v, %v", sw, err)
	}
	// c0: past window and retention; c1: inside its replay window;
	// applying: its outcome was never recorded, past both too: deleted and
	// returned, so the connector can say so.
	c.Advance(2 * time.Hour)
	sw, err := j.Sweep(ctx, 24*time.Hour)
	if err != nil || sw.Finished != 1 || len(sw.Unresolved) != 1 || sw.Unresolved[0].ID != "applying" || sw.Unresolved[0].UserDN != "CN=x" {
		t.Fatalf("swept %+v, %v; want c0 finished and 'applying' unresolved", sw, err)
	}
	for _, id := range []string{"c0", "unwritten", "applying"} {
		if _, err := j.Get(ctx, id); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s kept", id)
		}
	}
	for _, id := range []string{"c1"} {
		if _, err := j.Get(ctx, id); err != nil {
			t.Errorf("%s: %v (must be kept)", id, err)
		}
	}
}

func TestTakeAttemptSlidingWindow(t *testing.T) {
	c := newClock()
	j := open(t, "", c)
	ctx := context.Background()
	for i := range 5 {
		ok, _, err := j.TakeAttempt(ctx, "CN=u", fmt.Sprint("c", i), 5, 24*time.Hour)
		if err != nil || !ok {
			t.Fatalf("attempt %d refused: %v", i+1, err)
		}
		c.Advance(time.Hour)
	}
	ok, wait, err := j.TakeAttempt(ctx, "CN=u", "c5", 5, 24*time.Hour)
	if err != nil || ok {
		t.Fatalf("6th attempt allowed (%v)", err)
	}
	if wait != 19*time.Hour {
		t.Fatalf("retry after %v, want 19h (the first attempt leaves the window)", wait)
	}
	if ok, _, _ := j.TakeAttempt(ctx, "CN=other", "o0", 5, 24*time.Hour); !ok {
		t.Fatal("another user limited")
	}
	c.Advance(19 * time.Hour)
	if ok, _, _ := j.TakeAttempt(ctx, "CN=u", "c6", 5, 24*time.Hour); !ok {
		t.Fatal("not allowed again after the window slid")
	}
	if ok, _, _ := j.TakeAttempt(ctx, "CN=u", "c7", 0, time.Hour); !ok {
		t.Fatal("limit 0 means unlimited")
	}
}

// TestTakeAttemptOncePerCommand: a command that comes back (a transient
// failure, a lost lock) takes no second attempt while it has no outcome; a
// different command takes its own; the record is memory only (none is
// written), dropped with the command's outcome or the window.
func TestTakeAttemptOncePerCommand(t *testing.T) {
	c := newClock()
	path := filepath.Join(t.TempDir(), "j.db")
	ctx := context.Background()
	j := open(t, path, c)
	for i := range 4 {
		if ok, _, err := j.TakeAttempt(ctx, "dom/u", "cmd-1", 2, 24*time.Hour); !ok || err != nil {
			t.Fatalf("delivery %d of one command refused: %v", i+1, err)
		}
		c.Advance(time.Minute)
		if i == 1 {
			// Another command's transaction writes the user's attempts,
			// and nothing for cmd-1.
			if _, err := j.Claim(ctx, "other", [32]byte{}, c.Now().Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			if err := j.Finish(ctx, "other", "succeeded", "", nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	if ok, _, err := j.TakeAttempt(ctx, "dom/u", "cmd-2", 2, 24*time.Hour); !ok || err != nil {
		t.Fatalf("a second command refused: %v", err)
	}
	if ok, wait, err := j.TakeAttempt(ctx, "dom/u", "cmd-3", 2, 24*time.Hour); ok || err != nil || wait <= 0 {
		t.Fatalf("a third command: ok=%v wait=%v err=%v, want refused", ok, wait, err)
	}
	if n := countAttemptRecords(t, j); n != 1 {
		t.Fatalf("%d attempt records in the file, want 1 (the user's)", n)
	}
	// Its outcome drops the record: the command is answered from the
	// journal from now on.
	if _, err := j.Claim(ctx, "cmd-1", [32]byte{}, c.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := j.Finish(ctx, "cmd-1", "succeeded", "", nil); err != nil {
		t.Fatal(err)
	}
	j.mu.Lock()
	_, kept := j.took["cmd-1"]
	j.mu.Unlock()
	if kept {
		t.Fatal("cmd-1's record kept after its outcome")
	}
	// cmd-2's goes with the window.
	c.Advance(25 * time.Hour)
	if _, err := j.Sweep(ctx, 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	j.mu.Lock()
	n := len(j.attempts) + len(j.took)
	j.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d attempt records kept after the window", n)
	}
}

// countAttemptRecords counts the attempts bucket's records in the file.
func countAttemptRecords(t *testing.T, j *Journal) int {
	t.Helper()
	n := 0
	if err := j.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketAttempts).ForEach(func(_, _ []byte) error { n++; return nil })
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestSecondOpenTimesOut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.db")
	open(t, path, newClock())
	if _, err := Open(path, Options{Timeout: 50 * time.Millisecond}); err == nil {
		t.Fatal("a second process-level open of the same journal succeeded")
	}
}

func BenchmarkClaimFinishDurable(b *testing.B) {
	j, err := Open(filepath.Join(b.TempDir(), "j.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	ctx := context.Background()
	until := time.Now().Add(time.Hour)
	b.SetParallelism(64)
	var n sync.Map
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		var g [8]byte
		for pb.Next() {
			i++
			id := fmt.Sprintf("%p-%d", &g, i)
			if _, err := j.Claim(ctx, id, [32]byte{}, until); err != nil {
				b.Fatal(err)
			}
			if err := j.Finish(ctx, id, "succeeded", "dc", make([]byte, 600)); err != nil {
				b.Fatal(err)
			}
		}
		n.Store(&g, i)
	})
}

func TestAttemptsSurviveReopen(t *testing.T) {
	c := newClock()
	path := filepath.Join(t.TempDir(), "j.db")
	ctx := context.Background()
	j := open(t, path, c)
	for i := range 3 {
		if ok, _, err := j.TakeAttempt(ctx, "dom/u", fmt.Sprint("c", i), 5, 24*time.Hour); !ok || err != nil {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	// Written with the next transaction (a command's outcome)...
	if _, err := j.Claim(ctx, "cmd", [32]byte{}, c.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := j.Finish(ctx, "cmd", "succeeded", "", nil); err != nil {
		t.Fatal(err)
	}
	// ...or at close.
	for i := range 2 {
		if ok, _, err := j.TakeAttempt(ctx, "dom/u", fmt.Sprint("d", i), 5, 24*time.Hour); !ok || err != nil {
			t.Fatal(err)
		}
	}
	j.Close()
	j = open(t, path, c)
	if ok, wait, err := j.TakeAttempt(ctx, "dom/u", "e0", 5, 24*time.Hour); ok || err != nil || wait != 24*time.Hour {
		t.Fatalf("6th attempt after reopen: ok=%v wait=%v err=%v (the 5 earlier ones must have been kept)", ok, wait, err)
	}
}

// TestGroupCommitIsolatesFailures: many writers share transactions; one
// whose change is refused gets its error, the others are written.
func TestGroupCommitIsolatesFailures(t *testing.T) {
	j := open(t, "", newClock())
	ctx := context.Background()
	const n = 200
	for i := range n {
		if _, err := j.Claim(ctx, fmt.Sprint("c", i), [32]byte{}, time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Finish(ctx, "c0", "succeeded", "", nil); err != nil {
		t.Fatal(err)
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = j.MarkApplying(ctx, fmt.Sprint("c", i), "CN=u", time.Time{}, 0)
		}()
	}
	wg.Wait()
	if errs[0] == nil {
		t.Fatal("a done command was marked applying")
	}
	for i := 1; i < n; i++ {
		if errs[i] != nil {
			t.Fatalf("c%d: %v", i, errs[i])
		}
		if e, err := j.Get(ctx, fmt.Sprint("c", i)); err != nil || e.State != StateApplying {
			t.Fatalf("c%d: %+v %v", i, e, err)
		}
	}
	if p, err := j.Pending(ctx); err != nil || len(p) != n-1 {
		t.Fatalf("pending: %d %v", len(p), err)
	}
}

func TestClosedJournalRefusesWrites(t *testing.T) {
	j, err := Open(filepath.Join(t.TempDir(), "j.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	j.Close()
	if err := j.Writable(context.Background()); !errors.Is(err, errClosed) {
		t.Fatalf("write after close: %v", err)
	}
}

func TestOlderFormatIsRefusedClearly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket(bucketLegacy); return err }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = Open(path, Options{})
	if err == nil || !strings.Contains(err.Error(), "older format") || !strings.Contains(err.Error(), path) {
		t.Fatalf("open of an older journal: %v", err)
	}
}

// TestFinishAsyncIsSeenAtOnceAndDurableAfterWait: a queued outcome answers
// Get and Claim before its transaction commits, and is on file after the
// wait.
func TestFinishAsyncIsSeenAtOnceAndDurableAfterWait(t *testing.T) {
	c := newClock()
	path := filepath.Join(t.TempDir(), "j.db")
	j := open(t, path, c)
	ctx := context.Background()
	d := sha256.Sum256([]byte("a"))
	if _, err := j.Claim(ctx, "a", d, c.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := j.MarkApplying(ctx, "a", "CN=u", c.Now(), 7); err != nil {
		t.Fatal(err)
	}
	wait := j.FinishAsync(ctx, "a", "succeeded", "dc1", []byte("signed"))
	e, err := j.Get(ctx, "a")
	if err != nil || e.State != StateDone || e.Code != "succeeded" || e.PwdVersionBefore != 7 {
		t.Fatalf("before the commit: %+v %v", e, err)
	}
	if st, err := j.Claim(ctx, "a", d, c.Now().Add(time.Hour)); err != nil || st != protocol.ClaimDuplicate {
		t.Fatalf("claim before the commit: %v %v", st, err)
	}
	if err := wait(ctx); err != nil {
		t.Fatal(err)
	}
	j.Close()
	j = open(t, path, c)
	if e, err := j.Get(ctx, "a"); err != nil || e.State != StateDone || string(e.Result) != "signed" {
		t.Fatalf("after reopen: %+v %v", e, err)
	}
}

// TestWriteErrorsSayWhoseTheyAre: a write refused for its entry is not a
// storage failure (waiting cannot help); one the file did not take is.
func TestWriteErrorsSayWhoseTheyAre(t *testing.T) {
	j := open(t, "", newClock())
	ctx := context.Background()
	err := j.Finish(ctx, "never-claimed", "succeeded", "", nil)
	if !errors.Is(err, ErrNotFound) || errors.Is(err, ErrStorage) {
		t.Fatalf("unknown entry: %v", err)
	}
	j.db.Close() // the file goes away under the journal
	if err := j.Writable(ctx); !errors.Is(err, ErrStorage) {
		t.Fatalf("write to a closed file: %v, want ErrStorage", err)
	}
}

// TestWritableIsSharedAndReused: callers asking at once share one probe
// (two transactions), an answer younger than probeFresh is reused, and an
// older one is probed again; a failure is seen by the next probe.
func TestWritableIsSharedAndReused(t *testing.T) {
	c := newClock()
	j := open(t, "", c)
	ctx := context.Background()
	before := j.Stats().Commits
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := j.Writable(ctx); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := j.Stats().Commits - before; n != 2 {
		t.Fatalf("8 concurrent probes made %d commits, want 2 (one shared probe)", n)
	}
	c.Advance(probeFresh / 2)
	if err := j.Writable(ctx); err != nil || j.Stats().Commits-before != 2 {
		t.Fatalf("a fresh answer was not reused: %v, %d commits", err, j.Stats().Commits-before)
	}
	j.db.Close() // the file goes away under the journal
	// A failed write makes the next Writable probe again, though the last
	// answer is fresh (else a held handler would resume at once and fail
	// again, in a loop).
	if err := j.Finish(ctx, "x", "succeeded", "", nil); err == nil {
		t.Fatal("a write to a closed file succeeded")
	}
	if err := j.Writable(ctx); !errors.Is(err, ErrStorage) {
		t.Fatalf("a fresh answer was reused after a write failed: %v", err)
	}
}
