package health

import (
	"sync"

	"github.com/adwriteback/adwriteback/connector/audit"
)

// Recent keeps the last N audit records for the status page. Feed it with
// audit.Log.Subscribe(recent.Add). It is safe for concurrent use and Add
// never blocks for long.
type Recent struct {
	mu    sync.Mutex
	buf   []audit.Record
	next  int
	count int
}

// DefaultRecent is the number of records NewRecent keeps for n <= 0.
const DefaultRecent = 50

// NewRecent keeps the last n records (DefaultRecent if n <= 0).
func NewRecent(n int) *Recent {
	if n <= 0 {
		n = DefaultRecent
	}
	return &Recent{buf: make([]audit.Record, n)}
}

// Add stores r, dropping the oldest record when full.
func (r *Recent) Add(rec audit.Record) {
	rec.Rules = append([]string(nil), rec.Rules...) // own the slice
	r.mu.Lock()
	r.buf[r.next] = rec
	r.next = (r.next + 1) % len(r.buf)
	if r.count < len(r.buf) {
		r.count++
	}
	r.mu.Unlock()
}

// Last returns the stored records, newest first.
func (r *Recent) Last() []audit.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]audit.Record, r.count)
	for i := range r.count {
		out[i] = r.buf[(r.next-1-i+2*len(r.buf))%len(r.buf)]
	}
	return out
}
