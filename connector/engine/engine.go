package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

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
	IsMemberOf(ctx context.Context, dn, group string) (bool, error)
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
	TakeAttempt(ctx context.Context, key string, limit int, window time.Duration) (bool, time.Duration, error)
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
	// ExcludeGroups: members (also nested) are out of scope.
	ExcludeGroups []string
	// AllowProtected lets adminCount=1 accounts through (not recommended).
	AllowProtected bool
	// Org extras on top of AD's policy.
	OrgMinLength int
	Banned       *policy.BannedList
	Breached     policy.BreachChecker
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

	// RateLimit operations per user in RateWindow (default 5 in 24h; a
	// negative limit disables it).
	RateLimit  int
	RateWindow time.Duration
	// Concurrency caps commands touching AD at once across all domains
	// (default 4): it protects the DCs.
	Concurrency int
	// MaxAttempts: a command failing transiently is abandoned (and comes
	// back) until its delivery count reaches this, then answered
	// "transient" (default 5).
	MaxAttempts uint32
	// WriteWindow is how long a write sent to AD may still land after it
	// was started (the LDAP operation timeout plus a margin; default 35s).
	// A command found half-way after a restart is not written again before
	// this window has passed since the first attempt.
	WriteWindow time.Duration
	// Now is the clock.
	Now func() time.Time
	// After waits (time.After by default); tests inject it.
	After func(time.Duration) <-chan time.Time
}

// Metrics receives the engine's events; nil fields are no-ops. The
// connector's Prometheus registry implements it.
type Metrics interface {
	Command(op, outcome string, d time.Duration)
	Violation(rule string)
	JournalHit()
	Retry()
}

type noMetrics struct{}

func (noMetrics) Command(string, string, time.Duration) {}
func (noMetrics) Violation(string)                      {}
func (noMetrics) JournalHit()                           {}
func (noMetrics) Retry()                                {}

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
}

var _ transport.Handler = (*Engine)(nil)

// New checks cfg and returns an Engine.
func New(cfg Config) (*Engine, error) {
	var errs []error
	if cfg.Receiver == nil {
		errs = append(errs, errors.New("engine: no protocol receiver"))
	}
	if cfg.Journal == nil {
		errs = append(errs, errors.New("engine: no journal"))
	}
	if cfg.Reporter == nil {
		errs = append(errs, errors.New("engine: no reporter"))
	}
	if len(cfg.Domains) == 0 {
		errs = append(errs, errors.New("engine: no domain"))
	}
	if cfg.Signer.Key == nil {
		errs = append(errs, errors.New("engine: no result signing key"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.RateLimit == 0 {
		cfg.RateLimit = 5
	}
	if cfg.RateWindow <= 0 {
		cfg.RateWindow = 24 * time.Hour
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 4
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = 5
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.After == nil {
		cfg.After = time.After
	}
	if cfg.WriteWindow <= 0 {
		cfg.WriteWindow = 35 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
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
	if e.recv.Now == nil {
		e.recv.Now = cfg.Now
	}
	return e, nil
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
	if e.State != journal.StateDone {
		return protocol.ClaimNew, nil
	}
	return protocol.ClaimDuplicate, nil
}

// route picks the domain for a user reference.
func (e *Engine) route(ref protocol.UserRef) (*Domain, error) { return Route(e.cfg.Domains, ref) }

// Route picks, among domains, the one a user reference belongs to: the
// domain it names, else the one whose name or UPN suffixes match its UPN,
// else the only one. Only Name and UPNSuffixes are read.
func Route(domains []*Domain, ref protocol.UserRef) (*Domain, error) {
	want := strings.ToLower(ref.Domain)
	if want == "" && ref.UPN != "" {
		if i := strings.LastIndexByte(ref.UPN, '@'); i >= 0 {
			suffix := strings.ToLower(ref.UPN[i+1:])
			for _, d := range domains {
				if strings.EqualFold(d.Name, suffix) {
					return d, nil
				}
				for _, s := range d.UPNSuffixes {
					if strings.EqualFold(s, suffix) {
						return d, nil
					}
				}
			}
			if len(domains) > 1 {
				return nil, fmt.Errorf("no configured domain has the UPN suffix %q", suffix)
			}
		}
	}
	if want == "" {
		if len(domains) == 1 {
			return domains[0], nil
		}
		return nil, errors.New("several domains are configured and the command names none")
	}
	for _, d := range domains {
		if strings.EqualFold(d.Name, want) {
			return d, nil
		}
	}
	return nil, fmt.Errorf("domain %q is not served by this connector", ref.Domain)
}

// inScope reports whether dn is at or below one of the OUs.
func inScope(dn string, ous []string) bool {
	if len(ous) == 0 {
		return true
	}
	l := strings.ToLower(normDN(dn))
	for _, ou := range ous {
		o := strings.ToLower(normDN(ou))
		if l == o || strings.HasSuffix(l, ","+o) {
			return true
		}
	}
	return false
}

// normDN removes spaces around RDN separators ("OU=A, DC=x" -> "OU=A,DC=x").
func normDN(dn string) string {
	parts := strings.Split(dn, ",")
	for i, p := range parts {
		kv := strings.SplitN(strings.TrimSpace(p), "=", 2)
		if len(kv) == 2 {
			parts[i] = strings.TrimSpace(kv[0]) + "=" + strings.TrimSpace(kv[1])
		} else {
			parts[i] = strings.TrimSpace(p)
		}
	}
	return strings.Join(parts, ",")
}
