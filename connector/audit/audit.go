// Package audit writes the connector's audit trail: one JSON object per line
// for every command handled, separate from the operational log. A record
// holds who asked for what on which account, the outcome and the rules that
// failed, the DC and the latency; it has no field that could hold a secret.
package audit

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Record is one audit line. Every field is a plain value chosen by the
// connector; none is ever a password or derived from one.
type Record struct {
	Time time.Time `json:"time"`
	// Event is empty for a command's record; EventUnverified for a
	// message refused before its signature was checked (then CommandID
	// is empty and MessageID is what its sender chose).
	Event       string `json:"event,omitempty"`
	CommandID   string `json:"command_id"`
	MessageID   string `json:"message_id,omitempty"`
	Op          string `json:"op,omitempty"`
	Domain      string `json:"domain,omitempty"`
	UserRefKind string `json:"user_ref_kind,omitempty"`
	// UserRef and UserRefDomain are the reference as sent (its value, of
	// UserRefKind, and the domain it named), only when no account or more
	// than one matched it (user_not_found, ambiguous_user): an identifier,
	// so the admin can say who was not found without the sender's logs.
	UserRef       string   `json:"user_ref,omitempty"`
	UserRefDomain string   `json:"user_ref_domain,omitempty"`
	UserDN        string   `json:"user_dn,omitempty"`
	ActorKind     string   `json:"actor_kind,omitempty"`
	ActorID       string   `json:"actor_id,omitempty"`
	Outcome       string   `json:"outcome"`
	Rules         []string `json:"rules,omitempty"`
	DCReason      string   `json:"dc_reason,omitempty"`
	DC            string   `json:"dc,omitempty"`
	Detail        string   `json:"detail,omitempty"`
	Applied       bool     `json:"applied"`
	FromJournal   bool     `json:"from_journal,omitempty"`
	DeliveryCount uint32   `json:"delivery_count,omitempty"`
	LatencyMS     float64  `json:"latency_ms"`
	Settlement    string   `json:"settlement,omitempty"`
	// Suppressed counts the records of the same event left out (sampled)
	// since the previous one written.
	Suppressed int `json:"suppressed,omitempty"`
}

// EventUnverified marks the record of a message refused before its
// signature was checked.
const EventUnverified = "unverified_message"

// Log appends records to a writer, one line each, flushed per record.
type Log struct {
	mu   sync.Mutex
	w    *bufio.Writer
	c    io.Closer
	sync func() error
	subs []func(Record)
	// path is the file OpenFile opened ("" for New): Reopen opens it again.
	path string
}

// New writes to w (closed by Close when it is an io.Closer).
func New(w io.Writer) *Log {
	l := &Log{w: bufio.NewWriter(w)}
	if c, ok := w.(io.Closer); ok && w != os.Stdout && w != os.Stderr {
		l.c = c
	}
	if f, ok := w.(*os.File); ok {
		l.sync = f.Sync
	}
	return l
}

// OpenFile appends to the file at path (created 0600).
func OpenFile(path string) (*Log, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	l := New(f)
	l.path = path
	return l, nil
}

// Reopen flushes and closes the file and opens path again (created 0600 if
// it was moved away): after logrotate's move with `create`, records go to
// the new file. It holds the lock throughout, so a record is written whole
// to the old file or whole to the new one, never split or lost. If the open
// fails, records keep going to the old file and the error is returned. A
// Log made by New (standard output, a test's writer) has nothing to reopen.
func (l *Log) Reopen() error {
	if l.path == "" {
		return nil
	}
	f, err := os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("audit log: reopen: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	ferr := l.w.Flush()
	if l.sync != nil {
		if serr := l.sync(); ferr == nil {
			ferr = serr
		}
	}
	if ferr != nil {
		// The old file would lose what is buffered: keep writing to it.
		f.Close()
		return fmt.Errorf("audit log: reopen: flush: %w", ferr)
	}
	old := l.c
	l.w, l.c, l.sync = bufio.NewWriter(f), f, f.Sync
	if old != nil {
		if err := old.Close(); err != nil {
			return fmt.Errorf("audit log: reopen: close the old file: %w", err)
		}
	}
	return nil
}

// Subscribe calls fn with every record written (the status page keeps the
// last ones). fn must not block.
func (l *Log) Subscribe(fn func(Record)) {
	l.mu.Lock()
	l.subs = append(l.subs, fn)
	l.mu.Unlock()
}

// Write appends one record.
func (l *Log) Write(r Record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	if err := l.w.Flush(); err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	for _, fn := range l.subs {
		fn(r)
	}
	return nil
}

// Close flushes, syncs and closes the underlying file.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	err := l.w.Flush()
	if l.sync != nil {
		if serr := l.sync(); err == nil {
			err = serr
		}
	}
	if l.c != nil {
		if cerr := l.c.Close(); err == nil {
			err = cerr
		}
	}
	return err
}
