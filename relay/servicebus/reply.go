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
	out         lazySender
	ttl         time.Duration
	contentType string
}

// NewReplySender builds a ReplySender to queue. ttl is the replies'
// time-to-live (the connector's configuration holds its default,
// results.ttl); 0 leaves it to the reply queue's own default.
func NewReplySender(client *azservicebus.Client, queue string, ttl time.Duration, contentType string) *ReplySender {
	return &ReplySender{out: lazySender{client: client, queue: queue}, ttl: ttl, contentType: contentType}
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
	if err := r.out.send(ctx, msg); err != nil {
		return fmt.Errorf("servicebus: send reply to %s: %w", r.out.queue, err)
	}
	return nil
}

// Close closes the sender.
func (r *ReplySender) Close(ctx context.Context) error { return r.out.close(ctx) }

// lazySender is one SDK sender to a queue, opened on first use and opened
// again after the SDK reports it closed.
type lazySender struct {
	client *azservicebus.Client
	queue  string

	mu sync.Mutex
	s  *azservicebus.Sender
}

// send sends msg; its error is classified (Classify).
func (l *lazySender) send(ctx context.Context, msg *azservicebus.Message) error {
	s, err := l.sender()
	if err != nil {
		return err
	}
	if err := s.SendMessage(ctx, msg, nil); err != nil {
		var sbErr *azservicebus.Error
		if errors.As(err, &sbErr) && sbErr.Code == azservicebus.CodeClosed {
			l.drop(s)
		}
		return Classify(err)
	}
	return nil
}

func (l *lazySender) sender() (*azservicebus.Sender, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.s != nil {
		return l.s, nil
	}
	s, err := l.client.NewSender(l.queue, nil)
	if err != nil {
		return nil, fmt.Errorf("servicebus: sender for %s: %w", l.queue, err)
	}
	l.s = s
	return s, nil
}

func (l *lazySender) drop(s *azservicebus.Sender) {
	l.mu.Lock()
	if l.s == s {
		l.s = nil
	}
	l.mu.Unlock()
	_ = s.Close(context.Background())
}

func (l *lazySender) close(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.s == nil {
		return nil
	}
	err := l.s.Close(ctx)
	l.s = nil
	return err
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
