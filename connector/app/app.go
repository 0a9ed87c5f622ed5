// Package app wires a running connector from its configuration: the one
// place where every component is built and connected by hand. Commands
// (run, doctor) and the end-to-end tests use it.
//
// It is the only package that imports everything, so the adapters live
// here too: adapt.go turns the LDAP pool's and the Service Bus source's
// state into the plain types health and metrics declare. deps_test.go
// holds every other layer to what it may import.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/adwriteback/adwriteback/connector/policy"

	"github.com/jonboulle/clockwork"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/adwriteback/adwriteback/connector/audit"
	"github.com/adwriteback/adwriteback/connector/config"
	"github.com/adwriteback/adwriteback/connector/engine"
	"github.com/adwriteback/adwriteback/connector/health"
	"github.com/adwriteback/adwriteback/connector/journal"
	"github.com/adwriteback/adwriteback/connector/logevent"
	"github.com/adwriteback/adwriteback/connector/metrics"
	"github.com/adwriteback/adwriteback/connector/presence"
	"github.com/adwriteback/adwriteback/ldapx"
	"github.com/adwriteback/adwriteback/relay/keys"
	"github.com/adwriteback/adwriteback/relay/protocol"
	"github.com/adwriteback/adwriteback/relay/proxy"
	"github.com/adwriteback/adwriteback/relay/sender"
	"github.com/adwriteback/adwriteback/relay/servicebus"
	"github.com/adwriteback/adwriteback/relay/transport"
)

// Deps are what the process gives the app.
type Deps struct {
	Logger *slog.Logger
	// AuditOut replaces the audit file (tests); nil opens audit.path.
	AuditOut io.Writer
	// Clock is the time source of every component (nil: the real clock).
	Clock clockwork.Clock
	// Version is shown on the status page.
	Version string
	// ProbeInterval, when set, replaces every domain's dc_probe_interval
	// (tests probe faster).
	ProbeInterval time.Duration
	// WrapReporter, when set, wraps the result reporter (tests simulate a
	// crash between journaling a result and settling the message).
	WrapReporter func(engine.Reporter) engine.Reporter
	// ConfigPath is the configuration file a reload re-reads, with
	// Getenv (nil: os.Getenv); "" reloads the key and list files the
	// configuration the app was built with names.
	ConfigPath string
	Getenv     config.Env
}

// App is a built connector.
type App struct {
	Cfg     *config.Config
	Log     *slog.Logger
	Journal *journal.Journal
	Audit   *audit.Log
	Domains map[string]*ldapx.Client
	Engine  *engine.Engine
	Source  *servicebus.Source
	// Keys and Senders are the key files in force (a reload replaces
	// them; read them only between reloads).
	Keys        []*keys.ConnectorPrivate
	Senders     []*keys.SenderPublic
	Registry    *prometheus.Registry
	Metrics     *metrics.Metrics
	HTTPHandler http.Handler
	recent      *health.Recent
	presence    *presence.Publisher
	httpLn      net.Listener
	sbClient    *azservicebus.Client
	dials       *servicebus.DialTracker
	replies     *servicebus.ReplySender
	deliveries  *health.Deliveries
	facts       toldOnce
	closers     []func() error
	clock       clockwork.Clock
	reload      reloaders
	// reloadCfg is what the configuration reloaders share (reload_config.go).
	reloadCfg reloadState
}

// NewLogger builds the operational logger from the log section.
func NewLogger(c config.Log, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(strings.ToUpper(c.Level)))
	opts := &slog.HandlerOptions{Level: lvl}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// Build constructs every component. Nothing is dialed yet except opening
// files; on error everything opened is closed. Each step is one named
// method, in the order the components depend on each other.
func Build(ctx context.Context, cfg *config.Config, deps Deps) (a *App, err error) {
	deps.setDefaults()
	built := &App{Cfg: cfg, Log: deps.Logger, Domains: map[string]*ldapx.Client{},
		clock: deps.Clock, reloadCfg: reloadState{cfgPath: deps.ConfigPath, getenv: deps.Getenv}}
	a = built
	defer func() {
		// "return nil, err" has already set a to nil: close what was built.
		if err != nil {
			built.Close(context.Background())
			a = nil
		}
	}()

	a.Registry = prometheus.NewRegistry()
	if a.Metrics, err = metrics.New(a.Registry); err != nil {
		return nil, err
	}
	openKeys, verify, err := a.loadKeys()
	if err != nil {
		return nil, err
	}
	if err := a.openStores(deps); err != nil {
		return nil, err
	}
	domains, err := a.buildDomains(deps)
	if err != nil {
		return nil, err
	}
	if err := a.openServiceBus(); err != nil {
		return nil, err
	}
	reporter, err := a.buildReporter(deps)
	if err != nil {
		return nil, err
	}
	a.deliveries = health.NewDeliveries(cfg.Results.Mode, cfg.Results.UndeliverableAfter)
	a.Engine, err = engine.New(engine.Config{
		Receiver: &protocol.Receiver{Senders: verify, Keys: openKeys, Clock: deps.Clock},
		Signer:   a.Keys[0].SigningKey(), Journal: a.Journal, Reporter: reporter, Domains: domains,
		Audit: a.Audit, Logger: deps.Logger, Metrics: a.Metrics,
		Deliveries: deliveryWatch{channel: cfg.Results.Mode, m: a.Metrics, d: a.deliveries, clock: deps.Clock},
		RateLimit:  *cfg.Limits.PerUser, RateWindow: cfg.Limits.Window,
		Concurrency: cfg.Limits.Concurrency, MaxAttempts: uint32(cfg.Limits.MaxAttempts), Clock: deps.Clock,
		WriteWindow: maxOpTimeout(cfg) + 5*time.Second, UnverifiedAuditPerMinute: cfg.Audit.UnverifiedPerMinute,
		UniformAccountCodes: cfg.Results.AccountCodes == config.AccountCodesUniform,
	})
	if err != nil {
		return nil, err
	}
	a.Source, err = servicebus.NewSource(a.sbClient, servicebus.SourceConfig{
		Queue: cfg.Queue.Name, Prefetch: cfg.Queue.Prefetch, Concurrency: cfg.Queue.Concurrency,
		ShutdownGrace: cfg.Queue.ShutdownGrace, Logger: deps.Logger, Clock: deps.Clock, Dials: a.dials,
	}, lagHandler(a.Metrics, a.clock, a.Engine))
	if err != nil {
		return nil, err
	}
	if err := a.observability(deps); err != nil {
		return nil, err
	}
	if err := a.buildPresence(deps); err != nil {
		return nil, err
	}
	a.registerReloaders()
	return a, nil
}

func (d *Deps) setDefaults() {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Clock == nil {
		d.Clock = clockwork.NewRealClock()
	}
	if d.Getenv == nil {
		d.Getenv = os.Getenv
	}
}

// loadKeys reads the connector's private keys and the trusted senders'
// public keys, and returns them as the protocol's key sets.
func (a *App) loadKeys() (protocol.OpenKeys, protocol.VerifyKeys, error) {
	var err error
	if a.Keys, a.Senders, err = loadKeyFiles(a.Cfg.Keys); err != nil {
		return nil, nil, err
	}
	openKeys, err := keys.OpenKeysOf(a.Keys...)
	if err != nil {
		return nil, nil, err
	}
	verify, err := keys.VerifyKeysOf(a.Senders...)
	if err != nil {
		return nil, nil, err
	}
	return openKeys, verify, nil
}

// openStores opens the journal and the audit log.
func (a *App) openStores(deps Deps) (err error) {
	a.Journal, err = journal.Open(a.Cfg.Journal.Path, journal.Options{Retention: a.Cfg.Journal.Retention, Clock: deps.Clock})
	if err != nil {
		return err
	}
	a.closers = append(a.closers, a.Journal.Close)
	switch {
	case deps.AuditOut != nil:
		a.Audit = audit.New(deps.AuditOut)
	case a.Cfg.Audit.Path == "-":
		a.Audit = audit.New(os.Stdout)
	default:
		if a.Audit, err = audit.OpenFile(a.Cfg.Audit.Path); err != nil {
			return err
		}
	}
	a.closers = append(a.closers, a.Audit.Close)
	// Only a file opened from audit.path has something to reopen.
	a.OnReload("audit log", func(context.Context) error { return a.Audit.Reopen() })
	return nil
}

// buildDomains builds each domain's LDAP client and organisation rules, and
// the engine's view of the domain.
func (a *App) buildDomains(deps Deps) ([]*engine.Domain, error) {
	var domains []*engine.Domain
	for _, d := range a.Cfg.Domains {
		dd := *d
		if deps.ProbeInterval > 0 {
			dd.DCProbeInterval = deps.ProbeInterval
		}
		cl, err := newDirectory(&dd, deps.Logger, deps.Clock)
		if err != nil {
			return nil, err
		}
		if d.TLS.InsecureSkipVerify {
			deps.Logger.Warn("TLS VERIFICATION IS OFF for this domain: passwords can be read by anyone on the path", "domain", d.Name)
		}
		a.Domains[d.Name] = cl
		a.closers = append(a.closers, cl.Close)
		ed := &engine.Domain{Name: d.Name, UPNSuffixes: d.UPNSuffixes, Dir: timedDir{cl, a.Metrics, deps.Clock}, ScopeOUs: d.Scope.OUs,
			ExcludeGroups: d.Scope.ExcludeGroups, Tier0Groups: d.Scope.Tier0Groups, AllowProtected: d.Scope.AllowProtected,
			OrgMinLength: d.OrgPolicy.MinLength, BannedMode: policy.BannedMode(d.OrgPolicy.BannedMode), TenantName: d.OrgPolicy.TenantName}
		ld, err := loadOrgFiles(d, nil)
		if err != nil {
			return nil, err
		}
		ed.Banned = ld.files.banned
		if idx := ld.opened; idx != nil {
			ed.Breached = idx
			a.closers = append(a.closers, idx.Close)
		}
		// A reload keeps the lists whose files have not changed.
		a.reloadCfg.keepOrgFiles(d.Name, ld.files)
		domains = append(domains, ed)
	}
	return domains, nil
}

// openServiceBus builds the Service Bus client (it connects lazily). Its
// dial tracker goes to the Source, so a proxy's refusal shows in /readyz.
func (a *App) openServiceBus() (err error) {
	sbCfg := a.Cfg.Queue.ServiceBus()
	a.dials = servicebus.NewDialTracker()
	sbCfg.Dials = a.dials
	if p := a.Cfg.Queue.Proxy; p.URL != "" {
		a.Log.Info("outbound proxy for the queue, Entra ID and HTTPS results", "proxy", proxy.Redact(p.URL),
			"authenticated", p.Username != "", "no_proxy", p.NoProxy)
	}
	// Fail fast inside the SDK: the Source reconnects with its own backoff
	// and reports the link as down meanwhile, which readiness needs to see
	// within seconds, not minutes.
	sbCfg.RetryOptions = azservicebus.RetryOptions{MaxRetries: 2, RetryDelay: 250 * time.Millisecond, MaxRetryDelay: 2 * time.Second}
	if a.sbClient, err = servicebus.NewClient(sbCfg); err != nil {
		return fmt.Errorf("service bus: %w", err)
	}
	a.closers = append(a.closers, a.quiet("service bus client", func() error { return a.sbClient.Close(context.Background()) }))
	return nil
}

// buildReporter builds where results go: the configured reply queue (never
// a message's ReplyTo), or an HTTPS endpoint (wrapped by deps.WrapReporter, when set).
func (a *App) buildReporter(deps Deps) (engine.Reporter, error) {
	var reporter engine.Reporter
	switch a.Cfg.Results.Mode {
	case "https":
		h := a.Cfg.Results.HTTPS
		r, err := newHTTPSReporter(h, &a.Cfg.Queue.Proxy, deps.Logger)
		if err != nil {
			return nil, err
		}
		a.reloadCfg.https = &swapReporter{}
		a.reloadCfg.https.store(h, r)
		reporter = a.reloadCfg.https
	default:
		a.replies = servicebus.NewReplySender(a.sbClient, a.Cfg.Results.ReplyQueue, a.Cfg.Results.TTL, sender.ContentTypeResult)
		a.closers = append(a.closers, a.quiet("reply sender", func() error { return a.replies.Close(context.Background()) }))
		reporter = queueReporter{a.replies}
	}
	if deps.WrapReporter != nil {
		reporter = deps.WrapReporter(reporter)
	}
	return reporter, nil
}

// maxOpTimeout is the longest any LDAP write may take before the
// connector gives up on it.
func maxOpTimeout(cfg *config.Config) time.Duration {
	var m time.Duration
	for _, d := range cfg.Domains {
		m = max(m, d.OpTimeout)
	}
	return m
}

// Run receives and handles commands until ctx ends, then shuts down
// gracefully: no new receives, in-flight commands finish within the grace
// period (the rest are abandoned and come back), and the journal and audit
// log are flushed by Close.
func (a *App) Run(ctx context.Context) error {
	if err := a.resolveScopeGroups(ctx); err != nil {
		return err
	}
	a.tellFacts()
	var wg sync.WaitGroup
	for _, f := range []func(context.Context){a.sweep, a.serveHTTP, a.probeDCs, a.heartbeat} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(ctx)
		}()
	}
	a.Log.Info("connector running", logevent.Attr(logevent.Start), "queue", a.Cfg.Queue.Name, "domains", len(a.Domains))
	// The readiness watcher starts after "connector running", so that its
	// first "connector ready" follows it.
	wg.Add(1)
	go func() {
		defer wg.Done()
		a.watchReadiness(ctx)
	}()
	err := a.Source.Run(ctx)
	wg.Wait()
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	a.Log.Info("connector stopped", logevent.Attr(logevent.Stop))
	return nil
}

// resolveScopeGroups resolves each domain's excluded and tier-0 groups
// to their SIDs before any command is taken. A group that does not exist
// fails the start (it would exclude nobody); a DC that does not answer
// does not: the engine resolves the groups before the domain's first
// command, which waits until then.
func (a *App) resolveScopeGroups(ctx context.Context) error {
	err := a.Engine.ResolveGroups(ctx)
	if errors.Is(err, engine.ErrScopeGroup) {
		return fmt.Errorf("%w (fix the DN, or remove it from the list)", err)
	}
	if err != nil {
		a.Log.Warn("scope groups not resolved yet: the domain's commands wait until a DC answers", "err", err)
	}
	return nil
}

func (a *App) sweep(ctx context.Context) {
	t := a.clock.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if sw, err := a.Journal.Sweep(ctx, a.Cfg.Limits.Window); err != nil {
			a.Log.Warn("journal sweep failed", "err", err)
		} else {
			for _, e := range sw.Unresolved {
				a.Log.Warn("journal swept a command whose outcome was never recorded (stopped between the write to AD and its result; check the account)",
					"id", e.ID, "user_dn", e.UserDN, "applying_since", e.Applying)
			}
			if sw.Finished > 0 || len(sw.Unresolved) > 0 {
				a.Log.Info("journal swept", "expired", sw.Finished, "unresolved", len(sw.Unresolved))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.Chan():
		}
	}
}

// Close releases everything, in reverse order of creation.
func (a *App) Close(ctx context.Context) error {
	var errs []error
	for i := len(a.closers) - 1; i >= 0; i-- {
		if err := a.closers[i](); err != nil {
			errs = append(errs, err)
		}
	}
	a.closers = nil
	return errors.Join(errs...)
}

// quiet logs a close error instead of returning it: closing a Service Bus
// link on a dead connection fails, and nothing is lost by it.
func (a *App) quiet(what string, close func() error) func() error {
	return func() error {
		if err := close(); err != nil {
			a.Log.Debug("close", "what", what, "err", err)
		}
		return nil
	}
}

type queueReporter struct{ r *servicebus.ReplySender }

func (q queueReporter) Report(ctx context.Context, d *transport.Delivery, id string, body []byte) error {
	return q.r.Send(ctx, servicebus.Reply{CorrelationID: id, SessionID: d.ReplyToSessionID,
		Body: body, ContentType: sender.ContentTypeResult})
}
