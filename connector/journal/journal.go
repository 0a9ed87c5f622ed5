// Package journal is the connector's durable memory, an embedded bbolt
// database: which commands were seen (the replay cache of the protocol),
// which were being applied when the process stopped, the signed result of
// each finished command (so a redelivered command is answered from here
// and never applied twice), and the per-user attempt counts of the rate
// limit. Entries expire after a retention period.
//
// What must survive a crash is written before it matters, and no more
// often: a claim lives in memory until the command's first durable write
// (the mark before the write to AD, or its outcome), and a rate-limit
// attempt is flushed with the next transaction. A command lost with an
// unwritten claim was not applied and comes back from the queue. Writes
// from all handlers share fsync'd transactions (a group commit), so a
// successful reset costs two shares of an fsync and a refusal one.
package journal

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"

	bolt "go.etcd.io/bbolt"

	"github.com/adwriteback/adwriteback/relay/protocol"
)

var (
	// bucketIDs maps a command id to its sequence number in bucketLog.
	bucketIDs = []byte("ids")
	// bucketLog holds the entries in arrival order (8-byte big-endian
	// sequence keys): writes touch only its tail and the sweep reads from
	// its head, so the pages in memory stay few however long the
	// retention.
	bucketLog      = []byte("log")
	bucketAttempts = []byte("attempts")
	// bucketProbe holds the readiness probe's write.
	bucketProbe = []byte("probe")
	// bucketLegacy is where development builds kept JSON entries.
	bucketLegacy = []byte("commands")
)

// State is where a command is in its life.
type State string

const (
	// StateClaimed: verified and recorded; nothing done in AD yet.
	StateClaimed State = "claimed"
	// StateApplying: a write to AD was about to be sent. Found after a
	// crash, it means the write may or may not have happened.
	StateApplying State = "applying"
	// StateDone: the outcome is final and Result holds the signed answer.
	StateDone State = "done"
)

// Entry is what the journal knows of one command (stored in the binary
// form of codec.go).
type Entry struct {
	ID      string
	Digest  [32]byte
	State   State
	Until   time.Time // kept at least until then (replay window)
	Created time.Time // first seen
	// Applying is when the write to AD was started (StateApplying, and
	// kept in StateDone).
	Applying time.Time
	UserDN   string
	// PwdLastSetBefore is the account's pwdLastSet read before the write:
	// a later value on the DC proves the write happened.
	PwdLastSetBefore time.Time
	// PwdVersionBefore is unicodePwd's replication version read before
	// the write (0 when unknown): a higher value proves it landed, also
	// for a must-change reset, which sets pwdLastSet to 0.
	PwdVersionBefore uint32
	DC               string
	// Code and Result are set in StateDone: the outcome code and the
	// signed result envelope as sent.
	Code   string
	Result []byte
	Done   time.Time
}

// DefaultRetention is how long finished entries are kept when Options says
// nothing; the connector's table of defaults (connector/config) takes it
// from here.
const DefaultRetention = 7 * 24 * time.Hour

// Options tune the journal.
type Options struct {
	// Retention keeps finished entries at least this long after they were
	// created (default 7 days), and never less than their replay window.
	Retention time.Duration
	// Clock is the time source (nil: the real clock).
	Clock clockwork.Clock
	// NoSync skips fsync (tests and benchmarks of the non-durable path only).
	NoSync bool
	// Timeout bounds waiting for the file lock held by another process.
	Timeout time.Duration
	// TrimEvery is how often, after writes, the file's pages are dropped
	// from the process's memory map (default 100ms; Linux only; see
	// trimResident). Each read of a random id's index page maps its
	// neighbours too (the kernel's fault-around), so a second of work can
	// map tens of MB.
	TrimEvery time.Duration
}

// Journal is safe for concurrent use.
type Journal struct {
	db  *bolt.DB
	opt Options
	c   *committer

	mu sync.Mutex
	// claims are verified commands not yet written (see the package doc);
	// outcomes are finished ones whose outcome is queued, not yet durable.
	claims   map[string]*Entry
	outcomes map[string]*Entry
	// attempts caches the rate-limit records of the users seen (loaded
	// on first use); dirty are the ones the next transaction writes.
	attempts map[string][]time.Time
	dirty    map[string]bool
	// took is when each command without an outcome took its rate-limit
	// attempt (see TakeAttempt): memory only.
	took map[string]time.Time

	// probe makes Writable single-flight and keeps its answer for
	// probeFresh: /readyz, /status and every held handler ask, and each
	// probe is two fsync'd transactions.
	probe          chan struct{} // a one-slot semaphore
	probedAt       time.Time
	probedErr      error
	probedFailures int64 // committer failures when probed

	stopTrim, trimDone chan struct{}
	closeOnce          sync.Once
	closeErr           error
}

// ErrNotFound: no entry for that id.
var ErrNotFound = errors.New("journal: no such command")

// Open opens (creating if needed) the journal file at path. Only one
// process may hold it; a second connector instance needs its own journal
// (instances share AD, not the file).
func Open(path string, opt Options) (*Journal, error) {
	if opt.Retention <= 0 {
		opt.Retention = DefaultRetention
	}
	if opt.Clock == nil {
		opt.Clock = clockwork.NewRealClock()
	}
	if opt.Timeout <= 0 {
		opt.Timeout = 5 * time.Second
	}
	if opt.TrimEvery <= 0 {
		opt.TrimEvery = 100 * time.Millisecond
	}
	// The freelist is rebuilt on open instead of written by every commit
	// (bbolt's default rewrites all of it each time).
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opt.Timeout, NoSync: opt.NoSync,
		NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return nil, fmt.Errorf("open journal %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketLegacy) != nil {
			return fmt.Errorf("it was written by a development build in an older format; move it aside to start a new one")
		}
		for _, b := range [][]byte{bucketIDs, bucketLog, bucketAttempts, bucketProbe} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("init journal %s: %w", path, err)
	}
	j := &Journal{db: db, opt: opt, probe: make(chan struct{}, 1), claims: map[string]*Entry{}, outcomes: map[string]*Entry{}, attempts: map[string][]time.Time{}, dirty: map[string]bool{}, took: map[string]time.Time{}}
	j.c = newCommitter(db, j.flushAttempts)
	j.stopTrim, j.trimDone = make(chan struct{}), make(chan struct{})
	go j.trimLoop()
	return j, nil
}

// trimLoop keeps the resident part of the file's map small: after writes,
// every TrimEvery, it drops the mapped pages (they stay in the page
// cache; the cost is the kernel's walk of the mapped range).
func (j *Journal) trimLoop() {
	defer close(j.trimDone)
	t := j.opt.Clock.NewTicker(j.opt.TrimEvery)
	defer t.Stop()
	last := int64(-1)
	for {
		select {
		case <-j.stopTrim:
			return
		case <-t.Chan():
		}
		if n := j.c.commits.Load(); n != last {
			last = n
			_ = trimResident(j.db) // best effort: memory, not data
		}
	}
}

// Close writes what is queued and closes the file. Closing again does
// nothing.
func (j *Journal) Close() error {
	j.closeOnce.Do(func() { j.closeErr = j.close() })
	return j.closeErr
}

func (j *Journal) close() error {
	close(j.stopTrim)
	<-j.trimDone
	j.c.close()
	// Attempts taken since the last write (none when every command ended
	// with a write): one last transaction.
	_ = j.db.Update(func(tx *bolt.Tx) error {
		after, err := j.flushAttempts(tx)
		if after != nil {
			defer after(err == nil)
		}
		return err
	})
	return j.db.Close()
}

// Stats counts the journal's work since Open.
type Stats struct {
	// Commits is the number of fsync'd transactions, Writes the number of
	// writes they carried (Writes/Commits is the group commit's effect).
	Commits, Writes int64
}

// Stats reports the counters.
func (j *Journal) Stats() Stats {
	return Stats{Commits: j.c.commits.Load(), Writes: j.c.writes.Load()}
}

// Path is the file's path.
func (j *Journal) Path() string { return j.db.Path() }

// probeSize is the room Writable asks for: more than a busy group commit
// writes, so "writable" means work can resume, not only that a few bytes
// fit in a page bbolt had free.
const probeSize = 64 << 10

// probeFresh is how long a Writable answer is reused.
const probeFresh = time.Second

// Writable reports whether the journal takes writes (for readiness, and
// to resume work after a failed write): it writes probeSize bytes in one
// transaction and removes them in the next, so a full disk or a file that
// cannot grow fails it. Concurrent callers share one probe, and an answer
// younger than probeFresh is reused unless a write has failed since.
func (j *Journal) Writable(ctx context.Context) error {
	select {
	case j.probe <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-j.probe }()
	now, failures := j.opt.Clock.Now(), j.c.failures.Load()
	if age := now.Sub(j.probedAt); !j.probedAt.IsZero() && age >= 0 && age < probeFresh && failures == j.probedFailures {
		return j.probedErr
	}
	err := j.writeProbe(ctx)
	if ctx.Err() == nil {
		j.probedAt, j.probedErr, j.probedFailures = now, err, j.c.failures.Load()
	}
	return err
}

func (j *Journal) writeProbe(ctx context.Context) error {
	key := []byte("room")
	err := j.c.do(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketProbe).Put(key, make([]byte, probeSize))
	})
	if err != nil {
		return err
	}
	return j.c.do(ctx, func(tx *bolt.Tx) error { return tx.Bucket(bucketProbe).Delete(key) })
}

var _ protocol.ReplayCache = (*Journal)(nil)

// Claim implements protocol.ReplayCache: a new id is recorded in
// StateClaimed (in memory until the command's first write); an id seen
// before with the same digest is a duplicate delivery (answer from the
// journal), with another digest a conflict.
func (j *Journal) Claim(ctx context.Context, id string, digest [32]byte, until time.Time) (protocol.ClaimStatus, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	prev := j.outcomes[id]
	if prev == nil {
		prev = j.claims[id]
	}
	if prev == nil {
		var err error
		if prev, err = j.stored(id); err != nil && !errors.Is(err, ErrNotFound) {
			return 0, fmt.Errorf("journal claim: %w", err)
		}
	}
	switch {
	case prev == nil:
		j.claims[id] = &Entry{ID: id, Digest: digest, State: StateClaimed, Until: until, Created: j.opt.Clock.Now()}
		return protocol.ClaimNew, nil
	case bytes.Equal(prev.Digest[:], digest[:]):
		return protocol.ClaimDuplicate, nil
	default:
		return protocol.ClaimConflict, nil
	}
}

// Get returns the entry for id, or ErrNotFound.
func (j *Journal) Get(ctx context.Context, id string) (*Entry, error) {
	j.mu.Lock()
	c := j.outcomes[id]
	if c == nil {
		c = j.claims[id]
	}
	if c != nil {
		e := *c
		j.mu.Unlock()
		return &e, nil
	}
	j.mu.Unlock()
	return j.stored(id)
}

// stored reads id's entry from the file.
func (j *Journal) stored(id string) (*Entry, error) {
	var e *Entry
	err := j.db.View(func(tx *bolt.Tx) error {
		_, raw := lookup(tx, id)
		if raw == nil {
			return ErrNotFound
		}
		var err error
		e, err = decodeEntry(raw)
		return err
	})
	return e, err
}

// lookup finds id's log key and entry bytes (nil, nil if absent).
func lookup(tx *bolt.Tx, id string) (key, raw []byte) {
	key = tx.Bucket(bucketIDs).Get([]byte(id))
	if key == nil {
		return nil, nil
	}
	return key, tx.Bucket(bucketLog).Get(key)
}

// MarkApplying records, before the write to AD is sent, that it is about to
// be: after a crash the connector knows the write may have happened.
func (j *Journal) MarkApplying(ctx context.Context, id, userDN string, pwdLastSetBefore time.Time, pwdVersionBefore uint32) error {
	now := j.opt.Clock.Now()
	return j.modify(ctx, id, func(e *Entry) (bool, error) {
		if e.State == StateDone {
			return false, fmt.Errorf("journal: command %q is already done", id)
		}
		e.State, e.UserDN, e.Applying, e.PwdLastSetBefore, e.PwdVersionBefore = StateApplying, userDN, now, pwdLastSetBefore, pwdVersionBefore
		return true, nil
	})
}

// Finish records the final outcome and the signed result to send, and
// returns once it is durable.
func (j *Journal) Finish(ctx context.Context, id, code, dc string, result []byte) error {
	return j.FinishAsync(ctx, id, code, dc, result)(ctx)
}

// FinishAsync queues the final outcome for the next shared transaction and
// returns at once; the function it returns waits until the outcome is
// durable (nil) or its write failed. Until then Get and Claim already see
// the outcome. The engine sends the result meanwhile and settles the
// message only after the wait: a crash in between makes the command come
// back, and the durable mark before the write to AD says how to settle it.
func (j *Journal) FinishAsync(ctx context.Context, id, code, dc string, result []byte) (wait func(context.Context) error) {
	now := j.opt.Clock.Now()
	done := func(e *Entry) {
		e.State, e.Code, e.DC, e.Result, e.Done = StateDone, code, dc, result, now
	}
	j.mu.Lock()
	base := j.claims[id]
	delete(j.took, id) // answered from the journal from now on
	j.mu.Unlock()
	if base == nil {
		base, _ = j.stored(id)
	}
	if base != nil && base.State != StateDone {
		e := *base
		done(&e)
		j.mu.Lock()
		j.outcomes[id] = &e
		j.mu.Unlock()
	}
	o := j.modifyAsync(ctx, id, func(e *Entry) (bool, error) {
		if e.State == StateDone {
			return false, nil // first outcome wins
		}
		done(e)
		return true, nil
	})
	return o.wait
}

// modify changes id's entry (from the file, else its claim) durably; fn
// reports whether there is anything to write.
func (j *Journal) modify(ctx context.Context, id string, fn func(*Entry) (bool, error)) error {
	return j.modifyAsync(ctx, id, fn).wait(ctx)
}

func (j *Journal) modifyAsync(ctx context.Context, id string, fn func(*Entry) (bool, error)) *op {
	written := false
	write := func(tx *bolt.Tx) error {
		key, raw := lookup(tx, id)
		var e *Entry
		if raw != nil {
			var err error
			if e, err = decodeEntry(raw); err != nil {
				return fmt.Errorf("journal entry %q: %w", id, err)
			}
		} else {
			j.mu.Lock()
			c := j.claims[id]
			j.mu.Unlock()
			if c == nil {
				return fmt.Errorf("%w: %q", ErrNotFound, id)
			}
			cp := *c
			e = &cp
		}
		change, err := fn(e)
		if err != nil || !change {
			return err
		}
		log := tx.Bucket(bucketLog)
		log.FillPercent = 0.9 // appended to in key order: fill pages before splitting
		if key == nil {
			seq, err := log.NextSequence()
			if err != nil {
				return err
			}
			key = binary.BigEndian.AppendUint64(nil, seq)
			if err := tx.Bucket(bucketIDs).Put([]byte(id), key); err != nil {
				return err
			}
		}
		written = true
		return log.Put(key, encodeEntry(e))
	}
	return j.c.submit(ctx, write, func(err error) {
		j.mu.Lock()
		defer j.mu.Unlock()
		delete(j.outcomes, id) // on file now, or to be written again
		if err == nil && written {
			delete(j.claims, id) // on file now: the claim is no longer needed
		}
	})
}

// Swept is what a Sweep deleted.
type Swept struct {
	// Finished counts commands with a recorded outcome.
	Finished int
	// Unresolved are commands left applying (the process stopped between
	// the write to AD and recording its outcome, and the command never
	// came back): their outcome was never known. They go once past the
	// retention and their command's lifetime, as the others do, and are
	// returned so the caller can say so.
	Unresolved []Entry
}

// Sweep deletes entries past both their replay window and the retention,
// claims past their replay window, and attempt records older than
// maxWindow.
func (j *Journal) Sweep(ctx context.Context, maxWindow time.Duration) (Swept, error) {
	now := j.opt.Clock.Now()
	j.mu.Lock()
	for id, c := range j.claims {
		if now.After(c.Until) {
			delete(j.claims, id)
		}
	}
	for k, ts := range j.attempts {
		if !j.dirty[k] && (len(ts) == 0 || now.Sub(ts[len(ts)-1]) > maxWindow) {
			delete(j.attempts, k)
		}
	}
	for id, at := range j.took {
		if now.Sub(at) > maxWindow {
			delete(j.took, id)
		}
	}
	j.mu.Unlock()
	var sw Swept
	err := j.c.do(ctx, func(tx *bolt.Tx) error {
		sw = Swept{} // a transaction may run again
		ids := tx.Bucket(bucketIDs)
		c := tx.Bucket(bucketLog).Cursor()
		var doomed [][2][]byte
		for k, v := c.First(); k != nil; k, v = c.Next() {
			e, err := decodeEntry(v)
			if err != nil {
				continue // kept for inspection; never matched again
			}
			if now.Sub(e.Created) <= j.opt.Retention {
				break // the log is in arrival order: the rest is younger
			}
			if !now.After(e.Until) {
				continue
			}
			doomed = append(doomed, [2][]byte{k, []byte(e.ID)})
			if e.State == StateApplying {
				e.Result = nil
				sw.Unresolved = append(sw.Unresolved, *e)
			} else {
				sw.Finished++
			}
		}
		for _, d := range doomed {
			if err := tx.Bucket(bucketLog).Delete(d[0]); err != nil {
				return err
			}
			if err := ids.Delete(d[1]); err != nil {
				return err
			}
		}
		a := tx.Bucket(bucketAttempts)
		var old [][]byte
		err := a.ForEach(func(k, v []byte) error {
			ts, err := decodeTimes(v)
			if err != nil || len(ts) == 0 || now.Sub(ts[len(ts)-1]) > maxWindow {
				old = append(old, k)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range old {
			j.mu.Lock()
			keep := j.dirty[string(k)]
			j.mu.Unlock()
			if !keep {
				if err := a.Delete(k); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return Swept{}, err
	}
	return sw, nil
}

// Pending lists commands left in StateApplying (a crash between the write
// to AD and recording its outcome), for recovery and for admins.
func (j *Journal) Pending(ctx context.Context) ([]Entry, error) {
	var out []Entry
	err := j.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketLog).ForEach(func(k, v []byte) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			e, err := decodeEntry(v)
			if err == nil && e.State == StateApplying {
				out = append(out, *e)
			}
			return nil
		})
	})
	return out, err
}
