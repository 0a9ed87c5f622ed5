package stack

import (
	"bytes"
	"context"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"github.com/adwriteback/adwriteback/relay/keys"
	"github.com/adwriteback/adwriteback/relay/protocol"
	"github.com/adwriteback/adwriteback/relay/sender"
)

// RawClient puts any body on the command queue through the real Service
// Bus SDK (what a correct sender would refuse to send) and collects every
// result on the reply queue by correlation id; the leak scan reads those
// results, raw and decoded.
type RawClient struct {
	env *Env
	snd *azservicebus.Sender

	mu      sync.Mutex
	replies map[string][]byte // raw result envelopes by correlation id
}

// Raw connects a RawClient to the stack's queues; the test's end closes it.
func (e *Env) Raw() *RawClient {
	tb := e.tb
	tb.Helper()
	sb, err := azservicebus.NewClientFromConnectionString(e.ConnectionString, nil)
	if err != nil {
		tb.Fatalf("%v", err)
	}
	tb.Cleanup(func() { sb.Close(context.Background()) })
	r := &RawClient{env: e, replies: map[string][]byte{}}
	if r.snd, err = sb.NewSender(e.Queue, nil); err != nil {
		tb.Fatalf("%v", err)
	}
	rcv, err := sb.NewReceiverForQueue(e.Replies, nil)
	if err != nil {
		tb.Fatalf("%v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { r.receive(ctx, rcv) })
	tb.Cleanup(func() { cancel(); wg.Wait(); rcv.Close(context.Background()) })
	e.addSurface("raw replies", r.texts)
	return r
}

func (r *RawClient) receive(ctx context.Context, rcv *azservicebus.Receiver) {
	ReceiveReplies(ctx, rcv, func(m *azservicebus.ReceivedMessage) {
		r.mu.Lock()
		r.replies[*m.CorrelationID] = m.Body
		r.mu.Unlock()
	})
}

// ReceiveReplies receives from rcv until ctx ends, completing every
// message, and hands each one that names the command it answers
// (CorrelationID) to fn.
func ReceiveReplies(ctx context.Context, rcv *azservicebus.Receiver, fn func(*azservicebus.ReceivedMessage)) {
	for ctx.Err() == nil {
		msgs, err := rcv.ReceiveMessages(ctx, 10, nil)
		if err != nil {
			continue
		}
		for _, m := range msgs {
			if m.CorrelationID != nil {
				fn(m)
			}
			_ = rcv.CompleteMessage(ctx, m, nil)
		}
	}
}

// Send puts body on the command queue as a command message with id msgID
// and the stack's reply queue.
func (r *RawClient) Send(msgID string, body []byte) error {
	return r.SendTo(msgID, body, r.env.Replies)
}

// SendTo is Send with the message's ReplyTo set to replyTo.
func (r *RawClient) SendTo(msgID string, body []byte, replyTo string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ct := sender.ContentTypeCommand
	return r.snd.SendMessage(ctx, &azservicebus.Message{MessageID: &msgID, Body: body, ContentType: &ct, ReplyTo: &replyTo}, nil)
}

// Forget drops the result received for commandID, so the next Await waits
// for a new one.
func (r *RawClient) Forget(commandID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.replies, commandID)
}

// Outcome is what became of a message: a verified result or a dead letter.
type Outcome struct {
	Result     *protocol.VerifiedResult
	RawResult  []byte
	DeadReason string
	DeadDesc   string
}

// Await waits up to 90 s for a result to commandID (if not empty) or a
// dead letter of msgID, whichever comes; a result that does not verify, or
// neither, fails the test (with the queue's state and the logs' tail).
func (r *RawClient) Await(tb TB, msgID, commandID string) Outcome {
	tb.Helper()
	const maxWait = 90 * time.Second
	rk, err := keys.ResultKeysOf(r.env.Keys.Connector.Public())
	if err != nil {
		tb.Fatalf("%v", err)
	}
	var out Outcome
	var snapErr error // the last failed snapshot: reported, never taken for "not yet"
	found := poll(maxWait, 100*time.Millisecond, func() bool {
		if commandID != "" {
			r.mu.Lock()
			raw, ok := r.replies[commandID]
			r.mu.Unlock()
			if ok {
				res, err := protocol.VerifyResult(raw, rk)
				if err != nil {
					tb.Fatalf("reply to %s does not verify: %v", commandID, err)
				}
				out = Outcome{Result: res, RawResult: raw}
				return true
			}
		}
		st, err := r.env.Emu.Queue(context.Background(), r.env.Queue)
		if snapErr = err; err != nil {
			return false
		}
		for _, m := range st.DeadLetters {
			if m.MessageID == msgID {
				out = Outcome{DeadReason: m.DeadLetterReason, DeadDesc: m.DeadLetterDescription}
				return true
			}
		}
		return false
	})
	if found {
		return out
	}
	if snapErr != nil {
		tb.Logf("the last queue snapshot failed: %v", snapErr)
	}
	if st, err := r.env.Emu.Queue(context.Background(), r.env.Queue); err != nil {
		tb.Logf("queue snapshot: %v", err)
	} else {
		tb.Logf("queue: %d active, %d locked, %d dead-lettered, stats %+v", st.Active, st.Locked, st.DeadLettered, st.Stats)
	}
	tb.Logf("connector log (tail): %s", Tail(r.env.Logs(), 3000))
	tb.Fatalf("no reply and no dead letter for message %s (command %q) within %s", msgID, commandID, maxWait)
	return Outcome{}
}

// texts are the results received, raw and decoded.
func (r *RawClient) texts() ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b bytes.Buffer
	for _, raw := range r.replies {
		b.Write(raw)
		b.Write(resultPayload(raw))
	}
	return b.Bytes(), nil
}
