package protocol

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jonboulle/clockwork"
)

// Defaults for Receiver.
const (
	// DefaultSkew is the clock difference tolerated between sender and
	// connector, on both issuedAt and expiresAt.
	DefaultSkew = 2 * time.Minute
	// DefaultMaxLifetime is the longest expiresAt - issuedAt accepted. It
	// also bounds how long the replay cache must remember an id.
	DefaultMaxLifetime = time.Hour
)

// Receiver is the connector side of the protocol: it turns raw command
// envelopes into verified, opened commands, or a typed *Error.
type Receiver struct {
	// Senders are the trusted sender public keys by key id.
	Senders VerifyKeys
	// Keys are the connector's HPKE private keys by key id.
	Keys OpenKeys
	// Replay remembers ids; required.
	Replay ReplayCache
	// Clock is the receiver's clock (the real one when nil).
	Clock clockwork.Clock
	// Skew is the tolerated clock skew (DefaultSkew if 0).
	Skew time.Duration
	// MaxLifetime is the longest accepted command lifetime
	// (DefaultMaxLifetime if 0).
	MaxLifetime time.Duration
}

// Received is a command that passed every check, with its opened secrets.
// Call Secrets.Zero when done with them.
type Received struct {
	*VerifiedCommand
	Secrets Secrets
}

// Receive checks, in this order: size and strict syntax of the envelope;
// signature (by a configured sender key); strict syntax and every field of
// the command; that messageID, the id the transport carried the message
// under (Service Bus: its MessageId), is the command's id (ErrMessageID
// otherwise: a copy put on the queue under a new id, which must neither
// run nor claim the id); lifetime within MaxLifetime; not issued more than Skew in the
// future; not expired more than Skew ago; opens the sealed secret (by the
// connector key id it names) and validates the passwords; then claims the
// id in the replay cache. Only a command that passes every check consumes
// its id. Every error is a *Error; after the signature has verified, its
// CommandID is set.
func (r *Receiver) Receive(ctx context.Context, raw []byte, messageID string) (*Received, error) {
	if r.Replay == nil {
		return nil, errors.New("protocol: Receiver.Replay is required")
	}
	v, err := VerifyCommand(raw, r.Senders)
	if err != nil {
		return nil, err
	}
	out, perr := r.accept(ctx, v, messageID)
	if perr != nil {
		perr.CommandID = v.ID
		return nil, perr
	}
	return out, nil
}

// accept runs the checks after the signature, in order: the transport's
// id, the times, the secret, the replay claim.
func (r *Receiver) accept(ctx context.Context, v *VerifiedCommand, messageID string) (*Received, *Error) {
	if messageID != v.ID {
		return nil, newError(ErrMessageID, "the message id must be the command id", nil)
	}
	if err := r.checkTimes(v); err != nil {
		return nil, err
	}
	out := &Received{VerifiedCommand: v}
	if v.Op.HasSecret() {
		s, err := v.Open(r.Keys)
		if err != nil {
			return nil, asError(err)
		}
		out.Secrets = s
	}
	if err := r.claim(ctx, v); err != nil {
		out.Secrets.Zero()
		return nil, err
	}
	return out, nil
}

// checkTimes: the lifetime within MaxLifetime, not issued more than Skew
// ahead, not expired more than Skew ago.
func (r *Receiver) checkTimes(v *VerifiedCommand) *Error {
	skew, maxLife := r.skew(), r.maxLifetime()
	clock := r.Clock
	if clock == nil {
		clock = clockwork.NewRealClock()
	}
	now := clock.Now()
	if life := v.ExpiresAt.Sub(v.IssuedAt.Time); life > maxLife {
		return invalid("expiresAt", fmt.Sprintf("lifetime %s exceeds the maximum %s", life, maxLife))
	}
	if v.IssuedAt.After(now.Add(skew)) {
		return newError(ErrNotYetValid, fmt.Sprintf("issuedAt %s is more than %s ahead of the connector clock", v.IssuedAt.Format(time.RFC3339), skew), nil)
	}
	if !now.Before(v.ExpiresAt.Add(skew)) {
		return newError(ErrExpired, fmt.Sprintf("expired at %s", v.ExpiresAt.Format(time.RFC3339)), nil)
	}
	return nil
}

// claim records the id in the replay cache until it can no longer verify;
// only a new id passes.
func (r *Receiver) claim(ctx context.Context, v *VerifiedCommand) *Error {
	status, err := r.Replay.Claim(ctx, v.ID, v.Digest, v.ExpiresAt.Add(r.skew()))
	switch {
	case err != nil:
		return newError(ErrReplayCache, "", err)
	case status == ClaimNew:
		return nil
	case status == ClaimDuplicate:
		return newError(ErrReplayed, "", nil)
	}
	return newError(ErrIDConflict, "", nil)
}

// maxLifetime is the longest accepted command lifetime.
func (r *Receiver) maxLifetime() time.Duration {
	if r.MaxLifetime <= 0 {
		return DefaultMaxLifetime
	}
	return r.MaxLifetime
}

// skew is the tolerated clock skew.
func (r *Receiver) skew() time.Duration {
	if r.Skew <= 0 {
		return DefaultSkew
	}
	return r.Skew
}
