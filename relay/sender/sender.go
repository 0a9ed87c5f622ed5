// Package sender is the SDK the cloud side imports to talk to an
// adwriteback connector: build a command, seal its password(s) to the
// connector's key, sign it, hand it to a Transport, and wait for and verify
// the connector's signed result.
//
// The package owns no network code: a Transport (for example the Service
// Bus one in relay/servicebus, or Memory for tests) moves the bytes.
package sender

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/google/uuid"

	"github.com/adwriteback/adwriteback/relay/keys"
	"github.com/adwriteback/adwriteback/relay/protocol"
)

// Content types of the bodies a Transport carries.
const (
	ContentTypeCommand = "application/vnd.adwriteback.command+json;v=1"
	ContentTypeResult  = "application/vnd.adwriteback.result+json;v=1"
)

// Envelope is one message as a Transport carries it.
type Envelope struct {
	// ID is the command id. A Service Bus transport uses it as the message's
	// MessageID (so the queue's duplicate detection and the connector's
	// idempotency use the same key) on commands, and as the CorrelationID
	// on results.
	ID string
	// Body is the signed protocol envelope (JSON), at most
	// protocol.MaxEnvelopeSize bytes. It is sealed: it holds no plaintext
	// password, but is still not for logs.
	Body []byte
	// ContentType is ContentTypeCommand or ContentTypeResult.
	ContentType string
	// ExpiresAt is when the command stops being valid; a transport should
	// give the message a time-to-live that ends then. Zero for results.
	ExpiresAt time.Time
}

// Transport moves envelopes between the sender and the connector. It is
// declared here, where it is used; implementations live elsewhere.
type Transport interface {
	// Send delivers a command envelope to the connector's queue.
	Send(ctx context.Context, env Envelope) error
	// AwaitResult blocks until the result envelope for commandID is
	// available and returns it, or returns ctx.Err() when ctx ends, or the
	// transport's own error. A result that arrived before the call must
	// still be returned.
	AwaitResult(ctx context.Context, commandID string) (Envelope, error)
}

// Config configures a Client.
type Config struct {
	// Signer is the sender's signing key (required).
	Signer protocol.SigningKey
	// SealTo is the connector key passwords are sealed to (required). During
	// a rotation, switch it to the new key once the connector has it.
	SealTo protocol.SealKey
	// ResultKeys are the connector keys results may be signed with
	// (required to verify results).
	ResultKeys protocol.VerifyKeys
	// Transport moves the bytes (required for Send, Await and Do).
	Transport Transport
	// Status lists the connector's heartbeats (required for Status only).
	Status StatusSource
	// Suite is the HPKE KDF and AEAD (protocol.DefaultSuite if zero).
	Suite protocol.Suite
	// TTL is how long a command stays valid (DefaultTTL if 0).
	TTL time.Duration
	// Clock is the time source (nil: the real clock).
	Clock clockwork.Clock
	// NewID makes command ids (random UUIDs if nil).
	NewID func() string
}

// DefaultTTL is the default command lifetime.
const DefaultTTL = 5 * time.Minute

// ConfigFromKeys fills the key fields of a Config from loaded key files:
// the sender's private key, the connector key to seal to, and every
// connector key whose results are accepted (sealTo is always included).
func ConfigFromKeys(signer *keys.SenderPrivate, sealTo *keys.ConnectorPublic, others ...*keys.ConnectorPublic) (Config, error) {
	all := []*keys.ConnectorPublic{sealTo}
	for _, o := range others {
		if o.KID != sealTo.KID {
			all = append(all, o)
		}
	}
	rk, err := keys.ResultKeysOf(all...)
	if err != nil {
		return Config{}, err
	}
	return Config{Signer: signer.SigningKey(), SealTo: sealTo.SealKey(), ResultKeys: rk}, nil
}

// Client builds, sends and awaits commands. It is safe for concurrent use.
type Client struct {
	cfg Config
}

// New checks cfg and returns a Client.
func New(cfg Config) (*Client, error) {
	var problems []error
	if cfg.Signer.KID == "" || cfg.Signer.Key == nil {
		problems = append(problems, errors.New("Signer is required"))
	}
	if cfg.SealTo.KID == "" || cfg.SealTo.Key == nil {
		problems = append(problems, errors.New("SealTo is required"))
	}
	if len(cfg.ResultKeys) == 0 {
		problems = append(problems, errors.New("ResultKeys are required"))
	}
	if cfg.TTL < 0 || cfg.TTL > protocol.DefaultMaxLifetime {
		problems = append(problems, fmt.Errorf("TTL must be between 0 and %s", protocol.DefaultMaxLifetime))
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("sender: bad config: %w", errors.Join(problems...))
	}
	if cfg.Suite.KDF == nil || cfg.Suite.AEAD == nil {
		cfg.Suite = protocol.DefaultSuite()
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.Clock == nil {
		cfg.Clock = clockwork.NewRealClock()
	}
	if cfg.NewID == nil {
		cfg.NewID = uuid.NewString
	}
	return &Client{cfg: cfg}, nil
}

// Request is one command to send.
type Request struct {
	// ID is the command id; a new random one if empty. Reuse an id only to
	// resend the very same command.
	ID      string
	Op      protocol.Op
	User    protocol.UserRef
	Options protocol.Options
	Actor   protocol.Actor
	// NewPassword is required for reset, change and check.
	NewPassword protocol.Secret
	// OldPassword is required for change.
	OldPassword protocol.Secret
	// TTL overrides the client's TTL.
	TTL time.Duration
}

// Prepared is a sealed, signed command ready for a Transport.
type Prepared struct {
	Command  protocol.Command
	Envelope Envelope
	// Digest is the command's digest, which a v2 result names
	// (protocol.Result.CommandDigest).
	Digest [32]byte
}

// Build makes the command, seals the password(s) and signs it. It does not
// zero the request's secrets: the caller owns them.
func (c *Client) Build(req Request) (*Prepared, error) {
	ttl := req.TTL
	if ttl == 0 {
		ttl = c.cfg.TTL
	}
	id := req.ID
	if id == "" {
		id = c.cfg.NewID()
	}
	now := c.cfg.Clock.Now().UTC().Truncate(time.Millisecond)
	cmd := protocol.Command{
		V: protocol.Version, ID: id, Op: req.Op, User: req.User, Options: req.Options,
		Actor: req.Actor, IssuedAt: protocol.At(now), ExpiresAt: protocol.At(now.Add(ttl)),
	}
	if req.Op.HasSecret() {
		if err := protocol.Seal(&cmd, c.cfg.SealTo, c.cfg.Suite, req.NewPassword, req.OldPassword); err != nil {
			return nil, fmt.Errorf("sender: %w", err)
		}
	} else if !req.NewPassword.IsEmpty() || !req.OldPassword.IsEmpty() {
		return nil, fmt.Errorf("sender: op %q carries no password", req.Op)
	}
	body, err := protocol.SignCommand(&cmd, c.cfg.Signer)
	if err != nil {
		return nil, fmt.Errorf("sender: %w", err)
	}
	digest, err := protocol.EnvelopeDigest(body)
	if err != nil {
		return nil, fmt.Errorf("sender: %w", err)
	}
	return &Prepared{Command: cmd, Digest: digest, Envelope: Envelope{
		ID: id, Body: body, ContentType: ContentTypeCommand, ExpiresAt: cmd.ExpiresAt.Time,
	}}, nil
}

// Send builds the command and hands it to the transport. It returns the
// prepared command (its Command.ID is what to Await).
func (c *Client) Send(ctx context.Context, req Request) (*Prepared, error) {
	if c.cfg.Transport == nil {
		return nil, errors.New("sender: no Transport configured")
	}
	p, err := c.Build(req)
	if err != nil {
		return nil, err
	}
	if err := c.cfg.Transport.Send(ctx, p.Envelope); err != nil {
		return nil, fmt.Errorf("sender: send command %s: %w", p.Command.ID, err)
	}
	return p, nil
}

// ErrWrongCommand is returned when a correctly signed result answers a
// different command than the one awaited: another id, or (v2) the same id
// with another digest.
var ErrWrongCommand = errors.New("result answers a different command")

// Await waits for the result of the prepared command and verifies it.
// Bound the wait with ctx.
func (c *Client) Await(ctx context.Context, p *Prepared) (*protocol.VerifiedResult, error) {
	if c.cfg.Transport == nil {
		return nil, errors.New("sender: no Transport configured")
	}
	id := p.Command.ID
	env, err := c.cfg.Transport.AwaitResult(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("sender: await result of %s: %w", id, err)
	}
	return c.VerifyResult(env.Body, p)
}

// VerifyResult verifies a result envelope body against the configured
// connector keys and checks that it answers the prepared command: its id
// and, for a v2 result, its digest; and that it carries what the
// command's op calls for (a succeeded describe its Policy).
func (c *Client) VerifyResult(body []byte, p *Prepared) (*protocol.VerifiedResult, error) {
	id := p.Command.ID
	r, err := protocol.VerifyResult(body, c.cfg.ResultKeys)
	if err != nil {
		return nil, fmt.Errorf("sender: result of %s: %w", id, err)
	}
	if !r.Answers(id, p.Digest) {
		return nil, fmt.Errorf("sender: result of %s: %w (%s)", id, ErrWrongCommand, r.CommandID)
	}
	if err := r.ValidFor(p.Command.Op); err != nil {
		return nil, fmt.Errorf("sender: result of %s: %w", id, err)
	}
	return r, nil
}

// Do sends the command and waits for its verified result.
func (c *Client) Do(ctx context.Context, req Request) (*protocol.VerifiedResult, error) {
	p, err := c.Send(ctx, req)
	if err != nil {
		return nil, err
	}
	return c.Await(ctx, p)
}
