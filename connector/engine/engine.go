package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/adwriteback/adwriteback/connector/audit"
	"github.com/adwriteback/adwriteback/connector/journal"
	"github.com/adwriteback/adwriteback/connector/policy"
	"github.com/adwriteback/adwriteback/ldapx"
	"github.com/adwriteback/adwriteback/relay/protocol"
	"github.com/adwriteback/adwriteback/relay/transport"
)

// Directory is what the engine needs from one AD domain (ldapx.Client).
type Directory interface {
	FindUser(ctx context.Context, ref ldapx.UserRef) (*ldapx.User, error)
	ReadUser(ctx context.Context, dn string) (*ldapx.User, error)
	TokenGroups(ctx context.Context, dn string) ([]string, error)
	GroupSID(ctx context.Context, dn string) (string, error)
	EffectivePolicy(ctx context.Context, u *ldapx.User) (*ldapx.Policy, error)
	Reset(ctx context.Context, dn, newPassword string, opts ldapx.ResetOptions) (ldapx.Applied, error)
	Change(ctx context.Context, dn, oldPassword, newPassword string) (ldapx.Applied, error)
	Unlock(ctx context.Context, dn string) (ldapx.Applied, error)
}

var _ Directory = (*ldapx.Client)(nil)

// Reporter delivers a signed result for a delivery (reply queue or HTTPS).
type Reporter interface {
	Report(ctx context.Context, d *transport.Delivery, commandID string, signedResult []byte) error
}

// Journal is the durable store (connector/journal).
type Journal interface {
	protocol.ReplayCache
	Get(ctx context.Context, id string) (*journal.Entry, error)
	MarkApplying(ctx context.Context, id, userDN string, pwdLastSetBefore time.Time, pwdVersionBefore uint32) error
	FinishAsync(ctx context.Context, id, code, dc string, result []byte) (wait func(context.Context) error)
	TakeAttempt(ctx context.Context, key, command string, limit int, window time.Duration) (bool, time.Duration, error)
	Writable(ctx context.Context) error
}

var _ Journal = (*journal.Journal)(nil)

// Domain is one AD domain the connector serves.
type Domain struct {
	// Name is the DNS name (adw.test); commands name it in user.domain.
	Name string
	// UPNSuffixes route UPN references; Name is always one.
	UPNSuffixes []string
	Dir         Directory
	// ScopeOUs: a user must be at or below one of these DNs.
	ScopeOUs []string
	// ExcludeGroups (DNs): members, also nested or by primary group, are
	// out of scope.
	ExcludeGroups []string
	// Tier0Groups (DNs): members are refused as protected, like members
	// of the built-in tier-0 groups.
	Tier0Groups []string
	// AllowProtected lets a stale adminCount=1 through (not recommended);
	// never a member of a tier-0 group.
	AllowProtected bool
	// Org extras on top of AD's policy.
	OrgMinLength int
	// BannedMode and TenantName: see policy.Policy.
	BannedMode policy.BannedMode
	TenantName string
	// Banned and Breached are the lists it starts with (SetOrgLists
	// replaces them while running).
	Banned   *policy.BannedList
	Breached policy.BreachChecker
	// lists are the lists SetOrgLists stored (nil: Banned and Breached).
	lists atomic.Pointer[OrgLists]

	// groups are ExcludeGroups and Tier0Groups resolved to SIDs.
	groups groupSIDs
}

// Config wires an Engine.
type Config struct {
	Receiver *protocol.Receiver // its Replay is replaced by the journal adapter
	Signer   protocol.SigningKey
	Journal  Journal
	Reporter Reporter
	Domains  []*Domain
	Audit    *audit.Log
	Logger   *slog.Logger
	Metrics  Metrics
	// Deliveries learns whether each result reached its channel (nil:
	// nobody): the connector's metrics and readiness count on it.
	Deliveries Deliveries

	// The values below, up to Clock, are required (RateWindow only with
	// a rate limit): connector/config owns their defaults, and New lists
	// each one missing.

	// RateLimit operations per user in RateWindow; 0 means no limit.
	RateLimit  int
	RateWindow time.Duration
	// Concurrency caps commands touching AD at once across all domains: it
	// protects the DCs.
	Concurrency int
	// MaxAttempts: a command failing transiently is abandoned (and comes
	// back) until its delivery count reaches this, then answered
	// "transient".
	MaxAttempts uint32
	// WriteWindow is how long a write sent to AD may still land after it
	// was started (the LDAP operation timeout plus a margin). A command
	// found half-way after a restart is not written again before this
	// window has passed since the first attempt.
	WriteWindow time.Duration
	// UnverifiedAuditPerMinute bounds the audit records of messages
	// refused before their signature was checked (a burst of as many,
	// refilled over a minute; the rest are counted in the next record
	// written). 0 writes none; the metric counts them all.
	UnverifiedAuditPerMinute int

	// Clock is the engine's clock (the real one when nil).
	Clock clockwork.Clock

	// UniformAccountCodes answers every refusal that tells something
	// about an account (user_not_found, ambiguous_user, out_of_scope,
	// protected_account, account_disabled) as user_not_found, with one
	// message and nothing else; the audit record, journal and metrics
	// keep the true code (disclose.go). False (results.account_codes:
	// distinct) answers each code as it is.
	UniformAccountCodes bool
}

// Metrics receives the engine's events; nil fields are no-ops. The
// connector's Prometheus registry implements it.
type Metrics interface {
	Command(op, outcome string, d time.Duration)
	Violation(rule string)
	JournalHit()
	Retry()
	// Rejected counts a message dead-lettered without an answer, by
	// reason (protocol.KindName): unverifiable, or a copy.
	Rejected(reason string)
}

// Deliveries learns of every attempt to deliver a result: Delivered is
// called once the Reporter returned, with the outcome the result carries
// (as decided, or as the journal holds it) and the Reporter's error (nil:
// delivered). The wiring code knows the channel.
type Deliveries interface {
	Delivered(outcome string, err error)
}

type noDeliveries struct{}

func (noDeliveries) Delivered(string, error) {}

type noMetrics struct{}

func (noMetrics) Command(string, string, time.Duration) {}
func (noMetrics) Violation(string)                      {}
func (noMetrics) JournalHit()                           {}
func (noMetrics) Retry()                                {}
func (noMetrics) Rejected(string)                       {}

// Engine handles deliveries. It implements transport.Handler.
type Engine struct {
	cfg      Config
	recv     protocol.Receiver
	sem      chan struct{}
	mu       sync.Mutex
	inflight map[string]bool
	// crash is the fault-injection hook (a no-op outside -tags faultinject).
	crash crashPoints
	// journalDown is set when a journal write failed and cleared when the
	// journal takes writes again; meanwhile no new work starts.
	journalDown atomic.Bool
	// stages decide a received command, in order (see Handle);
	// describeStages a describe command (describe.go).
	stages, describeStages []stage
	// unverifiedAudit samples the audit records of unverified messages.
	unverifiedAudit *sampler
	// keys are the key sets in force (SetKeys swaps them; keys.go).
	keys atomic.Pointer[Keys]
}

var _ transport.Handler = (*Engine)(nil)

// New checks cfg and returns an Engine. Every missing or invalid value
// is reported; only Logger, Metrics, Deliveries, Audit and Clock have
// defaults (none, none, nobody, discarded, the real clock).
func New(cfg Config) (*Engine, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if cfg.Clock == nil {
		cfg.Clock = clockwork.NewRealClock()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Deliveries == nil {
		cfg.Deliveries = noDeliveries{}
	}
	if cfg.Metrics == nil {
		cfg.Metrics = noMetrics{}
	}
	if cfg.Audit == nil {
		cfg.Audit = audit.New(discard{})
	}
	crash, err := newCrashPoints()
	if err != nil {
		return nil, err
	}
	e := &Engine{cfg: cfg, recv: *cfg.Receiver, sem: make(chan struct{}, cfg.Concurrency), inflight: map[string]bool{}, crash: crash}
	e.recv.Replay = resumable{cfg.Journal}
	e.keys.Store(&Keys{Senders: cfg.Receiver.Senders, Open: cfg.Receiver.Keys, Signer: cfg.Signer})
	e.unverifiedAudit = newSampler(cfg.UnverifiedAuditPerMinute, cfg.Clock)
	if e.recv.Clock == nil {
		e.recv.Clock = cfg.Clock
	}
	e.stages = []stage{e.findUser, e.settleResumed, e.admit, e.appliedElsewhere, e.rateLimit, e.checkPolicy, e.apply}
	e.describeStages = []stage{e.findUser, e.admit, e.rateLimit, e.describe}
	return e, nil
}

// check lists every problem with cfg.
func (cfg *Config) check() error {
	var errs []error
	problem := func(format string, args ...any) { errs = append(errs, fmt.Errorf("engine: "+format, args...)) }
	if cfg.Receiver == nil {
		problem("no protocol receiver")
	}
	if cfg.Journal == nil {
		problem("no journal")
	}
	if cfg.Reporter == nil {
		problem("no reporter")
	}
	if len(cfg.Domains) == 0 {
		problem("no domain")
	}
	if cfg.Signer.Key == nil {
		problem("no result signing key")
	}
	if cfg.RateLimit < 0 {
		problem("rate limit %d: want 0 (no limit) or more", cfg.RateLimit)
	}
	if cfg.RateLimit > 0 && cfg.RateWindow <= 0 {
		problem("rate limit of %d without a window", cfg.RateLimit)
	}
	if cfg.Concurrency <= 0 {
		problem("concurrency %d: want 1 or more", cfg.Concurrency)
	}
	if cfg.MaxAttempts == 0 {
		problem("no max attempts")
	}
	if cfg.WriteWindow <= 0 {
		problem("no write window")
	}
	return errors.Join(errs...)
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// resumable adapts the journal for the protocol receiver: an id seen
// before whose outcome is not yet stored (the process stopped half-way)
// may be processed again, so its secret is opened; the engine then
// resumes it. Only a finished id is a replay.
type resumable struct{ j Journal }

func (r resumable) Claim(ctx context.Context, id string, digest [32]byte, until time.Time) (protocol.ClaimStatus, error) {
	st, err := r.j.Claim(ctx, id, digest, until)
	if err != nil || st != protocol.ClaimDuplicate {
		return st, err
	}
	e, err := r.j.Get(ctx, id)
	if err != nil {
		return 0, err
	}
	if !answeredBefore(e) {
		return protocol.ClaimNew, nil
	}
	return protocol.ClaimDuplicate, nil
}
