package app

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/adwriteback/adwriteback/connector/audit"
	"github.com/adwriteback/adwriteback/connector/engine"
	"github.com/adwriteback/adwriteback/connector/health"
	"github.com/adwriteback/adwriteback/connector/logevent"
	"github.com/adwriteback/adwriteback/connector/metrics"
	"github.com/adwriteback/adwriteback/ldapx"
	"github.com/adwriteback/adwriteback/relay/transport"
)

// observability builds the metrics registry, the recent-operations ring,
// and the HTTP listener for /livez, /readyz, /metrics and /status.
func (a *App) observability(deps Deps) error {
	m := a.Metrics
	if err := m.WatchQueue(func() metrics.Queue { return metricsQueue(a.Source.Health()) }); err != nil {
		return err
	}
	for name, cl := range a.Domains {
		if err := m.WatchDCs(name, func() []metrics.DC { return metricsDCs(cl.Servers()) }); err != nil {
			return err
		}
	}
	if err := m.WatchCerts(a.clock.Now, a.certs); err != nil {
		return err
	}
	if err := m.WatchHealth(func() metrics.Health {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s := a.Snapshot(ctx)
		return metrics.Health{Ready: health.Evaluate(s).Ready, JournalWritable: s.Journal == nil}
	}); err != nil {
		return err
	}
	a.recent = health.NewRecent(50)
	a.Audit.Subscribe(a.recent.Add)
	a.Audit.Subscribe(a.logOutcome)
	a.HTTPHandler = health.NewHandler(withHTTPTrust(health.Options{
		Snapshot: a.Snapshot,
		Metrics:  promhttp.HandlerFor(a.Registry, promhttp.HandlerOpts{}),
		Recent:   a.recent, Counters: health.CountersFrom(a.Registry, "adwriteback_"),
		Version: deps.Version, Logger: a.Log, Clock: a.clock,
	}, a.Cfg.HTTP))
	if a.Cfg.HTTP.Listen != "" {
		ln, err := net.Listen("tcp", a.Cfg.HTTP.Listen)
		if err != nil {
			return err
		}
		a.httpLn = ln
	}
	return nil
}

// HTTPAddr is the address the health listener is bound to ("" if none).
func (a *App) HTTPAddr() string {
	if a.httpLn == nil {
		return ""
	}
	return a.httpLn.Addr().String()
}

// Snapshot gathers what readiness depends on.
func (a *App) Snapshot(ctx context.Context) health.Snapshot {
	keys := a.Engine.CurrentKeys()
	s := health.Snapshot{
		Now: a.clock.Now(), Queue: healthQueue(a.Source.Health()),
		ConnectorKeys: len(keys.Open), SenderKeys: len(keys.Senders), JournalPath: a.Cfg.Journal.Path,
	}
	jctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	s.Journal = a.Journal.Writable(jctx)
	cancel()
	if a.deliveries != nil {
		r := a.deliveries.Results()
		s.Results = &r
	}
	for _, d := range a.Cfg.Domains {
		cl := a.Domains[d.Name]
		servers := cl.Servers()
		hd := health.Domain{Name: d.Name, DCs: healthDCs(servers)}
		if r := cl.CachedRootDSE(); r != nil {
			hd.PolicyHintsKnown, hd.PolicyHints = true, r.PolicyHintsOID() != ""
		}
		s.Domains = append(s.Domains, hd)
		for _, st := range servers {
			if !st.CertNotAfter.IsZero() {
				s.Certificates = append(s.Certificates, health.CertInfo{Name: "DC certificate " + st.URL, Subject: st.CertSubject, NotAfter: st.CertNotAfter})
			}
		}
		if d.TLS.CAFile != "" {
			if certs, err := health.CertsFromFile("LDAPS CA ("+d.Name+")", d.TLS.CAFile); err == nil {
				s.Certificates = append(s.Certificates, certs...)
			}
		}
	}
	if a.Cfg.HTTP.TLSCertFile != "" {
		if certs, err := health.CertsFromFile("HTTPS listener", a.Cfg.HTTP.TLSCertFile); err == nil {
			s.Certificates = append(s.Certificates, certs...)
		}
	}
	a.tellFacts()
	return s
}

// tellFacts logs, once each, the permanent facts of the environment
// known so far: a domain whose DCs do not offer the policy-hints control
// (readiness shows it as information, not as a fault). Run calls it once
// the first DC answered, Snapshot at each evaluation.
func (a *App) tellFacts() {
	for _, d := range a.Cfg.Domains {
		r := a.Domains[d.Name].CachedRootDSE()
		if r == nil || r.PolicyHintsOID() != "" || !a.facts.first("policy_hints:"+d.Name) {
			continue
		}
		a.Log.Info("the domain controllers do not offer the policy-hints control: admin resets cannot enforce password history (a fact of the domain, reported once)",
			"domain", d.Name)
	}
}

// certs lists the certificates whose days left are metrics: each DC's
// leaf and the HTTPS listener's own.
func (a *App) certs() []metrics.Cert {
	var servers []ldapx.ServerStatus
	for _, d := range a.Cfg.Domains {
		servers = append(servers, a.Domains[d.Name].Servers()...)
	}
	var listener []health.CertInfo
	if a.Cfg.HTTP.TLSCertFile != "" {
		listener, _ = health.CertsFromFile("HTTPS listener", a.Cfg.HTTP.TLSCertFile) // unreadable: no series
	}
	return metricsCerts(servers, a.Cfg.HTTP.Listen, listener)
}

// probeDCs probes every DC of every domain on its domain's schedule
// (domains[].dc_probe_interval), each with its own client's connection
// logic, until ctx ends: see ldapx.Client.ProbeDCs.
func (a *App) probeDCs(ctx context.Context) {
	var wg sync.WaitGroup
	for _, cl := range a.Domains {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl.RunProbes(ctx)
		}()
	}
	wg.Wait()
}

// serveHTTP runs the health listener until ctx ends.
func (a *App) serveHTTP(ctx context.Context) {
	if a.httpLn == nil {
		return
	}
	err := health.Serve(ctx, a.httpLn, health.TLSFiles{
		CertFile: a.Cfg.HTTP.TLSCertFile, KeyFile: a.Cfg.HTTP.TLSKeyFile, ClientCAFile: a.Cfg.HTTP.ClientCAFile,
	}, a.HTTPHandler)
	if err != nil && !errors.Is(err, context.Canceled) {
		a.Log.Error("health listener", "err", err)
	}
}

// timedDir reports each directory call's latency by DC.
type timedDir struct {
	engine.Directory
	m     *metrics.Metrics
	clock clockwork.Clock
}

func (t timedDir) observe(op string, start time.Time, dc string, err error) {
	if dc == "" {
		var le *ldapx.Error
		if errors.As(err, &le) {
			dc = le.DC
		}
	}
	if dc != "" {
		t.m.ObserveLDAP(dc, op, t.clock.Since(start))
	}
}

func (t timedDir) FindUser(ctx context.Context, ref ldapx.UserRef) (*ldapx.User, error) {
	start := t.clock.Now()
	u, err := t.Directory.FindUser(ctx, ref)
	dc := ""
	if u != nil {
		dc = u.DC
	}
	t.observe("find_user", start, dc, err)
	return u, err
}

func (t timedDir) Reset(ctx context.Context, dn, pw string, o ldapx.ResetOptions) (ldapx.Applied, error) {
	start := t.clock.Now()
	a, err := t.Directory.Reset(ctx, dn, pw, o)
	t.observe("reset", start, a.DC, err)
	return a, err
}

func (t timedDir) Change(ctx context.Context, dn, old, pw string) (ldapx.Applied, error) {
	start := t.clock.Now()
	a, err := t.Directory.Change(ctx, dn, old, pw)
	t.observe("change", start, a.DC, err)
	return a, err
}

func (t timedDir) Unlock(ctx context.Context, dn string) (ldapx.Applied, error) {
	start := t.clock.Now()
	a, err := t.Directory.Unlock(ctx, dn)
	t.observe("unlock", start, a.DC, err)
	return a, err
}

// lagHandler records the queue receive lag before handing a delivery on.
func lagHandler(m *metrics.Metrics, clock clockwork.Clock, h transport.Handler) transport.Handler {
	return transport.HandlerFunc(func(ctx context.Context, d *transport.Delivery) transport.Disposition {
		if !d.EnqueuedTime.IsZero() {
			m.ObserveReceiveLag(d.EnqueuedTime, clock.Now())
		}
		return h.Handle(ctx, d)
	})
}

// logOutcome writes one line per command handled, tagged with its outcome
// class (logevent.CommandKind), so that on Windows each class has its own
// event ID. The audit record stays the full account; this line names the
// command and its outcome.
func (a *App) logOutcome(r audit.Record) {
	if r.Event != "" || r.CommandID == "" {
		return
	}
	kind := logevent.CommandKind(r.Outcome)
	level := slog.LevelInfo
	if kind == logevent.CommandFailed {
		level = slog.LevelWarn
	}
	logevent.Log(context.Background(), a.Log, level, kind, "command handled",
		"id", r.CommandID, "op", r.Op, "outcome", r.Outcome, "settlement", r.Settlement)
}
