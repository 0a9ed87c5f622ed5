package servicebus

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"github.com/adwriteback/adwriteback/relay/transport"
)

// Reply is one result message.
type Reply struct {
	// CorrelationID is the command id.
	CorrelationID string
	// SessionID is the command's ReplyToSessionID (empty for a
	// non-session reply queue). It routes within the reply queue only.
	SessionID   string
	Body        []byte
	ContentType string
	// TTL of the reply; 0 means the ReplySender's.
	TTL time.Duration
}

// ReplySender sends results to one reply queue, the connector's
// configured one, through one SDK sender. A command message's ReplyTo is
// never used: it is not signed, so any copy of a command could name a
// queue of its own (and make the connector open a sender per name).
type ReplySender struct {
	client      *azservicebus.Client
	queue       string
	ttl         time.Duration
	contentType string

	mu sync.Mutex
	s  *azservicebus.Sender
}

// NewReplySender builds a ReplySender to queue. ttl is the replies'
// time-to-live (the connector's configuration holds its default,
// results.ttl); 0 leaves it to the reply queue's own default.
func NewReplySender(client *azservicebus.Client, queue string, ttl time.Duration, contentType string) *ReplySender {
	return &ReplySender{client: client, queue: queue, ttl: ttl, contentType: contentType}
}

// SendReply answers d on the reply queue: CorrelationID = d.MessageID,
// SessionID = d.ReplyToSessionID. Send the reply before completing the
// command.
func (r *ReplySender) SendReply(ctx context.Context, d *transport.Delivery, body []byte) error {
	return r.Send(ctx, Reply{CorrelationID: d.MessageID, SessionID: d.ReplyToSessionID, Body: body})
}

// ResultMessageID is a result message's MessageId (PROTOCOL.md §9.2):
// the lower-case hex SHA-256 of its body. The same result sent again (a
// redelivered command answered from the journal) has the same id, which a
// reply queue with duplicate detection drops as the copy it is; a
// different result for the same command has another id and is kept.
func ResultMessageID(body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}

// Send sends one reply: MessageId ResultMessageID(Body), CorrelationId
// the command id, SessionId, content type and time-to-live as set.
func (r *ReplySender) Send(ctx context.Context, rep Reply) error {
	if rep.CorrelationID == "" {
		return errors.New("servicebus: reply without correlation id")
	}
	s, err := r.sender()
	if err != nil {
		return err
	}
	ttl := rep.TTL
	if ttl <= 0 {
		ttl = r.ttl
	}
	mid := ResultMessageID(rep.Body)
	msg := &azservicebus.Message{Body: rep.Body, MessageID: &mid, CorrelationID: &rep.CorrelationID}
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
			r.drop(s)
		}
		return fmt.Errorf("servicebus: send reply to %s: %w", r.queue, cerr)
	}
	return nil
}

func (r *ReplySender) sender() (*azservicebus.Sender, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.s != nil {
		return r.s, nil
	}
	s, err := r.client.NewSender(r.queue, nil)
	if err != nil {
		return nil, fmt.Errorf("servicebus: reply sender for %s: %w", r.queue, err)
	}
	r.s = s
	return s, nil
}

func (r *ReplySender) drop(s *azservicebus.Sender) {
	r.mu.Lock()
	if r.s == s {
		r.s = nil
	}
	r.mu.Unlock()
	_ = s.Close(context.Background())
}

// Close closes the sender.
func (r *ReplySender) Close(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.s == nil {
		return nil
	}
	err := r.s.Close(ctx)
	r.s = nil
	return err
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
