package servicebus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/Azure/go-amqp"
	"github.com/cenkalti/backoff/v5"
	"github.com/jonboulle/clockwork"

	"github.com/adwriteback/adwriteback/relay/transport"
)

// Errors the Source reports (through Health.LastError and the logger), for errors.Is.
var (
	// ErrLockLost: the message's lock expired or was lost before it was settled; the message
	// will be redelivered (possibly to another instance).
	ErrLockLost = transport.ErrLockLost
	// ErrUnauthorized: Service Bus refused the credentials.
	ErrUnauthorized = errors.New("servicebus: unauthorized (check the key or the role assignment: Azure Service Bus Data Receiver/Sender)")
	// ErrTokenRefused: Entra ID (or the managed identity endpoint) refused to issue a token:
	// an expired or wrong secret, an unknown client, an untrusted federated token.
	ErrTokenRefused = errors.New("servicebus: Entra ID refused a token")
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
	var authErr *azidentity.AuthenticationFailedError
	if errors.As(err, &authErr) && authErr.RawResponse != nil {
		return &tokenError{msg: ErrTokenRefused.Error() + ": " + entraReason(authErr.RawResponse), err: err}
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

// tokenError is Entra ID's refusal told on one line: azidentity's own text is a multi-line
// dump of the request and the response, too much for a log line or /readyz, while the
// answer's error_description (AADSTS code, reason, trace and correlation ids) is what an
// admin needs. errors.Is finds ErrTokenRefused; errors.As the SDK's error.
type tokenError struct {
	msg string
	err error
}

func (e *tokenError) Error() string   { return e.msg }
func (e *tokenError) Unwrap() []error { return []error{ErrTokenRefused, e.err} }

// entraReason is the refusal in resp: its status and Entra ID's error and
// error_description, when the body has them.
func entraReason(resp *http.Response) string {
	reason := fmt.Sprintf("HTTP %d", resp.StatusCode)
	body, err := runtime.Payload(resp)
	if err != nil {
		return reason
	}
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if json.Unmarshal(body, &e) != nil || e.Error == "" {
		return reason
	}
	reason += " " + e.Error
	if d := strings.Join(strings.Fields(e.Description), " "); d != "" {
		reason += ": " + d
	}
	return reason
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

// SourceConfig configures a Source. Prefetch, Concurrency and ShutdownGrace
// are required: the connector's configuration holds their defaults (one
// table, in connector/config). The other knobs have defaults here.
type SourceConfig struct {
	Queue string
	// Prefetch bounds the messages asked for in one receive call (required).
	Prefetch int
	// Concurrency bounds the deliveries handled at once (required).
	Concurrency int
	// ShutdownGrace is how long in-flight handlers may run after Run's context ends before
	// their context is cancelled (required).
	ShutdownGrace time.Duration
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
	// ReconnectBackoff paces receiver re-creation after failures: one step per consecutive
	// failure, reset by a successful receive (nil: 250 ms doubling to 30 s, ±50%).
	ReconnectBackoff *backoff.ExponentialBackOff
	// AbandonBackoff is how long a message is held (lock renewed) before being abandoned:
	// the step matching its delivery count, so a failing command is not retried hot (nil:
	// 1 s doubling to 30 s, ±50%).
	AbandonBackoff *backoff.ExponentialBackOff
	// Dials, if set, is the client's DialTracker (Config.Dials): link errors are explained
	// with the last failed connection attempt (a proxy's 407, a TLS failure).
	Dials *DialTracker
	// Clock is the time source (nil: the real clock).
	Clock  clockwork.Clock
	Logger *slog.Logger
}

// check returns every problem with the required settings, each wrapping ErrConfig.
func (c *SourceConfig) check() error {
	var errs []error
	add := func(what string) { errs = append(errs, fmt.Errorf("%w: source needs %s", ErrConfig, what)) }
	if c.Queue == "" {
		add("a queue name")
	}
	if c.Prefetch <= 0 {
		add("a positive prefetch")
	}
	if c.Concurrency <= 0 {
		add("a positive concurrency")
	}
	if c.ShutdownGrace <= 0 {
		add("a positive shutdown grace")
	}
	return errors.Join(errs...)
}

// defaults fills the knobs the connector's configuration does not have.
func (c *SourceConfig) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.LockDuration, 60*time.Second)
	def(&c.ReceiveTimeout, 30*time.Second)
	def(&c.WatchdogGrace, 15*time.Second)
	def(&c.IdleRefresh, 5*time.Minute)
	def(&c.SettleTimeout, 20*time.Second)
	if c.ReconnectBackoff == nil {
		c.ReconnectBackoff = &backoff.ExponentialBackOff{InitialInterval: 250 * time.Millisecond,
			RandomizationFactor: 0.5, Multiplier: 2, MaxInterval: 30 * time.Second}
	}
	if c.AbandonBackoff == nil {
		c.AbandonBackoff = &backoff.ExponentialBackOff{InitialInterval: time.Second,
			RandomizationFactor: 0.5, Multiplier: 2, MaxInterval: 30 * time.Second}
	}
	if c.Clock == nil {
		c.Clock = clockwork.NewRealClock()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
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
	if err := cfg.check(); err != nil {
		return nil, err
	}
	cfg.defaults()
	s := &Source{cfg: cfg, handler: h, open: open}
	s.health.h = Health{Queue: cfg.Queue, State: LinkConnecting}
	return s, nil
}

// Health returns a snapshot of the source's signals; safe to call concurrently.
func (s *Source) Health() Health { return s.health.snapshot() }

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
		t := s.cfg.Clock.NewTimer(s.abandonWait(d.DeliveryCount))
		select {
		case <-t.Chan():
		case <-hctx.Done():
		}
		t.Stop()
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

// abandonWait is how long a message delivered n times is held before it is abandoned: the
// n-th step of AbandonBackoff (the delivery count is the queue's memory of earlier failures).
func (s *Source) abandonWait(n uint32) time.Duration {
	b := *s.cfg.AbandonBackoff
	b.Reset()
	var d time.Duration
	for range max(n, 1) {
		d = b.NextBackOff()
	}
	return d
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
		t := s.cfg.Clock.NewTimer(max(remaining/2, 10*time.Millisecond))
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.Chan():
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
