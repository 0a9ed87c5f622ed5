package stack

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"github.com/adwriteback/adwriteback/relay/protocol"
	"github.com/adwriteback/adwriteback/relay/sender"
	"github.com/adwriteback/adwriteback/relay/servicebus"
)

// SenderOptions say where NewSender sends commands and with which keys.
type SenderOptions struct {
	// ConnectionString of the emulator (or namespace).
	ConnectionString string
	// Queue takes the commands; ReplyQueue is where results are read.
	Queue, ReplyQueue string
	// MaxPending is the CommandSender's (0: its default).
	MaxPending int
	// Keys: the sender signs with Keys.Sender and seals to Keys.Connector.
	Keys Keys
	// TTL of the commands sent (0: the sender SDK's default).
	TTL time.Duration
	// Configure, if set, edits the sender SDK's config last.
	Configure func(*sender.Config)
}

// Sender is a sender SDK client over the real Service Bus SDK, with the
// CommandSender it sends through and the Service Bus client under both.
type Sender struct {
	Client   *sender.Client
	Commands *servicebus.CommandSender
	Bus      *azservicebus.Client

	env *Env // for Do; nil outside a stack
}

// NewSender connects a sender SDK client to o.Queue and o.ReplyQueue. Close
// it when done.
func NewSender(o SenderOptions) (*Sender, error) {
	cfg, err := sender.ConfigFromKeys(o.Keys.Sender, o.Keys.Connector.Public())
	if err != nil {
		return nil, fmt.Errorf("stack: sender config: %w", err)
	}
	sb, err := servicebus.NewClient(servicebus.Config{Auth: servicebus.AuthConnectionString, ConnectionString: o.ConnectionString})
	if err != nil {
		return nil, fmt.Errorf("stack: service bus client: %w", err)
	}
	cs, err := servicebus.NewCommandSender(sb, servicebus.CommandSenderConfig{Queue: o.Queue, ReplyQueue: o.ReplyQueue, MaxPending: o.MaxPending})
	if err != nil {
		sb.Close(context.Background())
		return nil, fmt.Errorf("stack: command sender: %w", err)
	}
	s := &Sender{Commands: cs, Bus: sb}
	cfg.Transport = cs
	if o.TTL != 0 {
		cfg.TTL = o.TTL
	}
	if o.Configure != nil {
		o.Configure(&cfg)
	}
	if s.Client, err = sender.New(cfg); err != nil {
		s.Close(context.Background())
		return nil, fmt.Errorf("stack: sender: %w", err)
	}
	return s, nil
}

// Close closes the CommandSender, then the Service Bus client.
func (s *Sender) Close(ctx context.Context) error {
	return errors.Join(s.Commands.Close(ctx), s.Bus.Close(ctx))
}

// SenderOption edits the options of a sender of the stack.
type SenderOption func(*SenderOptions)

// MaxPending is the CommandSender's MaxPending.
func MaxPending(n int) SenderOption { return func(o *SenderOptions) { o.MaxPending = n } }

// TTL of the commands sent.
func TTL(d time.Duration) SenderOption { return func(o *SenderOptions) { o.TTL = d } }

// SenderConfig edits the sender SDK's config last (e.g. seal to another
// key).
func SenderConfig(f func(*sender.Config)) SenderOption {
	return func(o *SenderOptions) {
		prev := o.Configure
		o.Configure = func(c *sender.Config) {
			if prev != nil {
				prev(c)
			}
			f(c)
		}
	}
}

// Sender is a sender SDK client of the stack, over the real Service Bus
// SDK, closed at the end of the test; opts follow ForEverySender's.
func (e *Env) Sender(opts ...SenderOption) *Sender {
	e.tb.Helper()
	o := SenderOptions{ConnectionString: e.ConnectionString, Queue: e.Queue, ReplyQueue: e.Replies, Keys: e.Keys}
	for _, f := range append(append([]SenderOption(nil), e.setup.Sender...), opts...) {
		f(&o)
	}
	s, err := NewSender(o)
	if err != nil {
		e.tb.Fatalf("%v", err)
	}
	s.env = e
	e.tb.Cleanup(func() { s.Close(context.Background()) })
	return s
}

// Do sends req (as a self-service request from "harness" unless it names its
// actor) and waits up to 90 s for its verified result, which it records
// for the leak scan. An error fails the test.
func (s *Sender) Do(req sender.Request) *protocol.VerifiedResult {
	tb := s.env.tb
	tb.Helper()
	if req.Actor.Kind == "" {
		req.Actor = protocol.Actor{Kind: protocol.ActorSelfService, ID: "harness"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	res, err := s.Client.Do(ctx, req)
	if err != nil {
		tb.Fatalf("%s %+v: %v", req.Op, req.User, err)
	}
	fmt.Fprintf(s.env.Results, "%+v\n", res.Result)
	return res
}
