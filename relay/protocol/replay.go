package protocol

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// ClaimStatus is what a ReplayCache knew about a command id.
type ClaimStatus int

const (
	// ClaimNew: the id was not seen before and is now recorded.
	ClaimNew ClaimStatus = iota
	// ClaimDuplicate: the same signed command was seen before (a queue
	// redelivery, or a replay of identical bytes).
	ClaimDuplicate
	// ClaimConflict: a different command with the same id was seen before.
	ClaimConflict
)

// ReplayCache remembers command ids until they can no longer verify (their
// expiry plus the clock skew). The connector's journal implements it
// durably; MemoryReplayCache is the in-process implementation.
type ReplayCache interface {
	// Claim records id, with the SHA-256 digest of its signed payload, until
	// at least until, and reports what was known before. An error means the
	// cache could not answer (the command must not be executed).
	Claim(ctx context.Context, id string, digest [32]byte, until time.Time) (ClaimStatus, error)
}

// MemoryReplayCache is a ReplayCache in memory, safe for concurrent use.
// Entries are dropped once their time has passed. It is bounded: when full
// of live entries it refuses new ones (fail closed) rather than forget.
type MemoryReplayCache struct {
	now func() time.Time
	max int

	mu        sync.Mutex
	entries   map[string]replayEntry
	nextSweep time.Time
	lastSweep time.Time
}

type replayEntry struct {
	digest [32]byte
	until  time.Time
}

// DefaultReplayCacheSize bounds a MemoryReplayCache made with max <= 0.
const DefaultReplayCacheSize = 1 << 20

// NewMemoryReplayCache returns an empty cache holding at most max live ids
// (DefaultReplayCacheSize if max <= 0). now is the clock (time.Now if nil).
func NewMemoryReplayCache(now func() time.Time, max int) *MemoryReplayCache {
	if now == nil {
		now = time.Now
	}
	if max <= 0 {
		max = DefaultReplayCacheSize
	}
	return &MemoryReplayCache{now: now, max: max, entries: make(map[string]replayEntry)}
}

var _ ReplayCache = (*MemoryReplayCache)(nil)

// Claim implements ReplayCache.
func (m *MemoryReplayCache) Claim(ctx context.Context, id string, digest [32]byte, until time.Time) (ClaimStatus, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.entries[id]; ok && now.Before(e.until) {
		if e.digest == digest {
			return ClaimDuplicate, nil
		}
		return ClaimConflict, nil
	}
	// Sweep once a minute, or when full (at most once a second, so a cache
	// full of live ids does not scan itself on every claim).
	if !now.Before(m.nextSweep) || len(m.entries) >= m.max && now.Sub(m.lastSweep) >= time.Second {
		m.sweep(now)
	}
	if len(m.entries) >= m.max {
		return 0, fmt.Errorf("memory replay cache full (%d live ids)", m.max)
	}
	m.entries[id] = replayEntry{digest: digest, until: until}
	return ClaimNew, nil
}

// Len is the number of ids held (live or not yet swept).
func (m *MemoryReplayCache) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.entries)
}

func (m *MemoryReplayCache) sweep(now time.Time) {
	for id, e := range m.entries {
		if !now.Before(e.until) {
			delete(m.entries, id)
		}
	}
	m.lastSweep = now
	m.nextSweep = now.Add(time.Minute)
}
