package journal

import (
	"context"
	"encoding/json"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TakeAttempt counts one operation for key (a user) against a limit of
// limit operations in any sliding window: it records the attempt and
// returns true when under the limit, or returns false and how long until
// the oldest attempt leaves the window. The counts survive restarts.
func (j *Journal) TakeAttempt(ctx context.Context, key string, limit int, window time.Duration) (bool, time.Duration, error) {
	if limit <= 0 {
		return true, 0, nil
	}
	now := j.opt.Now()
	ok, wait := false, time.Duration(0)
	err := j.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAttempts)
		var ts []time.Time
		if raw := b.Get([]byte(key)); raw != nil {
			_ = json.Unmarshal(raw, &ts) // a damaged record counts as empty
		}
		kept := ts[:0]
		for _, t := range ts {
			if now.Sub(t) < window {
				kept = append(kept, t)
			}
		}
		if len(kept) >= limit {
			ok, wait = false, kept[len(kept)-limit].Add(window).Sub(now)
		} else {
			ok = true
			kept = append(kept, now)
		}
		raw, err := json.Marshal(kept)
		if err != nil {
			return err
		}
		return b.Put([]byte(key), raw)
	})
	return ok, wait, err
}
