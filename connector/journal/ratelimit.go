package journal

import (
	"context"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TakeAttempt counts one operation for key (a user) against a limit of
// limit operations in any sliding window: it records the attempt and
// returns true when under the limit, or returns false and how long until
// the oldest attempt leaves the window. Each command counts once: a
// command (its id) that already took an attempt still in the window, and
// has no outcome yet, is let through without taking another, so a command
// that comes back after a transient failure or a lost lock does not use up
// the user's limit. The counts survive restarts (an attempt is written
// with the next transaction, in practice the same command's mark or
// outcome); the record that a command took its attempt is kept in memory
// only, until the command's outcome (FinishAsync) or the end of the window
// (Sweep): after a restart, a command that comes back takes one more.
// Writing that record for every command grew the connector's resident
// memory by a quarter in the benchmark's 100,000-command burst, for the
// rare case of a restart between two deliveries of one command.
func (j *Journal) TakeAttempt(ctx context.Context, key, command string, limit int, window time.Duration) (bool, time.Duration, error) {
	if limit <= 0 {
		return true, 0, nil
	}
	if err := ctx.Err(); err != nil {
		return false, 0, err
	}
	now := j.opt.Clock.Now()
	j.mu.Lock()
	defer j.mu.Unlock()
	if at, took := j.took[command]; took && now.Sub(at) < window {
		return true, 0, nil
	}
	ts, err := j.loadAttempts(key)
	if err != nil {
		return false, 0, err
	}
	kept := make([]time.Time, 0, len(ts)+1)
	for _, t := range ts {
		if now.Sub(t) < window {
			kept = append(kept, t)
		}
	}
	if len(kept) >= limit {
		j.attempts[key] = kept
		return false, kept[len(kept)-limit].Add(window).Sub(now), nil
	}
	j.attempts[key] = append(kept, now)
	j.took[command] = now
	j.dirty[key] = true
	return true, 0, nil
}

// loadAttempts returns key's record from the cache, or from the file on
// first use (j.mu held; nil when there is none).
func (j *Journal) loadAttempts(key string) ([]time.Time, error) {
	if ts, cached := j.attempts[key]; cached {
		return ts, nil
	}
	var ts []time.Time
	err := j.db.View(func(tx *bolt.Tx) error {
		if raw := tx.Bucket(bucketAttempts).Get([]byte(key)); raw != nil {
			ts, _ = decodeTimes(raw) // a damaged record counts as what it decoded to
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("journal attempts: %w", err)
	}
	return ts, nil
}

// flushAttempts writes the changed rate-limit records in tx (the first
// step of every transaction); after tells it whether tx committed, so a
// failed write is tried again with the next one.
func (j *Journal) flushAttempts(tx *bolt.Tx) (func(bool), error) {
	j.mu.Lock()
	if len(j.dirty) == 0 {
		j.mu.Unlock()
		return nil, nil
	}
	recs := make(map[string][]byte, len(j.dirty))
	for k := range j.dirty {
		recs[k] = encodeTimes(j.attempts[k])
	}
	clear(j.dirty)
	j.mu.Unlock()
	after := func(committed bool) {
		j.mu.Lock()
		defer j.mu.Unlock()
		if committed {
			return
		}
		for k := range recs {
			j.dirty[k] = true
		}
	}
	b := tx.Bucket(bucketAttempts)
	for k, raw := range recs {
		if err := b.Put([]byte(k), raw); err != nil {
			return after, err
		}
	}
	return after, nil
}
