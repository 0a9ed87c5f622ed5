package servicebus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/Azure/go-amqp"

	"github.com/adwriteback/adwriteback/relay/transport"
)

// Errors the Source reports (through Health.LastError and the logger), for errors.Is.
var (
	// ErrLockLost: the message's lock expired or was lost before it was settled; the message
	// will be redelivered (possibly to another instance).
	ErrLockLost = transport.ErrLockLost
	// ErrUnauthorized: Service Bus refused the credentials.
	ErrUnauthorized = errors.New("servicebus: unauthorized (check the key or the role assignment: Azure Service Bus Data Receiver/Sender)")
	// ErrNotFound: the queue does not exist.
	ErrNotFound = errors.New("servicebus: queue not found")
	// ErrStalled: a receive call did not return within its deadline plus grace.
	ErrStalled = errors.New("servicebus: receive stalled; receiver recreated")
	// ErrLinkInterrupted: the receive link or its connection failed during a receive; the SDK
	// re-attaches on the next one.
	ErrLinkInterrupted = errors.New("servicebus: receive link interrupted; re-attaching")
)

// Classify maps an SDK error onto this package's sentinels (wrapping the original).
func Classify(err error) error {
	if err == nil {
		return nil
	}
	var sbErr *azservicebus.Error
	if errors.As(err, &sbErr) {
		switch sbErr.Code {
		case azservicebus.CodeLockLost:
			return fmt.Errorf("%w: %w", ErrLockLost, err)
		case azservicebus.CodeUnauthorizedAccess:
			return fmt.Errorf("%w: %w", ErrUnauthorized, err)
		case azservicebus.CodeNotFound:
			return fmt.Errorf("%w: %w", ErrNotFound, err)
		}
	}
	// Opening a link to a missing entity fails below the SDK's own codes.
	var amqpErr *amqp.Error
	if errors.As(err, &amqpErr) {
		switch amqpErr.Condition {
		case amqp.ErrCondNotFound:
			return fmt.Errorf("%w: %w", ErrNotFound, err)
		case amqp.ErrCondUnauthorizedAccess:
			return fmt.Errorf("%w: %w", ErrUnauthorized, err)
		}
	}
	return err
}

// receiver is the subset of *azservicebus.Receiver the Source uses.
type receiver interface {
	ReceiveMessages(ctx context.Context, maxMessages int, options *azservicebus.ReceiveMessagesOptions) ([]*azservicebus.ReceivedMessage, error)
	CompleteMessage(ctx context.Context, m *azservicebus.ReceivedMessage, o *azservicebus.CompleteMessageOptions) error
	AbandonMessage(ctx context.Context, m *azservicebus.ReceivedMessage, o *azservicebus.AbandonMessageOptions) error
	DeadLetterMessage(ctx context.Context, m *azservicebus.ReceivedMessage, o *azservicebus.DeadLetterOptions) error
	RenewMessageLock(ctx context.Context, m *azservicebus.ReceivedMessage, o *azservicebus.RenewMessageLockOptions) error
	PeekMessages(ctx context.Context, maxMessageCount int, options *azservicebus.PeekMessagesOptions) ([]*azservicebus.ReceivedMessage, error)
	Close(ctx context.Context) error
}

var _ receiver = (*azservicebus.Receiver)(nil)

// SourceConfig configures a Source.
type SourceConfig struct {
	Queue string
	// Prefetch bounds the messages asked for in one receive call (default 8).
	Prefetch int
	// Concurrency bounds the deliveries handled at once (default 4).
	Concurrency int
	// LockDuration is assumed when a message carries no lock expiry (default 60 s).
	LockDuration time.Duration
	// ReceiveTimeout bounds one receive call (default 30 s); WatchdogGrace is added before a
	// call that ignores its deadline is declared stalled (default 15 s).
	ReceiveTimeout, WatchdogGrace time.Duration
	// IdleRefresh recreates the receiver after this long without a message (default 5 min;
	// the service detaches idle links after 10 min and receivers have been seen to stall).
	IdleRefresh time.Duration
	// SettleTimeout bounds each settle and renew call (default 20 s).
	SettleTimeout time.Duration
	// ShutdownGrace is how long in-flight handlers may run after Run's context ends before
	// their context is cancelled (default 20 s).
	ShutdownGrace time.Duration
	// ReconnectBackoff paces receiver re-creation after failures (default 250 ms .. 30 s).
	ReconnectBackoff Backoff
	// AbandonBackoff is how long a message is held (lock renewed) before being abandoned,
	// by delivery count (default 1 s .. 30 s), so a failing command is not retried hot.
	AbandonBackoff Backoff
	Clock          Clock
	Logger         *slog.Logger
}

func (c *SourceConfig) defaults() error {
	if c.Queue == "" {
		return fmt.Errorf("%w: source needs a queue name", ErrConfig)
	}
	if c.Prefetch < 0 || c.Concurrency < 0 {
		return fmt.Errorf("%w: negative prefetch or concurrency", ErrConfig)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.Prefetch == 0 {
		c.Prefetch = 8
	}
	if c.Concurrency == 0 {
		c.Concurrency = 4
	}
	def(&c.LockDuration, 60*time.Second)
	def(&c.ReceiveTimeout, 30*time.Second)
	def(&c.WatchdogGrace, 15*time.Second)
	def(&c.IdleRefresh, 5*time.Minute)
	def(&c.SettleTimeout, 20*time.Second)
	def(&c.ShutdownGrace, 20*time.Second)
	if c.ReconnectBackoff.Max == 0 {
		c.ReconnectBackoff = Backoff{Min: 250 * time.Millisecond, Max: 30 * time.Second, Factor: 2, Rand: c.ReconnectBackoff.Rand}
	}
	if c.AbandonBackoff.Max == 0 {
		c.AbandonBackoff = Backoff{Min: time.Second, Max: 30 * time.Second, Factor: 2, Rand: c.AbandonBackoff.Rand}
	}
	if c.Clock == nil {
		c.Clock = realClock{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Source receives commands from a queue and hands them to a transport.Handler.
type Source struct {
	cfg     SourceConfig
	handler transport.Handler
	open    func() (receiver, error)
	health  healthTracker
	running sync.Mutex
}

// NewSource builds a Source on client for cfg.Queue.
func NewSource(client *azservicebus.Client, cfg SourceConfig, h transport.Handler) (*Source, error) {
	if client == nil || h == nil {
		return nil, fmt.Errorf("%w: source needs a client and a handler", ErrConfig)
	}
	return newSource(func() (receiver, error) {
		return client.NewReceiverForQueue(cfg.Queue, &azservicebus.ReceiverOptions{ReceiveMode: azservicebus.ReceiveModePeekLock})
	}, cfg, h)
}

func newSource(open func() (receiver, error), cfg SourceConfig, h transport.Handler) (*Source, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	s := &Source{cfg: cfg, handler: h, open: open}
	s.health.h = Health{Queue: cfg.Queue, State: LinkConnecting}
	return s, nil
}

// Health returns a snapshot of the source's signals; safe to call concurrently.
func (s *Source) Health() Health { return s.health.snapshot() }

type receiveResult struct {
	msgs []*azservicebus.ReceivedMessage
	err  error
}

// Run receives and dispatches until ctx ends, then stops receiving, lets in-flight handlers
// finish (up to ShutdownGrace, after which their context is cancelled), settles them, closes
// the receiver and returns nil. It returns an error only for misuse (Run called twice at once).
func (s *Source) Run(ctx context.Context) error {
	if !s.running.TryLock() {
		return errors.New("servicebus: Source.Run is already running")
	}
	defer s.running.Unlock()

	workCtx, cancelWork := context.WithCancel(context.Background())
	defer cancelWork()
	var wg sync.WaitGroup
	slots := make(chan struct{}, s.cfg.Concurrency)

	var rcv receiver
	failures := 0
	lastMessage := s.cfg.Clock.Now()
	closeRcv := func(r receiver) {
		if r == nil {
			return
		}
		go func() {
			cctx, cancel := context.WithTimeout(context.Background(), s.cfg.SettleTimeout)
			defer cancel()
			_ = r.Close(cctx)
		}()
	}
	backoff := func() bool {
		d := s.cfg.ReconnectBackoff.Delay(failures - 1)
		ch, stop := s.cfg.Clock.After(d)
		defer stop()
		select {
		case <-ctx.Done():
			return false
		case <-ch:
			return true
		}
	}
	fail := func(err error) {
		failures++
		now := s.cfg.Clock.Now()
		s.health.linkFailed(func(h *Health) {
			h.State, h.LastError, h.LastErrorAt = LinkDown, err, now
			h.ConsecutiveFailures = failures
		})
		s.cfg.Logger.Warn("service bus receive failed; backing off", "queue", s.cfg.Queue, "failures", failures, "error", err)
	}

loop:
	for ctx.Err() == nil {
		if rcv == nil {
			r, err := s.open()
			if err != nil {
				fail(Classify(err))
				if !backoff() {
					break
				}
				continue
			}
			rcv = r
		}
		// wait for a free slot, then take as many as are free, up to Prefetch
		select {
		case <-ctx.Done():
			break loop
		case slots <- struct{}{}:
		}
		n := 1
	take:
		for n < s.cfg.Prefetch {
			select {
			case slots <- struct{}{}:
				n++
			default:
				break take
			}
		}
		rctx, cancel := context.WithTimeout(ctx, s.cfg.ReceiveTimeout)
		resCh := make(chan receiveResult, 1)
		r := rcv
		go func() {
			msgs, err := r.ReceiveMessages(rctx, n, nil)
			resCh <- receiveResult{msgs, err}
		}()
		if epoch, down := s.health.probeStart(); down {
			// An idle receive only returns at its deadline (ReceiveTimeout), so it cannot tell
			// that the link is back. A peek needs the same connection and links the receive
			// uses (the SDK attaches them together): once it succeeds the link is up.
			go s.probe(rctx, r, epoch)
		}
		watchdog, stopWatchdog := s.cfg.Clock.After(s.cfg.ReceiveTimeout + s.cfg.WatchdogGrace)
		var res receiveResult
		select {
		case res = <-resCh:
			stopWatchdog()
			cancel()
		case <-watchdog:
			cancel()
			for range n {
				<-slots
			}
			// the call ignored its deadline: abandon that receiver; anything it still returns is
			// released for redelivery
			go func() {
				late := <-resCh
				s.releaseLate(r, late.msgs)
			}()
			closeRcv(r)
			rcv = nil
			s.health.update(func(h *Health) { h.Reconnects++ })
			fail(ErrStalled)
			if !backoff() {
				break loop
			}
			continue
		}
		for range n - len(res.msgs) {
			<-slots
		}
		now := s.cfg.Clock.Now()
		if len(res.msgs) == 0 {
			if ctx.Err() != nil {
				break
			}
			switch {
			case errors.Is(res.err, context.DeadlineExceeded):
				// idle: nothing to receive within ReceiveTimeout
				s.health.update(func(h *Health) {
					h.State, h.LastReceive, h.ConsecutiveFailures = LinkUp, now, 0
				})
				failures = 0
				if now.Sub(lastMessage) >= s.cfg.IdleRefresh {
					closeRcv(rcv)
					rcv = nil
					lastMessage = now
					s.health.update(func(h *Health) { h.Reconnects++ })
				}
				continue
			case res.err == nil:
				// The SDK returns nothing and no error when the link or connection failed
				// during the call (it recovers on the next call): not a healthy receive.
				fail(ErrLinkInterrupted)
			default:
				closeRcv(rcv)
				rcv = nil
				s.health.update(func(h *Health) { h.Reconnects++ })
				fail(Classify(res.err))
			}
			if !backoff() {
				break
			}
			continue
		}
		failures = 0
		if len(res.msgs) > 0 {
			lastMessage = now
		}
		s.health.update(func(h *Health) {
			h.State, h.LastReceive, h.ConsecutiveFailures = LinkUp, now, 0
			if len(res.msgs) > 0 {
				h.LastMessage = now
				h.Received += int64(len(res.msgs))
				h.InFlight += len(res.msgs)
			}
		})
		for _, m := range res.msgs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-slots }()
				s.process(workCtx, r, m)
			}()
		}
	}

	// shutdown: no more receives; give in-flight handlers their grace, then cancel them
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	grace, stopGrace := s.cfg.Clock.After(s.cfg.ShutdownGrace)
	select {
	case <-done:
	case <-grace:
		cancelWork()
		<-done
	}
	stopGrace()
	if rcv != nil {
		cctx, cancel := context.WithTimeout(context.Background(), s.cfg.SettleTimeout)
		_ = rcv.Close(cctx)
		cancel()
	}
	s.health.update(func(h *Health) { h.State = LinkStopped })
	return nil
}

// probe marks the link up when a peek on r succeeds, unless a failure was recorded since epoch.
func (s *Source) probe(ctx context.Context, r receiver, epoch uint64) {
	if _, err := r.PeekMessages(ctx, 1, nil); err == nil {
		s.health.probeOK(epoch)
	}
}

func (s *Source) releaseLate(r receiver, msgs []*azservicebus.ReceivedMessage) {
	for _, m := range msgs {
		cctx, cancel := context.WithTimeout(context.Background(), s.cfg.SettleTimeout)
		_ = r.AbandonMessage(cctx, m, nil)
		cancel()
	}
}

func toDelivery(m *azservicebus.ReceivedMessage) *transport.Delivery {
	d := &transport.Delivery{MessageID: m.MessageID, Body: m.Body, DeliveryCount: m.DeliveryCount}
	if m.ContentType != nil {
		d.ContentType = *m.ContentType
	}
	if m.ReplyTo != nil {
		d.ReplyTo = *m.ReplyTo
	}
	if m.ReplyToSessionID != nil {
		d.ReplyToSessionID = *m.ReplyToSessionID
	}
	if m.SessionID != nil {
		d.SessionID = *m.SessionID
	}
	if m.EnqueuedTime != nil {
		d.EnqueuedTime = *m.EnqueuedTime
	}
	if m.LockedUntil != nil {
		d.LockedUntil = *m.LockedUntil
	}
	return d
}

// process handles one message: renew its lock in the background, call the handler, settle.
func (s *Source) process(workCtx context.Context, r receiver, m *azservicebus.ReceivedMessage) {
	defer s.health.update(func(h *Health) { h.InFlight-- })
	d := toDelivery(m)
	hctx, cancelHandler := context.WithCancel(workCtx)
	defer cancelHandler()

	renewCtx, stopRenew := context.WithCancel(context.Background())
	lost := make(chan struct{})
	renewDone := make(chan struct{})
	go func() {
		defer close(renewDone)
		if s.renewLoop(renewCtx, r, m) {
			close(lost)
			cancelHandler()
		}
	}()

	disp := s.callHandler(hctx, d)
	if disp.Action == transport.ActionAbandon {
		// hold the message (lock still renewed) before abandoning, so retries back off
		wait := s.cfg.AbandonBackoff.Delay(int(max(d.DeliveryCount, 1)) - 1)
		ch, stop := s.cfg.Clock.After(wait)
		select {
		case <-ch:
		case <-hctx.Done():
		}
		stop()
	}
	stopRenew()
	<-renewDone
	select {
	case <-lost:
		err := fmt.Errorf("%w: lock renewal failed for message %s", ErrLockLost, d.MessageID)
		s.reportLockLost(d, err)
		disp.Report(transport.Settlement{Action: disp.Action, Err: err})
		return
	default:
	}
	s.settle(r, m, d, disp)
}

func (s *Source) callHandler(ctx context.Context, d *transport.Delivery) (disp transport.Disposition) {
	defer func() {
		if p := recover(); p != nil {
			// never log the panic value: it may hold handler data
			s.cfg.Logger.Error("handler panicked; message abandoned", "queue", s.cfg.Queue, "message_id", d.MessageID)
			disp = transport.Abandon()
		}
	}()
	disp = s.handler.Handle(ctx, d)
	switch disp.Action {
	case transport.ActionComplete, transport.ActionAbandon, transport.ActionDeadLetter:
	default:
		disp = transport.Abandon()
	}
	return disp
}

// renewLoop renews the lock at half its remaining duration until ctx ends. It returns true if
// the lock was lost.
func (s *Source) renewLoop(ctx context.Context, r receiver, m *azservicebus.ReceivedMessage) bool {
	failures := 0
	for {
		remaining := s.cfg.LockDuration
		if m.LockedUntil != nil {
			remaining = m.LockedUntil.Sub(s.cfg.Clock.Now())
		}
		wait := max(remaining/2, 10*time.Millisecond)
		ch, stop := s.cfg.Clock.After(wait)
		select {
		case <-ctx.Done():
			stop()
			return false
		case <-ch:
		}
		rctx, cancel := context.WithTimeout(ctx, s.cfg.SettleTimeout)
		err := r.RenewMessageLock(rctx, m, nil)
		cancel()
		if ctx.Err() != nil {
			return false
		}
		if err == nil {
			failures = 0
			s.health.update(func(h *Health) { h.LockRenewals++ })
			continue
		}
		cerr := Classify(err)
		if errors.Is(cerr, ErrLockLost) {
			return true
		}
		failures++
		s.health.fail(s.cfg.Clock.Now(), fmt.Errorf("servicebus: renew lock: %w", cerr))
		if m.LockedUntil != nil && !s.cfg.Clock.Now().Before(*m.LockedUntil) {
			return true
		}
	}
}

func (s *Source) reportLockLost(d *transport.Delivery, err error) {
	now := s.cfg.Clock.Now()
	s.health.update(func(h *Health) { h.LockLost++; h.LastError, h.LastErrorAt = err, now })
	s.cfg.Logger.Warn("message lock lost; it will be redelivered and may be processed by another instance",
		"queue", s.cfg.Queue, "message_id", d.MessageID, "delivery_count", d.DeliveryCount)
}

// settle carries out disp on m and reports what it did through disp's Settled hook.
func (s *Source) settle(r receiver, m *azservicebus.ReceivedMessage, d *transport.Delivery, disp transport.Disposition) {
	err := s.settleMessage(r, m, d, disp)
	disp.Report(transport.Settlement{Action: disp.Action, Err: err})
}

// settleMessage completes, abandons or dead-letters m; the error says why it did not.
func (s *Source) settleMessage(r receiver, m *azservicebus.ReceivedMessage, d *transport.Delivery, disp transport.Disposition) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.SettleTimeout)
	defer cancel()
	var err error
	switch disp.Action {
	case transport.ActionComplete:
		err = r.CompleteMessage(ctx, m, nil)
	case transport.ActionAbandon:
		err = r.AbandonMessage(ctx, m, nil)
	case transport.ActionDeadLetter:
		reason := SanitizeDeadLetterText(disp.Reason, 128)
		if reason == "" {
			reason = "unprocessable"
		}
		desc := SanitizeDeadLetterText(disp.Description, 1024)
		err = r.DeadLetterMessage(ctx, m, &azservicebus.DeadLetterOptions{Reason: &reason, ErrorDescription: &desc})
	}
	if err != nil {
		cerr := Classify(err)
		if errors.Is(cerr, ErrLockLost) {
			lerr := fmt.Errorf("servicebus: %s message %s: %w", disp.Action, d.MessageID, cerr)
			s.reportLockLost(d, lerr)
			return lerr
		}
		now := s.cfg.Clock.Now()
		serr := fmt.Errorf("servicebus: %s message %s: %w", disp.Action, d.MessageID, cerr)
		s.health.update(func(h *Health) { h.SettleErrors++; h.LastError, h.LastErrorAt = serr, now })
		s.cfg.Logger.Warn("settle failed; the message will be redelivered when its lock expires",
			"queue", s.cfg.Queue, "message_id", d.MessageID, "action", disp.Action.String(), "error", cerr)
		return serr
	}
	s.health.update(func(h *Health) {
		switch disp.Action {
		case transport.ActionComplete:
			h.Completed++
		case transport.ActionAbandon:
			h.Abandoned++
		case transport.ActionDeadLetter:
			h.DeadLettered++
		}
	})
	return nil
}

// SanitizeDeadLetterText truncates s to max bytes (on a rune boundary) and replaces control
// characters, so a dead-letter record stays one readable line.
func SanitizeDeadLetterText(s string, maxLen int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
	if len(s) <= maxLen {
		return s
	}
	cut := maxLen
	for cut > 0 && !utf8RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }
