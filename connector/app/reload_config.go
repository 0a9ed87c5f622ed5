package app

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/adwriteback/adwriteback/connector/config"
	"github.com/adwriteback/adwriteback/connector/engine"
	"github.com/adwriteback/adwriteback/relay/httpreport"
	"github.com/adwriteback/adwriteback/relay/keys"
	"github.com/adwriteback/adwriteback/relay/sender"
	"github.com/adwriteback/adwriteback/relay/transport"
)

// What a reload (SIGHUP) applies without a restart: the key files
// (keys.connector, keys.senders), the HTTPS reporter's settings
// (results.https) and each domain's organisation lists (banned words,
// breached index). Each reloader re-reads the configuration file with
// config.Load, so a new file is checked exactly as at start (permissions
// included); an invalid one is refused whole, with its problems, and
// what is in force stays. A command in flight finishes with what it
// started with.

// registerReloaders registers the reloaders with the process's reload
// (SIGHUP). THE ONE PLACE where they are registered.
func (a *App) registerReloaders() {
	a.OnReload("restart-only settings", a.reportRestartNeeded)
	a.OnReload("keys", a.reloadKeys)
	a.OnReload("reporter", a.reloadReporter)
	a.OnReload("policy lists", a.reloadPolicyLists)
}

// reloadState is what reloads share: the configuration file to re-read
// and the settings in force since the last reload.
type reloadState struct {
	mu      sync.Mutex
	cfgPath string
	getenv  config.Env
	// https is the HTTPS reporter in force (results.mode https only).
	https *swapReporter
	// orgFiles are each domain's organisation lists in force and the
	// files they were loaded from (keepOrgFiles).
	orgFiles map[string]*orgFiles
}

// newConfig re-reads the configuration file the app was built from (the
// app's own configuration when it was built without one); one that does
// not load is refused with its problems.
func (a *App) newConfig(what string) (*config.Config, error) {
	if a.reloadCfg.cfgPath == "" {
		return a.Cfg, nil
	}
	cfg, err := config.Load(a.reloadCfg.cfgPath, a.reloadCfg.getenv)
	if err != nil {
		return nil, a.refuse(what, fmt.Errorf("configuration %s: %w", a.reloadCfg.cfgPath, err))
	}
	return cfg, nil
}

// reportRestartNeeded logs the settings of the configuration file that
// changed but only a restart applies. A file that does not load is the
// other reloaders' to refuse.
func (a *App) reportRestartNeeded(context.Context) error {
	if a.reloadCfg.cfgPath == "" {
		return nil
	}
	cfg, err := config.Load(a.reloadCfg.cfgPath, a.reloadCfg.getenv)
	if err != nil {
		return nil
	}
	if changed := restartNeeded(a.Cfg, cfg); len(changed) > 0 {
		a.Log.Warn("reload: settings changed that only a restart applies", "settings", changed)
	}
	return nil
}

// refuse logs a refused reload and returns err: the reason names files
// and problems, never key material.
func (a *App) refuse(what string, err error) error {
	a.Log.Error("reload refused", "what", what, "err", err)
	return err
}

// reloadKeys re-reads the connector and sender key files and swaps the
// engine's key sets; commands in flight keep theirs.
func (a *App) reloadKeys(ctx context.Context) error {
	a.reloadCfg.mu.Lock()
	defer a.reloadCfg.mu.Unlock()
	cfg, err := a.newConfig("keys")
	if err != nil {
		return err
	}
	conn, senders, err := loadKeyFiles(cfg.Keys)
	if err != nil {
		return a.refuse("keys", err)
	}
	ks, err := engineKeys(conn, senders)
	if err == nil {
		err = a.Engine.SetKeys(ks)
	}
	if err != nil {
		return a.refuse("keys", err)
	}
	a.logKeyChanges(conn, senders)
	a.Keys, a.Senders = conn, senders
	return nil
}

// loadKeyFiles loads the key files k names.
func loadKeyFiles(k config.Keys) ([]*keys.ConnectorPrivate, []*keys.SenderPublic, error) {
	var conn []*keys.ConnectorPrivate
	var senders []*keys.SenderPublic
	for _, f := range k.Connector {
		c, err := keys.LoadConnectorPrivate(f)
		if err != nil {
			return nil, nil, fmt.Errorf("connector key %s: %w", f, err)
		}
		conn = append(conn, c)
	}
	for _, f := range k.Senders {
		s, err := keys.LoadSenderPublic(f)
		if err != nil {
			return nil, nil, fmt.Errorf("sender key %s: %w", f, err)
		}
		senders = append(senders, s)
	}
	return conn, senders, nil
}

// engineKeys are the engine's key sets of the loaded keys; the first
// connector key signs results.
func engineKeys(conn []*keys.ConnectorPrivate, senders []*keys.SenderPublic) (engine.Keys, error) {
	open, err := keys.OpenKeysOf(conn...)
	if err != nil {
		return engine.Keys{}, err
	}
	verify, err := keys.VerifyKeysOf(senders...)
	if err != nil {
		return engine.Keys{}, err
	}
	if len(conn) == 0 {
		return engine.Keys{}, fmt.Errorf("no connector key")
	}
	return engine.Keys{Senders: verify, Open: open, Signer: conn[0].SigningKey()}, nil
}

// logKeyChanges logs the key ids a reload added and removed.
func (a *App) logKeyChanges(conn []*keys.ConnectorPrivate, senders []*keys.SenderPublic) {
	kids := func(n int, kid func(int) string) map[string]bool {
		m := map[string]bool{}
		for i := range n {
			m[kid(i)] = true
		}
		return m
	}
	oldC := kids(len(a.Keys), func(i int) string { return a.Keys[i].KID })
	newC := kids(len(conn), func(i int) string { return conn[i].KID })
	oldS := kids(len(a.Senders), func(i int) string { return a.Senders[i].KID })
	newS := kids(len(senders), func(i int) string { return senders[i].KID })
	a.Log.Info("reload: keys in force", "connector_added", minus(newC, oldC), "connector_removed", minus(oldC, newC),
		"sender_added", minus(newS, oldS), "sender_removed", minus(oldS, newS), "signing_kid", conn[0].KID)
}

// minus is the sorted keys of a not in b.
func minus(a, b map[string]bool) []string {
	var out []string
	for k := range a {
		if !b[k] {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// reloadReporter applies new results.https settings: the next results
// go through a reporter built from them; a result being sent finishes
// with the old one.
func (a *App) reloadReporter(ctx context.Context) error {
	a.reloadCfg.mu.Lock()
	defer a.reloadCfg.mu.Unlock()
	cfg, err := a.newConfig("reporter")
	if err != nil {
		return err
	}
	if a.reloadCfg.https == nil || cfg.Results.Mode != "https" {
		return nil // the mode itself needs a restart (newConfig logged it)
	}
	return a.applyHTTPS(cfg.Results.HTTPS)
}

// applyHTTPS puts the HTTPS reporter of h in force, unless h is the
// one in force.
func (a *App) applyHTTPS(h config.HTTPSResults) error {
	if h == a.reloadCfg.https.settings() {
		return nil
	}
	r, err := newHTTPSReporter(h, &a.Cfg.Queue.Proxy, a.Log)
	if err != nil {
		return a.refuse("reporter", fmt.Errorf("results.https: %w", err))
	}
	a.reloadCfg.https.store(h, r)
	a.Log.Info("reload: HTTPS results reporter in force", "url", h.URL, "ca_file", h.CAFile, "max_attempts", h.MaxAttempts)
	return nil
}

// newHTTPSReporter builds the HTTPS results reporter of h, through the
// queue's outbound proxy p.
func newHTTPSReporter(h config.HTTPSResults, p *config.Proxy, log *slog.Logger) (*httpreport.Reporter, error) {
	return httpreport.New(httpreport.Config{URL: h.URL, CAFile: h.CAFile, MaxAttempts: h.MaxAttempts,
		ContentType: sender.ContentTypeResult, Logger: log, Proxy: p.Config()})
}

// swapReporter is the engine's HTTPS reporter; a reload replaces the
// reporter behind it.
type swapReporter struct {
	cur atomic.Pointer[httpsInForce]
}

// httpsInForce is an HTTPS reporter and the settings it was built from.
type httpsInForce struct {
	settings config.HTTPSResults
	r        *httpreport.Reporter
}

func (s *swapReporter) store(h config.HTTPSResults, r *httpreport.Reporter) {
	s.cur.Store(&httpsInForce{settings: h, r: r})
}

// settings are those in force (zero before the first store).
func (s *swapReporter) settings() config.HTTPSResults {
	if cur := s.cur.Load(); cur != nil {
		return cur.settings
	}
	return config.HTTPSResults{}
}

func (s *swapReporter) Report(ctx context.Context, _ *transport.Delivery, id string, body []byte) error {
	return s.cur.Load().r.Report(ctx, id, body)
}

// reloadPolicyLists re-reads every domain's banned-word list and
// breached index and puts them in force for the next checks; a list
// whose file has not changed since it was loaded is kept as it is (no
// new banned-word index built, no index file opened again). One list
// that does not load refuses them all. An index replaced stays open
// until the app closes, as a check in flight may still read it: one open
// file per change of the index, not per reload.
func (a *App) reloadPolicyLists(ctx context.Context) error {
	a.reloadCfg.mu.Lock()
	defer a.reloadCfg.mu.Unlock()
	cfg, err := a.newConfig("policy lists")
	if err != nil {
		return err
	}
	loads, err := loadOrgLists(cfg, a.Domains, a.reloadCfg.orgFiles)
	if err != nil {
		return a.refuse("policy lists", err)
	}
	for _, ld := range loads {
		if ld.opened != nil {
			a.closers = append(a.closers, ld.opened.Close)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(loads)) {
		ld := loads[name]
		if err := a.Engine.SetOrgLists(name, ld.files.lists()); err != nil {
			return a.refuse("policy lists", err)
		}
		a.reloadCfg.keepOrgFiles(name, ld.files)
		a.Log.Info("reload: organisation lists in force", "domain", name, "banned_words", ld.banned, "breached_index", ld.breached)
	}
	return nil
}

// keepOrgFiles records f as the lists in force for the domain.
func (s *reloadState) keepOrgFiles(domain string, f *orgFiles) {
	if s.orgFiles == nil {
		s.orgFiles = map[string]*orgFiles{}
	}
	s.orgFiles[domain] = f
}

// loadOrgLists loads the lists of cfg's domains that the app serves (a
// new domain needs a restart), keeping those of inForce whose files have
// not changed. On error it closes the indexes it opened.
func loadOrgLists[V any](cfg *config.Config, served map[string]V, inForce map[string]*orgFiles) (map[string]orgLoad, error) {
	loads := map[string]orgLoad{}
	for _, d := range cfg.Domains {
		if _, ok := served[d.Name]; !ok {
			continue
		}
		ld, err := loadOrgFiles(d, inForce[d.Name])
		if err != nil {
			for _, ld := range loads {
				if ld.opened != nil {
					ld.opened.Close()
				}
			}
			return nil, err
		}
		loads[d.Name] = ld
	}
	return loads, nil
}

// restartNeeded names the settings that differ between old and new
// other than those a reload applies.
func restartNeeded(old, new *config.Config) []string {
	o, n := reloadableCleared(old), reloadableCleared(new)
	var changed []string
	ov, nv := reflect.ValueOf(o).Elem(), reflect.ValueOf(n).Elem()
	for i := range ov.NumField() {
		if !reflect.DeepEqual(ov.Field(i).Interface(), nv.Field(i).Interface()) {
			changed = append(changed, ov.Type().Field(i).Tag.Get("yaml"))
		}
	}
	return changed
}

// reloadableCleared is a copy of c without what a reload applies.
func reloadableCleared(c *config.Config) *config.Config {
	cc := *c
	cc.Keys = config.Keys{}
	cc.Results.HTTPS = config.HTTPSResults{}
	cc.Domains = nil
	for _, d := range c.Domains {
		dd := *d
		dd.OrgPolicy.BannedWordsFile, dd.OrgPolicy.BreachedIndex = "", ""
		cc.Domains = append(cc.Domains, &dd)
	}
	return &cc
}
