package journal

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"
)

// committer is a group commit: writers queue their changes and one
// goroutine applies everything queued in a single fsync'd transaction,
// then starts the next one with whatever arrived meanwhile. Unlike bbolt's
// Batch there is no timer: an idle journal commits a lone write at once,
// a busy one amortises each fsync over every writer that waited for it.
type committer struct {
	db *bolt.DB
	// before runs first in every transaction (the journal flushes its
	// buffered rate-limit attempts there); after reports whether the
	// transaction committed.
	before func(tx *bolt.Tx) (after func(committed bool), err error)

	commits, writes atomic.Int64
	// failures counts transactions the storage did not take.
	failures atomic.Int64

	mu      sync.Mutex
	queue   []*op
	closed  bool
	wake    chan struct{}
	stopped chan struct{}
}

type op struct {
	fn func(*bolt.Tx) error
	// then, if set, runs in the committer once the outcome is known,
	// before done is signalled.
	then func(error)
	done chan error // buffered: the committer never blocks on a gone caller
}

// wait blocks until the op's transaction committed (nil) or failed, or ctx
// ends (the write may then still happen).
func (o *op) wait(ctx context.Context) error {
	select {
	case err := <-o.done:
		o.done <- err // later waits see it too
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

var errClosed = errors.New("journal: closed")

// ErrStorage marks a write the journal's file did not take (disk full, a
// file that cannot grow, I/O errors): waiting can help. Other write errors
// concern one entry (ErrNotFound, a finished command) and do not.
var ErrStorage = errors.New("journal: storage failed")

func newCommitter(db *bolt.DB, before func(*bolt.Tx) (func(bool), error)) *committer {
	c := &committer{db: db, before: before, wake: make(chan struct{}, 1), stopped: make(chan struct{})}
	go c.loop()
	return c
}

// do runs fn in a durable transaction shared with other writers. fn must
// return its error before changing anything (a failing fn makes its
// transaction roll back and every fn of it run again alone). When ctx ends
// first, do returns its error and the write may or may not happen.
func (c *committer) do(ctx context.Context, fn func(*bolt.Tx) error) error {
	return c.submit(ctx, fn, nil).wait(ctx)
}

// submit queues fn (and then, run with its outcome) and returns at once.
func (c *committer) submit(ctx context.Context, fn func(*bolt.Tx) error, then func(error)) *op {
	o := &op{fn: fn, then: then, done: make(chan error, 1)}
	fail := func(err error) *op {
		if then != nil {
			then(err)
		}
		o.done <- err
		return o
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return fail(errClosed)
	}
	c.queue = append(c.queue, o)
	select {
	case c.wake <- struct{}{}:
	default: // a wake-up is already pending
	}
	c.mu.Unlock()
	return o
}

func (c *committer) loop() {
	defer close(c.stopped)
	for {
		_, open := <-c.wake
		for {
			c.mu.Lock()
			batch := c.queue
			c.queue = nil
			c.mu.Unlock()
			if len(batch) == 0 {
				break
			}
			c.commit(batch)
		}
		if !open {
			return
		}
	}
}

func (c *committer) commit(batch []*op) {
	err := c.run(batch)
	if err == nil || len(batch) == 1 {
		for _, o := range batch {
			o.finish(err)
		}
		return
	}
	// One of them failed (or the commit did): each alone, so one bad
	// write does not fail the others.
	for _, o := range batch {
		o.finish(c.run([]*op{o}))
	}
}

func (o *op) finish(err error) {
	if o.then != nil {
		o.then(err)
	}
	o.done <- err
}

// run applies batch in one transaction. An error of an op's own (its
// entry's state) is returned as is; any other failure, of the transaction
// or its commit, is the storage's and wraps ErrStorage.
func (c *committer) run(batch []*op) error {
	var after func(bool)
	var opErr error
	err := c.db.Update(func(tx *bolt.Tx) error {
		var err error
		if after, err = c.before(tx); err != nil {
			return err
		}
		for _, o := range batch {
			if opErr = o.fn(tx); opErr != nil {
				return opErr
			}
		}
		return nil
	})
	if err != nil && opErr == nil {
		c.failures.Add(1)
		err = fmt.Errorf("%w: %w", ErrStorage, err)
	}
	if after != nil {
		after(err == nil)
	}
	if err == nil {
		c.commits.Add(1)
		c.writes.Add(int64(len(batch)))
	}
	return err
}

// close commits what is queued, refuses new writes and stops the loop.
func (c *committer) close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	close(c.wake) // under mu: no writer sends on it after this
	c.mu.Unlock()
	<-c.stopped
}
