package servicebus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"github.com/adwriteback/adwriteback/relay/sender"
)

// CommandSenderConfig configures a CommandSender.
type CommandSenderConfig struct {
	// Queue receives the commands (the connector's queue).
	Queue string
	// ReplyQueue is where the connector answers (the commands' ReplyTo). Needed to await.
	ReplyQueue string
	// ReplySessionID, if set, is sent as ReplyToSessionID and replies are read from that
	// session (the reply queue must then require sessions).
	ReplySessionID string
	// DefaultTTL of a command without an expiry (default 10 min).
	DefaultTTL time.Duration
	// MaxPending bounds the replies kept for ids nobody awaits yet (default 1024).
	MaxPending int
}

// CommandSender sends commands and awaits their results by correlation id. It implements the
// sender SDK's Transport.
//
// A result is settled only once it has been handed to its awaiter: one received for an id
// nobody awaits yet is held unsettled (up to MaxPending; the oldest is then abandoned, so it
// returns to the queue rather than being lost), and one received again after it was delivered
// (a redelivery after a dropped link, or the responder's duplicate reply) is completed and
// dropped, so each AwaitResult for an id sees the result once.
type CommandSender struct {
	client *azservicebus.Client
	cfg    CommandSenderConfig
	s      *azservicebus.Sender

	recvMu sync.Mutex // one receive call at a time
	rcv    replyReceiver

	mu        sync.Mutex
	results   map[string]pendingResult
	order     []string
	delivered map[string]struct{} // ids whose result was handed out (bounded)
	dorder    []string
	settling  sync.WaitGroup
	// settleMu guards settleClosed and every settling.Add: once closeHeld
	// waits, no settlement starts (Add beside Wait is a misuse).
	settleMu     sync.Mutex
	settleClosed bool
	// life bounds background settlements; Close cancels it.
	life     context.Context
	stopLife context.CancelFunc
}

// replyReceiver is the subset of *azservicebus.Receiver and *azservicebus.SessionReceiver the
// CommandSender uses.
type replyReceiver interface {
	ReceiveMessages(context.Context, int, *azservicebus.ReceiveMessagesOptions) ([]*azservicebus.ReceivedMessage, error)
	CompleteMessage(context.Context, *azservicebus.ReceivedMessage, *azservicebus.CompleteMessageOptions) error
	AbandonMessage(context.Context, *azservicebus.ReceivedMessage, *azservicebus.AbandonMessageOptions) error
	Close(context.Context) error
}

// pendingResult is a received, not yet delivered result and the unsettled message carrying it.
type pendingResult struct {
	env sender.Envelope
	msg *azservicebus.ReceivedMessage
	rcv replyReceiver
}

// settleTimeout bounds one settlement of a reply message. A settlement that fails only leaves
// the message to its lock expiry and redelivery (then dropped or held as above), so it is kept
// short: the SDK retries a settlement on a dead link for much longer.
const settleTimeout = 5 * time.Second

var _ sender.Transport = (*CommandSender)(nil)

// NewCommandSender builds a CommandSender.
func NewCommandSender(client *azservicebus.Client, cfg CommandSenderConfig) (*CommandSender, error) {
	if client == nil || cfg.Queue == "" {
		return nil, fmt.Errorf("%w: command sender needs a client and a queue", ErrConfig)
	}
	if cfg.DefaultTTL <= 0 {
		cfg.DefaultTTL = 10 * time.Minute
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = 1024
	}
	s, err := client.NewSender(cfg.Queue, nil)
	if err != nil {
		return nil, fmt.Errorf("servicebus: command sender: %w", err)
	}
	life, stop := context.WithCancel(context.Background())
	return &CommandSender{client: client, cfg: cfg, s: s,
		results: map[string]pendingResult{}, delivered: map[string]struct{}{}, life: life, stopLife: stop}, nil
}

// SendCommand sends body as command id (the MessageID, so duplicate detection applies) with
// ReplyTo replyTo (the configured reply queue if empty).
func (c *CommandSender) SendCommand(ctx context.Context, id string, body []byte, replyTo string) error {
	return c.send(ctx, id, body, replyTo, "", c.cfg.DefaultTTL)
}

// Send implements sender.Transport.
func (c *CommandSender) Send(ctx context.Context, env sender.Envelope) error {
	ttl := c.cfg.DefaultTTL
	if !env.ExpiresAt.IsZero() {
		ttl = time.Until(env.ExpiresAt)
		if ttl <= 0 {
			return fmt.Errorf("servicebus: command %s already expired", env.ID)
		}
	}
	return c.send(ctx, env.ID, env.Body, "", env.ContentType, ttl)
}

func (c *CommandSender) send(ctx context.Context, id string, body []byte, replyTo, contentType string, ttl time.Duration) error {
	if id == "" {
		return errors.New("servicebus: command without id")
	}
	if replyTo == "" {
		replyTo = c.cfg.ReplyQueue
	}
	msg := &azservicebus.Message{MessageID: &id, Body: body, TimeToLive: &ttl}
	if replyTo != "" {
		msg.ReplyTo = &replyTo
	}
	if c.cfg.ReplySessionID != "" {
		sid := c.cfg.ReplySessionID
		msg.ReplyToSessionID = &sid
	}
	if contentType != "" {
		msg.ContentType = &contentType
	}
	if err := c.s.SendMessage(ctx, msg, nil); err != nil {
		return fmt.Errorf("servicebus: send command %s: %w", id, Classify(err))
	}
	return nil
}

// AwaitResult implements sender.Transport: it returns the reply whose CorrelationID is
// commandID, reading the reply queue. The reply is completed once handed out; replies for other
// ids are held (unsettled) for their callers, duplicates of delivered ones dropped.
func (c *CommandSender) AwaitResult(ctx context.Context, commandID string) (sender.Envelope, error) {
	if c.cfg.ReplyQueue == "" {
		return sender.Envelope{}, fmt.Errorf("%w: no reply queue configured", ErrConfig)
	}
	for {
		if env, ok := c.take(commandID); ok {
			return env, nil
		}
		if err := ctx.Err(); err != nil {
			return sender.Envelope{}, err
		}
		if err := c.receiveOnce(ctx, commandID); err != nil {
			if ctx.Err() != nil {
				return sender.Envelope{}, ctx.Err()
			}
			return sender.Envelope{}, err
		}
	}
}

// take hands out the result for id, if received, and completes its message (after the hand-
// over: a result is never settled before it reaches its awaiter).
func (c *CommandSender) take(id string) (sender.Envelope, bool) {
	c.mu.Lock()
	p, ok := c.results[id]
	if ok {
		delete(c.results, id)
		c.markDeliveredLocked(id)
	}
	c.mu.Unlock()
	if !ok {
		return sender.Envelope{}, false
	}
	// If this completion fails (the link that carried it is gone), the message is redelivered
	// and then dropped as a duplicate of a delivered id.
	c.settleAsync(p.rcv, p.msg, true)
	return p.env, true
}

func (c *CommandSender) markDeliveredLocked(id string) {
	if _, ok := c.delivered[id]; ok {
		return
	}
	c.delivered[id] = struct{}{}
	c.dorder = append(c.dorder, id)
	// remember enough delivered ids to recognise redeliveries; the oldest are forgotten
	for limit := 4 * c.cfg.MaxPending; len(c.dorder) > limit; c.dorder = c.dorder[1:] {
		delete(c.delivered, c.dorder[0])
	}
}

// settleAsync completes (complete) or abandons a reply message in the background; Close waits.
func (c *CommandSender) settleAsync(r replyReceiver, m *azservicebus.ReceivedMessage, complete bool) {
	c.settleMu.Lock()
	if c.settleClosed {
		// Closing: left to its lock expiry, the message comes back (a
		// delivered id is then dropped by whoever receives it next).
		c.settleMu.Unlock()
		return
	}
	c.settling.Add(1)
	c.settleMu.Unlock()
	go func() {
		defer c.settling.Done()
		ctx, cancel := context.WithTimeout(c.life, settleTimeout)
		defer cancel()
		// A failed settlement leaves the message to its lock expiry and redelivery: a completed
		// id is then dropped as a duplicate, an abandoned one is received again.
		if complete {
			_ = r.CompleteMessage(ctx, m, nil)
		} else {
			_ = r.AbandonMessage(ctx, m, nil)
		}
	}()
}

// accept files one received reply: held for its awaiter, or (a duplicate of a delivered id, or
// a message without a correlation id) completed and dropped.
func (c *CommandSender) accept(r replyReceiver, m *azservicebus.ReceivedMessage) {
	if m.CorrelationID == nil || *m.CorrelationID == "" {
		c.settleAsync(r, m, true) // not a reply anyone can await
		return
	}
	env := sender.Envelope{ID: *m.CorrelationID, Body: m.Body}
	if m.ContentType != nil {
		env.ContentType = *m.ContentType
	}
	c.mu.Lock()
	if _, done := c.delivered[env.ID]; done {
		c.mu.Unlock()
		c.settleAsync(r, m, true)
		return
	}
	if old, dup := c.results[env.ID]; dup {
		// Held already: keep the newest delivery (the older lock has expired or will) and
		// release the other copy.
		c.results[env.ID] = pendingResult{env: old.env, msg: m, rcv: r}
		c.mu.Unlock()
		c.settleAsync(old.rcv, old.msg, false)
		return
	}
	c.results[env.ID] = pendingResult{env: env, msg: m, rcv: r}
	c.order = append(c.order, env.ID)
	var evicted []pendingResult
	for len(c.results) > c.cfg.MaxPending && len(c.order) > 0 {
		if p, ok := c.results[c.order[0]]; ok {
			evicted = append(evicted, p)
			delete(c.results, c.order[0])
		}
		c.order = c.order[1:]
	}
	if len(c.order) > 4*c.cfg.MaxPending {
		kept := c.order[:0]
		for _, id := range c.order {
			if _, ok := c.results[id]; ok {
				kept = append(kept, id)
			}
		}
		c.order = kept
	}
	c.mu.Unlock()
	for _, p := range evicted {
		// nobody awaited it in time: back to the queue, not lost
		c.settleAsync(p.rcv, p.msg, false)
	}
}

func (c *CommandSender) receiveOnce(ctx context.Context, awaited string) error {
	c.recvMu.Lock()
	defer c.recvMu.Unlock()
	// Another awaiter may have received our result while we waited for
	// the lock: do not block in a receive for it.
	c.mu.Lock()
	_, ready := c.results[awaited]
	c.mu.Unlock()
	if ready {
		return nil
	}
	if c.rcv == nil {
		if c.cfg.ReplySessionID != "" {
			r, err := c.client.AcceptSessionForQueue(ctx, c.cfg.ReplyQueue, c.cfg.ReplySessionID, nil)
			if err != nil {
				return fmt.Errorf("servicebus: accept reply session: %w", Classify(err))
			}
			c.rcv = r
		} else {
			r, err := c.client.NewReceiverForQueue(c.cfg.ReplyQueue, nil)
			if err != nil {
				return fmt.Errorf("servicebus: reply receiver: %w", err)
			}
			c.rcv = r
		}
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	r := c.rcv
	msgs, err := r.ReceiveMessages(rctx, 16, nil)
	if err != nil && len(msgs) == 0 {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// A fatal failure: drop the receiver so the next call attaches a fresh link. (Link
		// and connection losses the SDK recovers itself: ReceiveMessages then returns no
		// messages and no error, and the next call re-attaches.)
		cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = r.Close(cctx)
		ccancel()
		c.rcv = nil
		return fmt.Errorf("servicebus: receive replies: %w", Classify(err))
	}
	for _, m := range msgs {
		c.accept(r, m)
	}
	return nil
}

// closeHeld returns the results still held to the queue (for whoever awaits them next) and
// waits for background settlements, until ctx ends.
func (c *CommandSender) closeHeld(ctx context.Context) {
	c.mu.Lock()
	for id, p := range c.results {
		delete(c.results, id)
		c.settleAsync(p.rcv, p.msg, false)
	}
	c.order = nil
	c.mu.Unlock()
	c.settleMu.Lock()
	c.settleClosed = true
	c.settleMu.Unlock()
	settled := make(chan struct{})
	go func() { c.settling.Wait(); close(settled) }()
	select {
	case <-settled:
	case <-ctx.Done():
		c.stopLife()
		<-settled
	}
	c.stopLife()
}

// Close returns held results to the queue, then closes the sender and the reply receiver.
func (c *CommandSender) Close(ctx context.Context) error {
	c.recvMu.Lock()
	defer c.recvMu.Unlock()
	c.closeHeld(ctx)
	var errs []error
	if c.rcv != nil {
		errs = append(errs, c.rcv.Close(ctx))
		c.rcv = nil
	}
	errs = append(errs, c.s.Close(ctx))
	return errors.Join(errs...)
}
