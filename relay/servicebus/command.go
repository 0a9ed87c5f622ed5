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
type CommandSender struct {
	client *azservicebus.Client
	cfg    CommandSenderConfig
	s      *azservicebus.Sender

	recvMu sync.Mutex // one receive call at a time
	rcv    interface {
		ReceiveMessages(context.Context, int, *azservicebus.ReceiveMessagesOptions) ([]*azservicebus.ReceivedMessage, error)
		CompleteMessage(context.Context, *azservicebus.ReceivedMessage, *azservicebus.CompleteMessageOptions) error
		Close(context.Context) error
	}
	mu      sync.Mutex
	results map[string]sender.Envelope
	order   []string
}

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
	return &CommandSender{client: client, cfg: cfg, s: s, results: map[string]sender.Envelope{}}, nil
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
// commandID, reading the reply queue (completing what it reads; replies for other ids are kept
// for their callers, duplicates dropped).
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

func (c *CommandSender) take(id string) (sender.Envelope, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	env, ok := c.results[id]
	if ok {
		delete(c.results, id)
	}
	return env, ok
}

func (c *CommandSender) store(env sender.Envelope) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, dup := c.results[env.ID]; dup {
		return
	}
	c.results[env.ID] = env
	c.order = append(c.order, env.ID)
	for len(c.results) > c.cfg.MaxPending && len(c.order) > 0 {
		delete(c.results, c.order[0])
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
	msgs, err := c.rcv.ReceiveMessages(rctx, 16, nil)
	if err != nil && len(msgs) == 0 {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return nil
		}
		// Any failure: drop the receiver so the next call attaches a fresh
		// link (a link left from a lost connection may never deliver again).
		cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = c.rcv.Close(cctx)
		ccancel()
		c.rcv = nil
		return fmt.Errorf("servicebus: receive replies: %w", Classify(err))
	}
	for _, m := range msgs {
		if m.CorrelationID != nil && *m.CorrelationID != "" {
			env := sender.Envelope{ID: *m.CorrelationID, Body: m.Body}
			if m.ContentType != nil {
				env.ContentType = *m.ContentType
			}
			c.store(env)
		}
		cctx, ccancel := context.WithTimeout(context.Background(), 20*time.Second)
		_ = c.rcv.CompleteMessage(cctx, m, nil)
		ccancel()
	}
	return nil
}

// Close closes the sender and the reply receiver.
func (c *CommandSender) Close(ctx context.Context) error {
	c.recvMu.Lock()
	defer c.recvMu.Unlock()
	var errs []error
	if c.rcv != nil {
		errs = append(errs, c.rcv.Close(ctx))
		c.rcv = nil
	}
	errs = append(errs, c.s.Close(ctx))
	return errors.Join(errs...)
}
