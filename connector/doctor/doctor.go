package doctor

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/go-ldap/ldap/v3"

	"github.com/jonboulle/clockwork"

	"github.com/adwriteback/adwriteback/connector/config"
	"github.com/adwriteback/adwriteback/ldapx"
)

// Options configure a run.
type Options struct {
	ConfigPath string
	Getenv     func(string) string
	// Timeout bounds each network step (dial, handshake, bind, token,
	// queue peek); default 10s.
	Timeout time.Duration
	// ReplyQueue overrides the queue whose Send right is checked ("":
	// results.reply_queue, where results go).
	ReplyQueue string
	// Injected dependencies; nil means the real thing.
	Clock    clockwork.Clock
	Dialer   Dialer
	Resolver ldapx.SRVResolver
	Logger   *slog.Logger
}

func (o *Options) setDefaults() {
	if o.Getenv == nil {
		o.Getenv = func(string) string { return "" }
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Clock == nil {
		o.Clock = clockwork.NewRealClock()
	}
	if o.Dialer == nil {
		o.Dialer = &net.Dialer{}
	}
	if o.Resolver == nil {
		o.Resolver = net.DefaultResolver
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Run loads the configuration and runs every check. It never returns an
// error: whatever goes wrong is a check in the report.
func Run(ctx context.Context, opts Options) *Report {
	opts.setDefaults()
	rep := &Report{Config: opts.ConfigPath}
	cfg, err := config.Load(opts.ConfigPath, opts.Getenv)
	rep.Add(CheckConfig(cfg, err, opts.ConfigPath))
	if err != nil {
		return rep
	}
	for i, d := range cfg.Domains {
		rep.Add(checkDomain(ctx, opts, i, d)...)
	}
	rep.Add(CheckConnectorKeys(cfg.Keys.Connector)...)
	rep.Add(CheckSenderKeys(cfg.Keys.Senders)...)
	rep.Add(CheckJournalPath(cfg.Journal.Path), CheckAuditPath(cfg.Audit.Path))
	rep.Add(CheckProxy(ctx, cfg.Queue, opts.Timeout))
	ns := probeNamespace(ctx, cfg.Queue, opts)
	rep.Add(ns.TLS)
	tok := probeToken(ctx, cfg.Queue, opts)
	rep.Add(tok.Check)
	var clocks []clockSource
	if ns.HTTPS != nil {
		clocks = append(clocks, clockSource{Name: ns.Source, Date: ns.HTTPS.Date, Local: ns.HTTPS.Local})
	}
	rep.Add(CheckClock(append(clocks, tok.Clock)))
	rep.Add(queueChecks(ctx, cfg, opts, tok.Check)...)
	rep.Redact(append(secretsOf(cfg), tok.Token)...)
	return rep
}

// queueChecks runs the queue checks (Listen on the command queue, Send on
// the reply queue and the status queue) unless the token check failed:
// without a token they could only repeat it.
func queueChecks(ctx context.Context, cfg *config.Config, opts Options, token Check) []Check {
	where := queueEndpoint(cfg.Queue)
	var sends []SendTarget
	var replySkip *Check
	if cfg.Results.Mode == "https" {
		c := skip("reply queue", "", "results.mode https: results go to results.https.url, not to a queue")
		replySkip = &c
	} else if reply := cmp.Or(opts.ReplyQueue, cfg.Results.ReplyQueue); reply != "" {
		sends = append(sends, ReplyTarget(reply))
	}
	if cfg.Status.Queue != "" {
		sends = append(sends, StatusTarget(cfg.Status.Queue))
	}
	var out []Check
	if token.Status == Fail {
		out = []Check{skip("queue", where+"/"+cfg.Queue.Name, "no token (see the entra token check)")}
		for _, t := range sends {
			out = append(out, skip(t.Check, where+"/"+t.Queue, "no token (see the entra token check)"))
		}
	} else {
		out = CheckQueues(ctx, cfg.Queue, opts.Timeout, sends...)
	}
	if replySkip != nil {
		out = append(out, *replySkip)
	}
	return out
}

// secretsOf lists every secret value in cfg, for the final scrub.
func secretsOf(cfg *config.Config) []string {
	s := []string{cfg.Queue.ConnectionString, cfg.Queue.ClientSecret, cfg.Queue.CertificatePassword, cfg.Queue.Proxy.Password}
	if k := connStringValue(cfg.Queue.ConnectionString, "SharedAccessKey"); k != "" {
		s = append(s, k)
	}
	for _, d := range cfg.Domains {
		s = append(s, d.Bind.Password)
	}
	return s
}

// connStringValue is the value of key in a Service Bus connection string
// ("" when absent).
func connStringValue(cs, key string) string {
	for part := range strings.SplitSeq(cs, ";") {
		if k, v, ok := strings.Cut(strings.TrimSpace(part), "="); ok && strings.EqualFold(k, key) {
			return v
		}
	}
	return ""
}

func passwordSource(i int, d *config.Domain) string {
	return sourceOf(fmt.Sprintf("domains[%d].bind.password", i), d.Bind.PasswordFile, d.Bind.PasswordEnv)
}

// sourceOf names where the secret of the setting key (key_file or
// key_env) comes from, for a fix line.
func sourceOf(key, file, env string) string {
	switch {
	case file != "":
		return fmt.Sprintf("the file %s (%s_file)", file, key)
	case env != "":
		return fmt.Sprintf("the environment variable %s (%s_env)", env, key)
	}
	return key + "_file"
}

// checkDomain runs the per-DC checks on every DC, then the directory checks
// (policy, PSOs, rights) on the first DC the service account could bind to.
func checkDomain(ctx context.Context, opts Options, i int, d *config.Domain) []Check {
	tlsSet := TLSSettings{CAFile: d.TLS.CAFile, ServerName: d.TLS.ServerName, Insecure: d.TLS.InsecureSkipVerify}
	acct := Account{DN: serviceAccountID(d), PasswordSource: passwordSource(i, d)}
	out, found := discoverDCs(ctx, opts, d)
	checks, good, root, cl := checkDCs(ctx, opts, d, d.Servers, tlsSet, acct)
	out = append(out, checks...)
	discovered := tlsSet
	discovered.ServerName, discovered.Discovered = "", true
	checks, good2, root2, cl2 := checkDCs(ctx, opts, d, found, discovered, acct)
	if good == nil {
		good, root, cl, tlsSet = good2, root2, cl2, discovered
	} else if cl2 != nil {
		cl2.Close()
	}
	out = append(out, checks...)
	if d.Bind.Method == "kerberos" {
		out = append(out, domainKerberosChecks(ctx, opts, i, d, found, root, cl)...)
	}
	if good == nil {
		return append(out, skip("directory checks", d.Name, "no DC of this domain accepted the service account's bind: policy and rights checks were not run"))
	}
	defer cl.Close()
	out = append(out, checkDirectory(ctx, opts, d, *good, root, cl, tlsSet)...)
	return append(out, CheckScopeGroups(ctx, cl, i, d, opts.Timeout)...)
}

// discoverDCs returns, with discover set, the DCs DNS advertises under
// the domain or an allowed name, and the discovery's checks.
func discoverDCs(ctx context.Context, opts Options, d *config.Domain) ([]Check, []string) {
	if !d.Discover {
		return nil, nil
	}
	dctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	found, err := ldapx.Discover(dctx, opts.Resolver, d.Name, d.DiscoverAllow)
	cancel()
	var out []Check
	if len(found.Dropped) > 0 {
		out = append(out, warn("dc discovery", d.Name,
			fmt.Sprintf("DNS SRV targets neither under %s nor in discover_allow were dropped (never dialled): %s", d.Name, strings.Join(found.Dropped, ", ")),
			"if these are your DCs, list their names (or their zone) in domains[].discover_allow; otherwise find out who published them"))
	}
	if err != nil {
		return append(out, warn("dc discovery", d.Name, fmt.Sprintf("DNS SRV _ldap._tcp.dc._msdcs.%s failed: %v", d.Name, err),
			"point this host's DNS at the domain's DNS servers, or list the DCs in domains[].servers and set discover: false")), nil
	}
	return append(out, ok("dc discovery", d.Name, "%d DC(s) advertised: %s", len(found.URLs), strings.Join(found.URLs, ", "))), found.URLs
}

// checkDCs checks every DC (TLS, trust, expiry, bind) and returns the first
// that accepted the bind, with its rootDSE and client (nil if none did).
func checkDCs(ctx context.Context, opts Options, d *config.Domain, urls []string, tlsSet TLSSettings, acct Account) (
	out []Check, good *server, root *ldapx.RootDSE, goodClient *ldapx.Client) {
	for _, u := range urls {
		s, err := parseServer(u)
		if err != nil {
			out = append(out, fail("server url", u, err.Error(), "use ldaps://dc.example.com (or ldap://... for StartTLS) in domains[].servers"))
			continue
		}
		checks, cl, r := checkDC(ctx, opts, s, d, tlsSet, acct)
		out = append(out, checks...)
		if cl != nil {
			if good == nil {
				good, root, goodClient = &s, r, cl
			} else {
				cl.Close()
			}
		}
	}
	return out, good, root, goodClient
}

// checkDirectory runs the directory checks through a DC that accepted the
// bind: scope, domain policy and PSOs, the service account, and its rights
// on each OU in scope.
func checkDirectory(ctx context.Context, opts Options, d *config.Domain, good server, root *ldapx.RootDSE,
	cl *ldapx.Client, tlsSet TLSSettings) []Check {
	nc := root.DefaultNamingContext
	out := CheckScopeInDomain(d.Scope.OUs, nc, d.Name)

	pctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	pol, perr := cl.DomainPolicy(pctx)
	cancel()

	var dirChecks []Check
	err := cl.Read(ctx, func(conn *ldap.Conn) error {
		dirChecks = readDirectory(conn, d, nc, pol, perr)
		return nil
	})
	if err != nil {
		return append(out, fail("directory read", good.URL, fmt.Sprintf("no connection to the DC for the directory checks: %v", err), "run doctor again; if it persists, check the DC's connection limits"))
	}
	return append(out, dirChecks...)
}

// readDirectory runs the directory checks over conn, bound as the
// service account: the account itself, the domain policy and PSOs, its
// rights on each OU in scope.
func readDirectory(conn *ldap.Conn, d *config.Domain, nc string, pol *ldapx.Policy, perr error) []Check {
	var out []Check
	acc, err := readServiceAccount(conn, serviceAccountID(d), nc)
	if err != nil {
		id := serviceAccountID(d)
		out = append(out, CheckDomainPolicy(pol, perr, d.Name, nc, id))
		return append(out, fail("service account", id, fmt.Sprintf("cannot read the service account's objectSid and tokenGroups: %v", err),
			"the account must be able to read its own entry (it can by default); check domains[].bind.dn (or bind.principal)"))
	}
	out = append(out, ok("service account", acc.DN, "objectSid %s, %d group(s) in its token", acc.SID, len(acc.Groups)))
	out = append(out, CheckDomainPolicy(pol, perr, d.Name, nc, acc.Trustee()))
	psos, err := readPSOs(conn, nc)
	out = append(out, CheckPSOs(psos, err, d.Name, nc, acc.SID, acc.Trustee()))

	for _, ou := range d.Scope.OUs {
		if !dnUnder(ou, nc) {
			continue
		}
		in := RightsInput{OU: ou, Account: acc}
		in.DACL, in.DACLErr = readDACL(conn, ou)
		if in.DACLErr != nil && isNoSuchObject(in.DACLErr) {
			out = append(out, fail("scope", ou, "the OU does not exist (or the service account cannot see it)",
				"correct domains[].scope.ous, or let the service account list and read the OU"))
			continue
		}
		if su, err := readSampleUser(conn, ou); err == nil && su != nil {
			in.Sample = su
			in.SampleDACL, _ = readDACL(conn, su.DN)
		}
		out = append(out, CheckRights(in)...)
	}
	return out
}

// domainKerberosChecks runs the Kerberos checks of a domain bound with a
// keytab: against the directory (the account's key version) through cl
// when a DC accepted the bind, else against the KDC alone, which then
// explains why none did.
func domainKerberosChecks(ctx context.Context, opts Options, i int, d *config.Domain, found []string,
	root *ldapx.RootDSE, cl *ldapx.Client) []Check {
	s := KerberosSettings{Principal: d.Bind.Principal, KeytabFile: d.Bind.KeytabFile, Realm: d.Bind.Realm,
		KDCs: d.Bind.KDCs, Krb5Conf: d.Bind.Krb5Conf, DCHosts: spnHosts(d, found), Setting: fmt.Sprintf("domains[%d].bind", i)}
	if cl == nil {
		return kerberosChecks(ctx, opts, s, nil, "")
	}
	var out []Check
	err := cl.Read(ctx, func(conn *ldap.Conn) error {
		out = kerberosChecks(ctx, opts, s, conn, root.DefaultNamingContext)
		return nil
	})
	if err != nil {
		return kerberosChecks(ctx, opts, s, nil, "")
	}
	return out
}

// spnHosts are the host names of the domain's DCs as their ldap/ service
// principals name them: a listed server's tls.server_name when set (the
// URL may hold an address), else its host; a discovered DC's host.
func spnHosts(d *config.Domain, found []string) []string {
	var out []string
	for _, u := range d.Servers {
		if s, err := parseServer(u); err == nil {
			out = append(out, cmp.Or(d.TLS.ServerName, s.Host))
		}
	}
	for _, u := range found {
		if s, err := parseServer(u); err == nil {
			out = append(out, s.Host)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// serviceAccountID is how the service account is named in the config:
// its DN (or UPN) for a simple bind, its principal for Kerberos.
func serviceAccountID(d *config.Domain) string {
	if d.Bind.DN == "" {
		return d.Bind.Principal
	}
	return d.Bind.DN
}

// checkDC runs the checks of one DC; it returns the bound ldapx client and
// the rootDSE when the bind succeeded.
func checkDC(ctx context.Context, opts Options, s server, d *config.Domain, t TLSSettings, acct Account) ([]Check, *ldapx.Client, *ldapx.RootDSE) {
	tctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	tcp := CheckTCP(tctx, opts.Dialer, s)
	out := []Check{tcp}
	if tcp.Status == Fail {
		return append(out, skip("tls trust", s.URL, "not reachable"), skip("bind", s.URL, "not reachable")), nil, nil
	}
	chain, err := FetchCertificates(tctx, opts.Dialer, s)
	if err != nil {
		out = append(out, fail("tls handshake", s.URL, fmt.Sprintf("TLS handshake failed: %v", err),
			"the DC must offer LDAPS on 636 (or StartTLS on 389) with a server certificate; on Windows enroll a Domain Controller certificate, on Samba set tls enabled/certfile/keyfile"))
		return append(out, skip("bind", s.URL, "no TLS")), nil, nil
	}
	now := opts.Clock.Now()
	trust := CheckTrust(chain, s, t, now)
	out = append(out, trust, CheckExpiry(chain, s, now))
	if trust.Status == Fail {
		return append(out, skip("bind", s.URL, "the certificate is not trusted: the connector will not send the password")), nil, nil
	}
	lc := d.LDAP() // the connector's own bind (simple, kerberos, negotiate)
	lc.Servers, lc.Discover, lc.DiscoverAllow = []string{s.URL}, false, nil
	lc.CAFile, lc.ServerName, lc.InsecureSkipVerify, lc.CheckIdentity = t.CAFile, t.ServerName, t.Insecure, t.Discovered
	lc.DialTimeout, lc.OpTimeout, lc.PoolSize, lc.Dialer, lc.Logger, lc.Clock = opts.Timeout, opts.Timeout, 1, opts.Dialer, opts.Logger, opts.Clock
	lc.Backoff = &backoff.ExponentialBackOff{InitialInterval: time.Millisecond, Multiplier: 1, MaxInterval: time.Millisecond}
	cl, err := ldapx.New(lc)
	if err != nil {
		return append(out, fail("bind", s.URL, err.Error(), "correct domains[].bind and domains[].tls")), nil, nil
	}
	err = cl.Ping(tctx)
	out = append(out, CheckBind(err, s.URL, acct))
	if err != nil {
		cl.Close()
		return out, nil, nil
	}
	r, err := cl.RootDSE(tctx)
	if err != nil {
		cl.Close()
		return append(out, fail("rootDSE", s.URL, fmt.Sprintf("cannot read the rootDSE: %v", err), "check the DC's health")), nil, nil
	}
	out = append(out, CheckRootDSE(r, s.URL)...)
	if r.DefaultNamingContext == "" {
		cl.Close()
		return out, nil, nil
	}
	return out, cl, r
}
