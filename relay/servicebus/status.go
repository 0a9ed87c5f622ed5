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

// StatusSubject is the Subject (label) of every heartbeat message.
const StatusSubject = "adwriteback-status"

// Application properties of a heartbeat message. They are not signed: a
// reader may filter on them, and trusts only the verified body.
const (
	StatusPropInstance = "instance"
	StatusPropState    = "state"
)

// StatusOut is one heartbeat to send.
type StatusOut struct {
	// MessageID is unique per heartbeat.
	MessageID string
	// Body is the signed status envelope.
	Body []byte
	// TTL is the message's time-to-live: 2 heartbeat intervals, so that
	// stale heartbeats leave the queue.
	TTL time.Duration
	// Instance and State are copied into the application properties.
	Instance, State string
}

// StatusSender sends a connector's heartbeats to its status queue through
// one SDK sender (the connector needs the Send right on that queue only).
type StatusSender struct {
	out lazySender
}

// NewStatusSender builds a StatusSender to queue.
func NewStatusSender(client *azservicebus.Client, queue string) (*StatusSender, error) {
	if client == nil || queue == "" {
		return nil, fmt.Errorf("%w: status sender needs a client and a queue", ErrConfig)
	}
	return &StatusSender{out: lazySender{client: client, queue: queue}}, nil
}

// Send sends one heartbeat.
func (st *StatusSender) Send(ctx context.Context, out StatusOut) error {
	if out.MessageID == "" || out.TTL <= 0 {
		return errors.New("servicebus: heartbeat needs a message id and a TTL")
	}
	ct, subject, ttl := sender.ContentTypeStatus, StatusSubject, out.TTL
	msg := &azservicebus.Message{
		Body: out.Body, MessageID: &out.MessageID, ContentType: &ct, Subject: &subject, TimeToLive: &ttl,
		ApplicationProperties: map[string]any{StatusPropInstance: out.Instance, StatusPropState: out.State},
	}
	if err := st.out.send(ctx, msg); err != nil {
		return fmt.Errorf("servicebus: send heartbeat to %s: %w", st.out.queue, err)
	}
	return nil
}

// Close closes the sender.
func (st *StatusSender) Close(ctx context.Context) error { return st.out.close(ctx) }

// StatusPeeker reads the status queue without taking anything (a peek
// needs the Listen right; it locks and removes nothing, so several
// readers see the same heartbeats). It implements sender.StatusSource.
type StatusPeeker struct {
	client *azservicebus.Client
	queue  string

	mu sync.Mutex
	r  *azservicebus.Receiver
}

var _ sender.StatusSource = (*StatusPeeker)(nil)

// Peek limits: a page per request, and the most messages one
// PeekStatus reads (heartbeats live 2 intervals, so a status queue holds
// about 3 per connector instance).
const (
	statusPeekPage = 64
	statusPeekMax  = 4096
)

// NewStatusPeeker builds a StatusPeeker on queue.
func NewStatusPeeker(client *azservicebus.Client, queue string) (*StatusPeeker, error) {
	if client == nil || queue == "" {
		return nil, fmt.Errorf("%w: status peeker needs a client and a queue", ErrConfig)
	}
	return &StatusPeeker{client: client, queue: queue}, nil
}

// PeekStatus returns the messages on the status queue, oldest first, in
// pages from the first sequence number until a page comes back empty.
func (p *StatusPeeker) PeekStatus(ctx context.Context) ([]sender.StatusMessage, error) {
	r, err := p.receiver()
	if err != nil {
		return nil, err
	}
	var out []sender.StatusMessage
	from := int64(0)
	for len(out) < statusPeekMax {
		page, err := r.PeekMessages(ctx, statusPeekPage, &azservicebus.PeekMessagesOptions{FromSequenceNumber: &from})
		if err != nil {
			return nil, fmt.Errorf("servicebus: peek %s: %w", p.queue, Classify(err))
		}
		if len(page) == 0 {
			break
		}
		for _, m := range page {
			out = append(out, statusMessage(m))
			if m.SequenceNumber != nil {
				from = max(from, *m.SequenceNumber+1)
			}
		}
	}
	return out, nil
}

func statusMessage(m *azservicebus.ReceivedMessage) sender.StatusMessage {
	sm := sender.StatusMessage{Body: m.Body}
	if m.ExpiresAt != nil {
		sm.ExpiresAt = *m.ExpiresAt
	}
	return sm
}

func (p *StatusPeeker) receiver() (*azservicebus.Receiver, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.r != nil {
		return p.r, nil
	}
	r, err := p.client.NewReceiverForQueue(p.queue, nil)
	if err != nil {
		return nil, fmt.Errorf("servicebus: status peeker for %s: %w", p.queue, err)
	}
	p.r = r
	return r, nil
}

// Close closes the receiver.
func (p *StatusPeeker) Close(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.r == nil {
		return nil
	}
	err := p.r.Close(ctx)
	p.r = nil
	return err
}
