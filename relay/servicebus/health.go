package servicebus

import (
	"sync"
	"time"
)

// LinkState is the receive link's state as the Source last saw it.
type LinkState string

// Link states.
const (
	LinkConnecting LinkState = "connecting"
	LinkUp         LinkState = "up"
	LinkDown       LinkState = "down"    // failing; the source is backing off
	LinkStopped    LinkState = "stopped" // Run returned
)

// Health is a snapshot of a Source's signals for the readiness endpoint.
type Health struct {
	Queue string
	State LinkState
	// LastReceive is when a receive call last succeeded (with or without messages).
	LastReceive time.Time
	// LastMessage is when a message was last received.
	LastMessage time.Time
	// LastError is the last failure (receive, settle, renew), with LastErrorAt; nil if none.
	LastError   error
	LastErrorAt time.Time
	// ConsecutiveFailures counts receive failures since the last success.
	ConsecutiveFailures int
	// Reconnects counts receivers recreated after a failure or a watchdog stall.
	Reconnects int
	InFlight   int
	// Totals since start.
	Received, Completed, Abandoned, DeadLettered, LockLost, SettleErrors int64
	// LockRenewals counts successful lock renewals.
	LockRenewals int64
}

// healthTracker is written by the Source and read concurrently.
type healthTracker struct {
	mu sync.Mutex
	h  Health
	// epoch counts link failures; a probe started before a failure must not report the
	// link up after it.
	epoch uint64
}

// linkFailed records a link failure (state down) and starts a new epoch.
func (t *healthTracker) linkFailed(f func(h *Health)) {
	t.mu.Lock()
	t.epoch++
	f(&t.h)
	t.h.LastError = freeze(t.h.LastError)
	t.mu.Unlock()
}

// probeStart returns the current epoch, and whether the link is not known to be up (so a probe
// is worth running).
func (t *healthTracker) probeStart() (uint64, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.epoch, t.h.State == LinkConnecting || t.h.State == LinkDown
}

// probeOK marks the link up if no failure happened since the probe started.
func (t *healthTracker) probeOK(epoch uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.epoch == epoch && (t.h.State == LinkConnecting || t.h.State == LinkDown) {
		t.h.State, t.h.ConsecutiveFailures = LinkUp, 0
	}
}

func (t *healthTracker) update(f func(h *Health)) {
	t.mu.Lock()
	f(&t.h)
	t.h.LastError = freeze(t.h.LastError)
	t.mu.Unlock()
}

// textError is an error whose text was read once, when it was recorded. Health is read
// from other goroutines (/readyz, the status page, metrics), and some errors build their
// text lazily without a lock: azidentity's AuthenticationFailedError reads and caches the
// token endpoint's response body in Error, a data race when two goroutines ask at once.
// Unwrap keeps errors.Is and errors.As working.
type textError struct {
	msg string
	err error
}

func (e *textError) Error() string { return e.msg }
func (e *textError) Unwrap() error { return e.err }

// freeze returns err with its text fixed now (nil stays nil).
func freeze(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := err.(*textError); ok {
		return err
	}
	return &textError{msg: err.Error(), err: err}
}

func (t *healthTracker) snapshot() Health {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.h
}

func (t *healthTracker) fail(now time.Time, err error) {
	t.update(func(h *Health) { h.LastError, h.LastErrorAt = err, now })
}
