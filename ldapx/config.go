package ldapx

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/jonboulle/clockwork"
)

// Config says how to reach and bind to the domain controllers.
type Config struct {
	// Servers are tried in order: ldaps://host[:636] (TLS from the first
	// byte) or ldap://host[:389] (StartTLS is then mandatory: plain LDAP is
	// never used for a bind or a password).
	Servers []string
	// Domain, with Discover set, adds the DCs advertised in DNS SRV
	// _ldap._tcp.dc._msdcs.<Domain> (as ldaps://target:636) after Servers.
	// DNS is not trusted for who is a DC: a target is used only when it is
	// the domain's name or under it (label-wise), or listed in
	// DiscoverAllow (an entry allows itself and the names under it);
	// others are dropped and logged. Its certificate must verify against
	// the configured CA (RootCAs or CAFile: discovery requires one, the
	// system roots are never used) for the target's name (ServerName does
	// not apply), and before the bind, over that connection, its rootDSE
	// must name the target as dnsHostName and hold the domain's naming
	// context (DC=<label>,... of Domain): a host with a valid certificate
	// that is not that DC gets no password.
	Domain        string
	Discover      bool
	DiscoverAllow []string
	// CheckIdentity applies a discovered DC's checks (the certificate for
	// the URL's host, the rootDSE before the bind) to Servers as well: the
	// doctor checks each discovered DC as a client of its own.
	CheckIdentity bool

	// BindMethod is how the connector proves who it is: BindSimple (the
	// default: BindDN and BindPassword), BindKerberos (GSSAPI with keys
	// from a keytab, see Kerberos) or BindNegotiate (Windows only: SSPI
	// with the identity the process runs as). Kerberos and negotiate bind
	// over the same verified TLS, to the SPN ldap/<DC host name>.
	BindMethod   BindMethod
	BindDN       string // DN or UPN of the service account (simple)
	BindPassword string // simple
	Kerberos     Kerberos

	// Trust: RootCAs if set, else the PEM bundle in CAFile, else the
	// system pool. InsecureSkipVerify turns verification off and is logged
	// loudly on every dial: for lab use only.
	CAFile             string
	RootCAs            *x509.CertPool
	ServerName         string // overrides the name checked in the DC certificate
	InsecureSkipVerify bool
	// ClientCert is an optional certificate for mutual TLS.
	ClientCert *tls.Certificate

	// BaseDN limits user searches; empty means the domain naming context
	// from the rootDSE.
	BaseDN string

	DialTimeout time.Duration // per DC; default 5s
	OpTimeout   time.Duration // per operation when the context has none; default 30s
	PoolSize    int           // connections open at most; default 4
	// HealthAfter: an idle connection unused for longer is checked before
	// reuse; default 30s. MaxIdle: closed instead; default 5m.
	HealthAfter time.Duration
	MaxIdle     time.Duration
	// PolicyRefresh is how long a read policy (domain or PSO) is reused;
	// default 5m.
	PolicyRefresh time.Duration
	// ProbeInterval is how often RunProbes probes each DC; default
	// DefaultProbeInterval.
	ProbeInterval time.Duration
	// Backoff paces retries of a failing DC: each DC steps through its own
	// copy after every failure and starts over after a success (nil:
	// DefaultBackoff). A DC in backoff is skipped until its retry time.
	Backoff *backoff.ExponentialBackOff

	// Injected dependencies; nil means the real thing. Dialer also dials
	// the KDCs; Clock is also the time of the Kerberos pre-authentication
	// (gokrb5 reads time.Now itself for the rest: a clock set ahead here
	// is seen by the KDC as this host's clock skew).
	Resolver SRVResolver
	Dialer   ContextDialer
	Clock    clockwork.Clock
	Logger   *slog.Logger
}

// ContextDialer dials TCP connections (net.Dialer satisfies it).
type ContextDialer interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// Defaults of the settings a connector configuration also has: the
// connector's one table of defaults (connector/config) takes them from here.
const (
	DefaultDialTimeout   = 5 * time.Second
	DefaultOpTimeout     = 30 * time.Second
	DefaultPoolSize      = 4
	DefaultPolicyRefresh = 5 * time.Minute
)

func (c *Config) setDefaults() {
	if c.DialTimeout <= 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.OpTimeout <= 0 {
		c.OpTimeout = DefaultOpTimeout
	}
	if c.PoolSize <= 0 {
		c.PoolSize = DefaultPoolSize
	}
	if c.HealthAfter <= 0 {
		c.HealthAfter = 30 * time.Second
	}
	if c.MaxIdle <= 0 {
		c.MaxIdle = 5 * time.Minute
	}
	if c.PolicyRefresh <= 0 {
		c.PolicyRefresh = DefaultPolicyRefresh
	}
	if c.ProbeInterval <= 0 {
		c.ProbeInterval = DefaultProbeInterval
	}
	if c.Backoff == nil {
		c.Backoff = DefaultBackoff()
	}
	if c.Resolver == nil {
		c.Resolver = net.DefaultResolver
	}
	if c.Dialer == nil {
		d := &net.Dialer{KeepAlive: 30 * time.Second}
		if r, ok := c.Resolver.(*net.Resolver); ok {
			d.Resolver = r // the resolver that found a DC also finds its address
		}
		c.Dialer = d
	}
	if c.Clock == nil {
		c.Clock = clockwork.NewRealClock()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate lists every problem with the configuration at once.
func (c *Config) Validate() error {
	var errs []error
	if len(c.Servers) == 0 && !(c.Discover && c.Domain != "") {
		errs = append(errs, errors.New("no domain controller: set servers, or discover with a domain"))
	}
	for i, s := range c.Servers {
		if _, err := parseServer(s); err != nil {
			errs = append(errs, fmt.Errorf("servers[%d]: %w", i, err))
		}
	}
	errs = append(errs, c.bindProblems()...)
	if c.CAFile != "" && c.RootCAs == nil {
		if _, err := loadCAFile(c.CAFile); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, c.discoveryProblems()...)
	return errors.Join(errs...)
}

// discoveryProblems: a DC that DNS names is trusted only through the
// domain's own CA, and only under the domain or an allowed name.
func (c *Config) discoveryProblems() []error {
	if !c.Discover && !c.CheckIdentity {
		return nil
	}
	var errs []error
	if c.CAFile == "" && c.RootCAs == nil {
		errs = append(errs, errors.New("discovery requires a CA file: the system roots are never trusted for a DC found in DNS"))
	}
	if c.InsecureSkipVerify {
		errs = append(errs, errors.New("discovery requires certificate verification (insecure skip verify is set)"))
	}
	if !IsDNSName(c.Domain) {
		errs = append(errs, fmt.Errorf("discovery needs the domain's DNS name, not %q", c.Domain))
	}
	for i, a := range c.DiscoverAllow {
		if !IsDNSName(a) {
			errs = append(errs, fmt.Errorf("discover allow[%d]: %q is not a DNS name", i, a))
		}
	}
	return errs
}

type serverURL struct {
	raw      string
	host     string // without port
	addr     string // host:port
	startTLS bool
}

func parseServer(s string) (serverURL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return serverURL{}, fmt.Errorf("%q is not a URL: %w", s, err)
	}
	var port string
	var startTLS bool
	switch strings.ToLower(u.Scheme) {
	case "ldaps":
		port = "636"
	case "ldap":
		port, startTLS = "389", true
	default:
		return serverURL{}, fmt.Errorf("%q: scheme must be ldaps:// or ldap:// (StartTLS), not %q", s, u.Scheme)
	}
	if u.Hostname() == "" {
		return serverURL{}, fmt.Errorf("%q has no host", s)
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.User != nil {
		return serverURL{}, fmt.Errorf("%q: only scheme://host[:port] is accepted", s)
	}
	if p := u.Port(); p != "" {
		port = p
	}
	return serverURL{raw: s, host: u.Hostname(), addr: net.JoinHostPort(u.Hostname(), port), startTLS: startTLS}, nil
}

func loadCAFile(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %s holds no PEM certificate", path)
	}
	return pool, nil
}

// tlsConfig builds the TLS settings: verification on, TLS 1.2 at least.
func (c *Config) tlsConfig() (*tls.Config, error) {
	t := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName, InsecureSkipVerify: c.InsecureSkipVerify}
	switch {
	case c.RootCAs != nil:
		t.RootCAs = c.RootCAs
	case c.CAFile != "":
		pool, err := loadCAFile(c.CAFile)
		if err != nil {
			return nil, err
		}
		t.RootCAs = pool
	}
	if c.ClientCert != nil {
		t.Certificates = []tls.Certificate{*c.ClientCert}
	}
	return t, nil
}

// DefaultBackoff is a DC's retry pacing when Config.Backoff is nil: 500 ms
// doubling up to 30 s, each wait randomized by ±50%.
func DefaultBackoff() *backoff.ExponentialBackOff {
	return &backoff.ExponentialBackOff{InitialInterval: 500 * time.Millisecond, RandomizationFactor: 0.5,
		Multiplier: 2, MaxInterval: 30 * time.Second}
}
