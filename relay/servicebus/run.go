package servicebus

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/cenkalti/backoff/v5"
)

// Run receives and dispatches until ctx ends, then stops receiving, lets in-flight handlers
// finish (up to ShutdownGrace, after which their context is cancelled), settles them, closes
// the receiver and returns nil. It returns an error only for misuse (Run called twice at once).
//
// Each turn of the loop is one named step (see turn): open a receiver if there is none, take
// free handler slots, receive, then act on what came back: a stall, an idle or failed
// receive, or messages to dispatch. Failures back off (ReconnectBackoff, reset by a
// successful receive) before the next turn.
func (s *Source) Run(ctx context.Context) error {
	if !s.running.TryLock() {
		return errors.New("servicebus: Source.Run is already running")
	}
	defer s.running.Unlock()

	workCtx, cancelWork := context.WithCancel(context.Background())
	defer cancelWork()
	l := &runLoop{s: s, ctx: ctx, workCtx: workCtx, slots: make(chan struct{}, s.cfg.Concurrency),
		backoff: *s.cfg.ReconnectBackoff, lastMessage: s.cfg.Clock.Now()}
	l.backoff.Reset()
	for ctx.Err() == nil {
		if !l.turn() {
			break
		}
	}
	l.shutdown(cancelWork)
	return nil
}

// runLoop is the state of one Run: the current receiver, the handler slots, and the
// consecutive failures with their backoff.
type runLoop struct {
	s            *Source
	ctx, workCtx context.Context
	wg           sync.WaitGroup
	slots        chan struct{}
	rcv          receiver
	failures     int
	backoff      backoff.ExponentialBackOff
	lastMessage  time.Time
}

type receiveResult struct {
	msgs []*azservicebus.ReceivedMessage
	err  error
}

// turn runs one turn of the loop; false means stop.
func (l *runLoop) turn() bool {
	if l.rcv == nil && !l.openReceiver() {
		return l.pause()
	}
	n, ok := l.takeSlots()
	if !ok {
		return false
	}
	res, stalled := l.receive(n)
	if stalled {
		return l.stalled(n)
	}
	l.releaseSlots(n - len(res.msgs))
	now := l.s.cfg.Clock.Now()
	if len(res.msgs) == 0 {
		return l.empty(res.err, now)
	}
	l.dispatch(res.msgs, now)
	return true
}

// openReceiver opens a receiver; on failure it records it and returns false.
func (l *runLoop) openReceiver() bool {
	r, err := l.s.open()
	if err != nil {
		l.fail(Classify(err))
		return false
	}
	l.rcv = r
	return true
}

// takeSlots waits for a free handler slot, then takes as many as are free, up to Prefetch.
// It returns false when ctx ended first.
func (l *runLoop) takeSlots() (int, bool) {
	select {
	case <-l.ctx.Done():
		return 0, false
	case l.slots <- struct{}{}:
	}
	n := 1
	for n < l.s.cfg.Prefetch {
		select {
		case l.slots <- struct{}{}:
			n++
		default:
			return n, true
		}
	}
	return n, true
}

func (l *runLoop) releaseSlots(n int) {
	for range n {
		<-l.slots
	}
}

// receive asks the receiver for up to n messages within ReceiveTimeout, probing the link
// meanwhile if it is not known to be up. stalled is true when the call ignored its deadline
// by WatchdogGrace; whatever it still returns is then abandoned for redelivery.
func (l *runLoop) receive(n int) (res receiveResult, stalled bool) {
	rctx, cancel := context.WithTimeout(l.ctx, l.s.cfg.ReceiveTimeout)
	defer cancel()
	resCh := make(chan receiveResult, 1)
	r := l.rcv
	go func() {
		msgs, err := r.ReceiveMessages(rctx, n, nil)
		resCh <- receiveResult{msgs, err}
	}()
	if epoch, down := l.s.health.probeStart(); down {
		// An idle receive only returns at its deadline (ReceiveTimeout), so it cannot tell
		// that the link is back. A peek needs the same connection and links the receive
		// uses (the SDK attaches them together): once it succeeds the link is up.
		go l.s.probe(rctx, r, epoch)
	}
	watchdog := l.s.cfg.Clock.NewTimer(l.s.cfg.ReceiveTimeout + l.s.cfg.WatchdogGrace)
	defer watchdog.Stop()
	select {
	case res = <-resCh:
		return res, false
	case <-watchdog.Chan():
		// the call ignored its deadline: anything it still returns is released for
		// redelivery
		go func() {
			late := <-resCh
			l.s.releaseLate(r, late.msgs)
		}()
		return receiveResult{}, true
	}
}

// stalled gives up on a receiver whose call ignored its deadline: its n slots are freed, the
// receiver is replaced, and the failure backs off.
func (l *runLoop) stalled(n int) bool {
	l.releaseSlots(n)
	l.dropReceiver()
	l.fail(ErrStalled)
	return l.pause()
}

// empty handles a receive that returned no message: idle (the deadline passed; the link is
// up, and the receiver is refreshed after IdleRefresh without a message), interrupted (no
// error: the SDK recovers on the next call) or failed (the receiver is replaced).
func (l *runLoop) empty(err error, now time.Time) bool {
	if l.ctx.Err() != nil {
		return false
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		l.s.health.update(func(h *Health) {
			h.State, h.LastReceive, h.ConsecutiveFailures = LinkUp, now, 0
		})
		l.succeeded()
		if now.Sub(l.lastMessage) >= l.s.cfg.IdleRefresh {
			l.dropReceiver()
			l.lastMessage = now
		}
		return true
	case err == nil:
		// The SDK returns nothing and no error when the link or connection failed during
		// the call (it recovers on the next call): not a healthy receive.
		l.fail(ErrLinkInterrupted)
	default:
		l.dropReceiver()
		l.fail(Classify(err))
	}
	return l.pause()
}

// dispatch records a successful receive and hands each message to a handler goroutine,
// which frees its slot when done.
func (l *runLoop) dispatch(msgs []*azservicebus.ReceivedMessage, now time.Time) {
	l.succeeded()
	l.lastMessage = now
	l.s.health.update(func(h *Health) {
		h.State, h.LastReceive, h.ConsecutiveFailures = LinkUp, now, 0
		h.LastMessage = now
		h.Received += int64(len(msgs))
		h.InFlight += len(msgs)
	})
	r := l.rcv
	for _, m := range msgs {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			defer func() { <-l.slots }()
			l.s.process(l.workCtx, r, m)
		}()
	}
}

// dropReceiver closes the current receiver in the background and counts a reconnect.
func (l *runLoop) dropReceiver() {
	l.s.closeReceiver(l.rcv)
	l.rcv = nil
	l.s.health.update(func(h *Health) { h.Reconnects++ })
}

// fail records one more consecutive failure: the link is down.
func (l *runLoop) fail(err error) {
	err = l.s.cfg.Dials.Explain(err)
	l.failures++
	now := l.s.cfg.Clock.Now()
	l.s.health.linkFailed(func(h *Health) {
		h.State, h.LastError, h.LastErrorAt = LinkDown, err, now
		h.ConsecutiveFailures = l.failures
	})
	l.s.cfg.Logger.Warn("service bus receive failed; backing off", "queue", l.s.cfg.Queue, "failures", l.failures, "error", err)
}

// succeeded ends a run of failures: the next one backs off from the start.
func (l *runLoop) succeeded() {
	l.failures = 0
	l.backoff.Reset()
}

// pause waits the next backoff step; false means ctx ended first.
func (l *runLoop) pause() bool {
	t := l.s.cfg.Clock.NewTimer(l.backoff.NextBackOff())
	defer t.Stop()
	select {
	case <-l.ctx.Done():
		return false
	case <-t.Chan():
		return true
	}
}

// shutdown stops receiving: in-flight handlers get ShutdownGrace to finish, then their
// context is cancelled; the receiver is closed and the link reported stopped.
func (l *runLoop) shutdown(cancelWork context.CancelFunc) {
	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }()
	grace := l.s.cfg.Clock.NewTimer(l.s.cfg.ShutdownGrace)
	select {
	case <-done:
	case <-grace.Chan():
		cancelWork()
		<-done
	}
	grace.Stop()
	if l.rcv != nil {
		cctx, cancel := context.WithTimeout(context.Background(), l.s.cfg.SettleTimeout)
		_ = l.rcv.Close(cctx)
		cancel()
	}
	l.s.health.update(func(h *Health) { h.State = LinkStopped })
}

// closeReceiver closes r in the background (a dead link can take SettleTimeout to close).
func (s *Source) closeReceiver(r receiver) {
	if r == nil {
		return
	}
	go func() {
		cctx, cancel := context.WithTimeout(context.Background(), s.cfg.SettleTimeout)
		defer cancel()
		_ = r.Close(cctx)
	}()
}
