package stack

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

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
