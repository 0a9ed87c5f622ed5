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
// the oldest attempt leaves the window. The counts survive restarts: an
// attempt is written with the next transaction (in practice the same
// command's mark or outcome).
func (j *Journal) TakeAttempt(ctx context.Context, key string, limit int, window time.Duration) (bool, time.Duration, error) {
	if limit <= 0 {
		return true, 0, nil
	}
	if err := ctx.Err(); err != nil {
		return false, 0, err
	}
	now := j.opt.Clock.Now()
	j.mu.Lock()
	defer j.mu.Unlock()
	ts, cached := j.attempts[key]
	if !cached {
		err := j.db.View(func(tx *bolt.Tx) error {
			if raw := tx.Bucket(bucketAttempts).Get([]byte(key)); raw != nil {
				ts, _ = decodeTimes(raw) // a damaged record counts as what it decoded to
			}
			return nil
		})
		if err != nil {
			return false, 0, fmt.Errorf("journal attempts: %w", err)
		}
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
	j.dirty[key] = true
	return true, 0, nil
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
		if committed {
			return
		}
		j.mu.Lock()
		for k := range recs {
			j.dirty[k] = true
		}
		j.mu.Unlock()
	}
	b := tx.Bucket(bucketAttempts)
	for k, raw := range recs {
		if err := b.Put([]byte(k), raw); err != nil {
			return after, err
		}
	}
	return after, nil
}
