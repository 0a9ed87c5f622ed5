package servicebus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"github.com/adwriteback/adwriteback/relay/transport"
)

// ErrNoReplyTo: the command names no reply queue.
var ErrNoReplyTo = errors.New("servicebus: command has no ReplyTo")

// Reply is one result message.
type Reply struct {
	// To is the reply queue (the command's ReplyTo).
	To string
	// CorrelationID is the command id.
	CorrelationID string
	// SessionID is the command's ReplyToSessionID (empty for a non-session reply queue).
	SessionID   string
	Body        []byte
	ContentType string
	// TTL of the reply; 0 means the ReplySender's.
	TTL time.Duration
}

// ReplySender sends results to reply queues, keeping one SDK sender per queue.
type ReplySender struct {
	client      *azservicebus.Client
	ttl         time.Duration
	contentType string

	mu      sync.Mutex
	senders map[string]*azservicebus.Sender
}

// NewReplySender builds a ReplySender. ttl is the replies' time-to-live (the
// connector's configuration holds its default, results.ttl); 0 leaves it to
// the reply queue's own default.
func NewReplySender(client *azservicebus.Client, ttl time.Duration, contentType string) *ReplySender {
	return &ReplySender{client: client, ttl: ttl, contentType: contentType, senders: map[string]*azservicebus.Sender{}}
}

// SendReply answers d: to d.ReplyTo, CorrelationID = d.MessageID, SessionID =
// d.ReplyToSessionID. Send the reply before completing the command.
func (r *ReplySender) SendReply(ctx context.Context, d *transport.Delivery, body []byte) error {
	return r.Send(ctx, Reply{To: d.ReplyTo, CorrelationID: d.MessageID, SessionID: d.ReplyToSessionID, Body: body})
}

// Send sends one reply.
func (r *ReplySender) Send(ctx context.Context, rep Reply) error {
	if rep.To == "" {
		return ErrNoReplyTo
	}
	if rep.CorrelationID == "" {
		return errors.New("servicebus: reply without correlation id")
	}
	s, err := r.sender(rep.To)
	if err != nil {
		return err
	}
	ttl := rep.TTL
	if ttl <= 0 {
		ttl = r.ttl
	}
	msg := &azservicebus.Message{Body: rep.Body, CorrelationID: &rep.CorrelationID}
	if ttl > 0 {
		msg.TimeToLive = &ttl
	}
	if ct := firstNonEmpty(rep.ContentType, r.contentType); ct != "" {
		msg.ContentType = &ct
	}
	if rep.SessionID != "" {
		sid := rep.SessionID
		msg.SessionID = &sid
	}
	if err := s.SendMessage(ctx, msg, nil); err != nil {
		cerr := Classify(err)
		var sbErr *azservicebus.Error
		if errors.As(err, &sbErr) && sbErr.Code == azservicebus.CodeClosed {
			r.drop(rep.To, s)
		}
		return fmt.Errorf("servicebus: send reply to %s: %w", rep.To, cerr)
	}
	return nil
}

func (r *ReplySender) sender(queue string) (*azservicebus.Sender, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, ok := r.senders[queue]; ok {
		return s, nil
	}
	s, err := r.client.NewSender(queue, nil)
	if err != nil {
		return nil, fmt.Errorf("servicebus: reply sender for %s: %w", queue, err)
	}
	r.senders[queue] = s
	return s, nil
}

func (r *ReplySender) drop(queue string, s *azservicebus.Sender) {
	r.mu.Lock()
	if r.senders[queue] == s {
		delete(r.senders, queue)
	}
	r.mu.Unlock()
	_ = s.Close(context.Background())
}

// Close closes every sender.
func (r *ReplySender) Close(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	for q, s := range r.senders {
		errs = append(errs, s.Close(ctx))
		delete(r.senders, q)
	}
	return errors.Join(errs...)
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
