// Package transport holds the transport-neutral types the connector's
// pipeline and its message sources share: one delivered command, the
// decision of how to settle it, and the handler that decides. It imports
// nothing from Azure (a dependency test holds it to that), so the engine
// depends on this package and never on a queue's SDK; relay/servicebus
// turns Service Bus messages into Deliveries and settles them as told.
package transport

import (
	"context"
	"errors"
	"time"
)

// Delivery is one received command. Body is the signed, sealed envelope:
// it holds no plaintext password but is still not for logs.
type Delivery struct {
	MessageID        string
	Body             []byte
	ContentType      string
	ReplyTo          string
	ReplyToSessionID string
	SessionID        string
	// DeliveryCount is 1 on the first delivery.
	DeliveryCount uint32
	EnqueuedTime  time.Time
	// LockedUntil is the lock's expiry when received (the source renews it).
	LockedUntil time.Time
}

// Action is what to do with a delivery once handled.
type Action int

// Actions.
const (
	// ActionComplete removes the message: the command was answered.
	ActionComplete Action = iota + 1
	// ActionAbandon returns the message for a later retry (after a backoff that grows with the
	// delivery count); the queue's MaxDeliveryCount eventually dead-letters it.
	ActionAbandon
	// ActionDeadLetter moves the message to the dead-letter queue with a reason.
	ActionDeadLetter
)

func (a Action) String() string {
	switch a {
	case ActionComplete:
		return "complete"
	case ActionAbandon:
		return "abandon"
	case ActionDeadLetter:
		return "dead_letter"
	}
	return "unknown"
}

// Disposition is a handler's decision. Reason and Description go into the dead-letter record:
// they must be codes and safe text, never a secret (Description is also truncated and stripped
// of control characters).
type Disposition struct {
	Action      Action
	Reason      string
	Description string
	// Settled, when set, is called once the source has settled the message (or failed to),
	// with what it actually did. The engine writes its audit record there, so the record
	// says what happened to the message rather than what was asked for.
	Settled func(Settlement)
}

// Settlement is what a source actually did with a delivery.
type Settlement struct {
	// Action is the action the source carried out (or tried to).
	Action Action
	// Err is nil when the action took effect. ErrLockLost: the lock was lost first and the
	// message will be redelivered; anything else: the settle call failed (the message comes
	// back when its lock expires).
	Err error
}

// ErrLockLost: the message's lock expired or was lost before it was settled; the message
// will be redelivered (possibly to another instance).
var ErrLockLost = errors.New("message lock lost")

// Report reports s to d's Settled hook, if any. Sources call it after settling.
func (d Disposition) Report(s Settlement) {
	if d.Settled != nil {
		d.Settled(s)
	}
}

// String names the settlement for audit records: completed, abandoned, dead_lettered,
// lock_lost or settle_failed.
func (s Settlement) String() string {
	switch {
	case errors.Is(s.Err, ErrLockLost):
		return "lock_lost"
	case s.Err != nil:
		return "settle_failed"
	}
	switch s.Action {
	case ActionComplete:
		return "completed"
	case ActionAbandon:
		return "abandoned"
	case ActionDeadLetter:
		return "dead_lettered"
	}
	return "unknown"
}

// Complete removes the message: the command was answered.
func Complete() Disposition { return Disposition{Action: ActionComplete} }

// Abandon returns the message for a retry.
func Abandon() Disposition { return Disposition{Action: ActionAbandon} }

// DeadLetter moves the message to the dead-letter queue.
func DeadLetter(reason, description string) Disposition {
	return Disposition{Action: ActionDeadLetter, Reason: reason, Description: description}
}

// Handler processes deliveries; the connector engine implements it. Handle must return when
// ctx ends (shutdown grace over, or the lock was lost); the source then settles as told and
// reports what it did through the disposition's Settled hook.
type Handler interface {
	Handle(ctx context.Context, d *Delivery) Disposition
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, d *Delivery) Disposition

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, d *Delivery) Disposition { return f(ctx, d) }
