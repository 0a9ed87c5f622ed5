package journal

import (
	"context"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TakeAttempt counts one operation for key (a user) against a limit of
// limit operations in any sliding window: it records the attempt and
// returns true when under the limit, or returns false and how long until
// the oldest attempt leaves the window. Each command counts once: a
// command (its id) that already took an attempt still in the window is
// let through without taking another, so a command that comes back after
// a transient failure does not use up the user's limit. The counts
// survive restarts: an attempt, and the record that its command took it,
// are written with the next transaction (in practice the same command's
// mark or outcome).
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
	tk := tookKey(command)
	took, err := j.loadAttempts(tk)
	if err != nil {
		return false, 0, err
	}
	if len(took) > 0 && now.Sub(took[len(took)-1]) < window {
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
	j.attempts[tk] = []time.Time{now}
	j.dirty[key], j.dirty[tk] = true, true
	return true, 0, nil
}

// tookKey is the attempts record saying that command took its attempt
// (when, as a one-time record): it is flushed and swept with the users'
// records, but once written it is not kept in memory. No user's key
// (domain/objectGUID) starts with a NUL byte.
func tookKey(command string) string { return tookPrefix + command }

const tookPrefix = "\x00took\x00"

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
		for k := range recs {
			switch {
			case !committed:
				j.dirty[k] = true
			case strings.HasPrefix(k, tookPrefix) && !j.dirty[k]:
				// Read from the file when the command comes back: one
				// per command would otherwise stay in memory all window.
				delete(j.attempts, k)
			}
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
