// Package journal is the connector's durable memory, an embedded bbolt
// database: which commands were seen (the replay cache of the protocol),
// which were being applied when the process stopped, the signed result of
// each finished command (so a redelivered command is answered from here
// and never applied twice), and the per-user attempt counts of the rate
// limit. Entries expire after a retention period.
//
// Writes go through bbolt's Batch, which coalesces concurrent callers into
// one fsync'd transaction: durable, and cheap under load.
package journal

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/adwriteback/adwriteback/relay/protocol"
)

var (
	bucketCommands = []byte("commands")
	bucketAttempts = []byte("attempts")
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

// Entry is what the journal knows of one command.
type Entry struct {
	ID      string    `json:"id"`
	Digest  [32]byte  `json:"digest"`
	State   State     `json:"state"`
	Until   time.Time `json:"until"`   // kept at least until then (replay window)
	Created time.Time `json:"created"` // first seen
	// Applying is when the write to AD was started (StateApplying, and
	// kept in StateDone).
	Applying time.Time `json:"applying,omitzero"`
	UserDN   string    `json:"userDN,omitempty"`
	// PwdLastSetBefore is the account's pwdLastSet read before the write:
	// a later value on the DC proves the write happened.
	PwdLastSetBefore time.Time `json:"pwdLastSetBefore,omitzero"`
	DC               string    `json:"dc,omitempty"`
	// Code and Result are set in StateDone: the outcome code and the
	// signed result envelope as sent.
	Code   string    `json:"code,omitempty"`
	Result []byte    `json:"result,omitempty"`
	Done   time.Time `json:"done,omitzero"`
}

// Options tune the journal.
type Options struct {
	// Retention keeps finished entries at least this long after they were
	// created (default 7 days), and never less than their replay window.
	Retention time.Duration
	// Now is the clock (time.Now if nil).
	Now func() time.Time
	// NoSync skips fsync (tests and benchmarks of the non-durable path only).
	NoSync bool
	// Timeout bounds waiting for the file lock held by another process.
	Timeout time.Duration
}

// Journal is safe for concurrent use.
type Journal struct {
	db  *bolt.DB
	opt Options
}

// ErrNotFound: no entry for that id.
var ErrNotFound = errors.New("journal: no such command")

// Open opens (creating if needed) the journal file at path. Only one
// process may hold it; a second connector instance needs its own journal
// (instances share AD, not the file).
func Open(path string, opt Options) (*Journal, error) {
	if opt.Retention <= 0 {
		opt.Retention = 7 * 24 * time.Hour
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Timeout <= 0 {
		opt.Timeout = 5 * time.Second
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opt.Timeout, NoSync: opt.NoSync})
	if err != nil {
		return nil, fmt.Errorf("open journal %s: %w", path, err)
	}
	db.MaxBatchDelay = 2 * time.Millisecond
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketCommands, bucketAttempts} {
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
	return &Journal{db: db, opt: opt}, nil
}

// Close flushes and closes the file.
func (j *Journal) Close() error { return j.db.Close() }

// Path is the file's path.
func (j *Journal) Path() string { return j.db.Path() }

// Writable reports whether a write transaction commits (for readiness).
func (j *Journal) Writable(ctx context.Context) error {
	return j.update(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketAttempts).Put([]byte("\x00probe"), nil)
	})
}

func (j *Journal) update(ctx context.Context, fn func(*bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return j.db.Batch(fn)
}

var _ protocol.ReplayCache = (*Journal)(nil)

// Claim implements protocol.ReplayCache durably: a new id is recorded in
// StateClaimed; an id seen before with the same digest is a duplicate
// delivery (answer from the journal), with another digest a conflict.
func (j *Journal) Claim(ctx context.Context, id string, digest [32]byte, until time.Time) (protocol.ClaimStatus, error) {
	status := protocol.ClaimNew
	err := j.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCommands)
		if raw := b.Get([]byte(id)); raw != nil {
			var e Entry
			if err := json.Unmarshal(raw, &e); err != nil {
				return fmt.Errorf("journal entry %q: %w", id, err)
			}
			if bytes.Equal(e.Digest[:], digest[:]) {
				status = protocol.ClaimDuplicate
			} else {
				status = protocol.ClaimConflict
			}
			return nil
		}
		status = protocol.ClaimNew
		e := Entry{ID: id, Digest: digest, State: StateClaimed, Until: until, Created: j.opt.Now()}
		return put(b, &e)
	})
	if err != nil {
		return 0, fmt.Errorf("journal claim: %w", err)
	}
	return status, nil
}

// Get returns the entry for id, or ErrNotFound.
func (j *Journal) Get(ctx context.Context, id string) (*Entry, error) {
	var e *Entry
	err := j.db.View(func(tx *bolt.Tx) error {
		raw := tx.Bucket(bucketCommands).Get([]byte(id))
		if raw == nil {
			return ErrNotFound
		}
		e = new(Entry)
		return json.Unmarshal(raw, e)
	})
	if err != nil {
		return nil, err
	}
	return e, nil
}

// MarkApplying records, before the write to AD is sent, that it is about to
// be: after a crash the connector knows the write may have happened.
func (j *Journal) MarkApplying(ctx context.Context, id, userDN string, pwdLastSetBefore time.Time) error {
	return j.modify(ctx, id, func(e *Entry) error {
		if e.State == StateDone {
			return fmt.Errorf("journal: command %q is already done", id)
		}
		e.State, e.UserDN, e.Applying, e.PwdLastSetBefore = StateApplying, userDN, j.opt.Now(), pwdLastSetBefore
		return nil
	})
}

// Finish records the final outcome and the signed result to send. It is
// written before the result is sent, so a redelivery finds it.
func (j *Journal) Finish(ctx context.Context, id, code, dc string, result []byte) error {
	return j.modify(ctx, id, func(e *Entry) error {
		if e.State == StateDone {
			return nil // first outcome wins
		}
		e.State, e.Code, e.DC, e.Result, e.Done = StateDone, code, dc, result, j.opt.Now()
		return nil
	})
}

func (j *Journal) modify(ctx context.Context, id string, fn func(*Entry) error) error {
	return j.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCommands)
		raw := b.Get([]byte(id))
		if raw == nil {
			return fmt.Errorf("%w: %q", ErrNotFound, id)
		}
		var e Entry
		if err := json.Unmarshal(raw, &e); err != nil {
			return fmt.Errorf("journal entry %q: %w", id, err)
		}
		if err := fn(&e); err != nil {
			return err
		}
		return put(b, &e)
	})
}

func put(b *bolt.Bucket, e *Entry) error {
	raw, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return b.Put([]byte(e.ID), raw)
}

// Sweep deletes entries past both their replay window and the retention,
// and attempt records older than maxWindow. It returns how many commands
// it deleted.
func (j *Journal) Sweep(ctx context.Context, maxWindow time.Duration) (int, error) {
	now := j.opt.Now()
	n := 0
	err := j.db.Update(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketCommands).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			var e Entry
			if err := json.Unmarshal(v, &e); err != nil {
				continue
			}
			if now.After(e.Until) && now.Sub(e.Created) > j.opt.Retention && e.State != StateApplying {
				if err := c.Delete(); err != nil {
					return err
				}
				n++
			}
		}
		a := tx.Bucket(bucketAttempts).Cursor()
		for k, v := a.First(); k != nil; k, v = a.Next() {
			var ts []time.Time
			if json.Unmarshal(v, &ts) != nil || len(ts) == 0 || now.Sub(ts[len(ts)-1]) > maxWindow {
				if err := a.Delete(); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return n, err
}

// Pending lists commands left in StateApplying (a crash between the write
// to AD and recording its outcome), for recovery and for admins.
func (j *Journal) Pending(ctx context.Context) ([]Entry, error) {
	var out []Entry
	err := j.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketCommands).ForEach(func(k, v []byte) error {
			var e Entry
			if err := json.Unmarshal(v, &e); err != nil {
				return nil
			}
			if e.State == StateApplying {
				out = append(out, e)
			}
			return nil
		})
	})
	return out, err
}
