// Package proxy is the connector's one outbound HTTP proxy: the HTTP CONNECT proxy that AMQP
// over WebSockets, the Entra ID token requests and the HTTPS result reporter all go through.
//
// The proxy comes from the configuration (a URL, a user name and a password read from a file
// or the environment by the caller, and NO_PROXY-style exclusions) or, when no URL is
// configured, from the environment (HTTPS_PROXY and NO_PROXY, as Go's own HTTP client reads
// them). Exclusions are matched by golang.org/x/net/http/httpproxy.
//
// A proxy's refusal is classified, never matched by its text: a CONNECT answered 407 (or
// 401, as tinyproxy answers a wrong password) is ErrProxyAuth, any other refusal
// ErrProxyRefused, and a proxy that cannot be reached
// ErrProxyUnreachable. No error, log line or String of this package holds the proxy password.
package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/net/http/httpproxy"
)

// Config is the proxy configuration. Password is a secret the caller resolved from a file
// or the environment.
type Config struct {
	// URL is http://host:port or https://host:port, without user information. Empty means
	// the environment's HTTPS_PROXY / NO_PROXY (and no proxy if those are unset).
	URL string
	// Username and Password for basic authentication to the proxy (both or neither).
	Username, Password string
	// NoProxy lists hosts reached directly, as NO_PROXY spells them: a host name (matching it
	// and its subdomains), a leading-dot domain, an IP address, a CIDR range, each optionally
	// with a port, or "*". Only with URL; with the environment, NO_PROXY applies.
	NoProxy []string
}

// Sentinels for errors.Is.
var (
	// ErrConfig marks an invalid proxy configuration.
	ErrConfig = errors.New("proxy: invalid configuration")
	// ErrProxyAuth: the proxy answered 407 Proxy Authentication Required (missing or wrong
	// user name or password), or 401 Unauthorized, which some proxies (tinyproxy) send for
	// a wrong password; ConnectError's text names the status.
	ErrProxyAuth = errors.New("proxy: the proxy refused the credentials")
	// ErrProxyRefused: the proxy answered a CONNECT with a status other than 200 or 407
	// (its rules forbid the destination, or the destination is down).
	ErrProxyRefused = errors.New("proxy: the proxy refused the connection")
	// ErrProxyUnreachable: the proxy itself could not be reached.
	ErrProxyUnreachable = errors.New("proxy: the proxy cannot be reached")
)

// FieldError is one problem with a Config, named by its key under the proxy section (url,
// username, password, no_proxy). It wraps ErrConfig.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return fmt.Sprintf("%v: %s: %s", ErrConfig, e.Field, e.Msg) }

// Unwrap makes every FieldError an ErrConfig.
func (e *FieldError) Unwrap() error { return ErrConfig }

// Problems returns every problem with c.
func (c Config) Problems() []*FieldError {
	var out []*FieldError
	add := func(field, format string, a ...any) {
		out = append(out, &FieldError{Field: field, Msg: fmt.Sprintf(format, a...)})
	}
	if c.URL != "" {
		u, err := url.Parse(c.URL)
		switch {
		case err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https"):
			add("url", "%q must be http://host:port or https://host:port", Redact(c.URL))
		case u.User != nil:
			add("url", "%q holds user information: put the user name in username and the password in password_file or password_env (secrets are never inline)", Redact(c.URL))
		case u.Path != "" && u.Path != "/":
			add("url", "%q must not have a path", Redact(c.URL))
		}
	}
	if (c.Username == "") != (c.Password == "") {
		add("username", "username and a password (password_file or password_env) go together")
	}
	if c.URL == "" && (c.Username != "" || len(c.NoProxy) > 0) {
		add("url", "username, password and no_proxy need a proxy url")
	}
	for i, e := range c.NoProxy {
		if strings.TrimSpace(e) == "" || strings.ContainsAny(e, ", /") && !isCIDR(e) {
			add(fmt.Sprintf("no_proxy[%d]", i), "%q: one host, domain, IP address or CIDR range per entry", e)
		}
	}
	return out
}

func isCIDR(s string) bool { _, _, err := net.ParseCIDR(s); return err == nil }

// Configured reports whether c names a proxy itself (as opposed to the environment).
func (c Config) Configured() bool { return c.URL != "" }

// Selector picks the proxy for a destination. Build it with New.
type Selector struct {
	fn func(*url.URL) (*url.URL, error)
	// user is the basic-auth identity for a configured proxy (nil: none, or the
	// environment's own URL userinfo).
	user *url.Userinfo
}

// New validates c and builds its Selector.
func New(c Config) (*Selector, error) {
	var errs []error
	for _, p := range c.Problems() {
		errs = append(errs, p)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	hc := httpproxy.FromEnvironment()
	s := &Selector{}
	if c.URL != "" {
		// https destinations only: plain http ones (a managed identity endpoint such as
		// 169.254.169.254) are never sent to the proxy, as with HTTPS_PROXY alone.
		hc = &httpproxy.Config{HTTPSProxy: c.URL, NoProxy: strings.Join(c.NoProxy, ",")}
		if c.Username != "" {
			s.user = url.UserPassword(c.Username, c.Password)
		}
	}
	s.fn = hc.ProxyFunc()
	return s, nil
}

// For returns the proxy for a destination URL (with the credentials to send it), or nil
// when the destination is reached directly. As Go's HTTP client does, localhost and loopback
// addresses are never proxied.
func (s *Selector) For(dest *url.URL) (*url.URL, error) {
	if s == nil {
		return nil, nil
	}
	p, err := s.fn(dest)
	if err != nil || p == nil {
		return nil, err
	}
	if s.user != nil {
		cp := *p
		cp.User = s.user
		p = &cp
	}
	return p, nil
}

// Transport returns a clone of http.DefaultTransport that reaches every destination through
// the proxy For picks, verifies TLS with tlsConfig (nil: system roots), and classifies a
// proxy's refusal (ErrProxyAuth, ErrProxyRefused) and a proxy it cannot reach
// (ErrProxyUnreachable; see Classify).
func (s *Selector) Transport(tlsConfig *tls.Config) *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = func(r *http.Request) (*url.URL, error) { return s.For(r.URL) }
	if tlsConfig != nil {
		tr.TLSClientConfig = tlsConfig.Clone()
	}
	tr.OnProxyConnectResponse = OnConnectResponse
	return tr
}

// Fixed returns a Transport that sends every request through the proxy s picks for dest
// (or directly), whatever the request's own host: for a connection made to another address
// than the name it is for (a custom endpoint).
func (s *Selector) Fixed(dest *url.URL, tlsConfig *tls.Config) (*http.Transport, error) {
	p, err := s.For(dest)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	tr := s.Transport(tlsConfig)
	tr.Proxy = func(*http.Request) (*url.URL, error) { return p, nil }
	return tr, nil
}

// OnConnectResponse is an http.Transport.OnProxyConnectResponse hook that turns a refused
// CONNECT into a *ConnectError.
func OnConnectResponse(_ context.Context, proxyURL *url.URL, req *http.Request, resp *http.Response) error {
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	// net/http puts a CONNECT's target in Host (its URL is opaque)
	return &ConnectError{Proxy: proxyURL.Host, Target: req.Host, StatusCode: resp.StatusCode, Status: resp.Status}
}

// ConnectError is a CONNECT the proxy refused. It names the proxy by host:port only.
type ConnectError struct {
	Proxy, Target string
	StatusCode    int
	Status        string
}

func (e *ConnectError) Error() string {
	if e.auth() {
		return fmt.Sprintf("%v: proxy %s answered the CONNECT to %s with %s", ErrProxyAuth, e.Proxy, e.Target, e.Status)
	}
	return fmt.Sprintf("%v: proxy %s answered the CONNECT to %s with %s", ErrProxyRefused, e.Proxy, e.Target, e.Status)
}

// Is matches ErrProxyAuth for a 407 or 401 and ErrProxyRefused otherwise.
func (e *ConnectError) Is(target error) bool {
	if e.auth() {
		return target == ErrProxyAuth
	}
	return target == ErrProxyRefused
}

// auth reports whether the proxy refused the credentials: 407, or 401 from a proxy that
// answers a wrong password so (tinyproxy 1.11 does; a CONNECT has no origin server that
// could have sent it).
func (e *ConnectError) auth() bool {
	return e.StatusCode == http.StatusProxyAuthRequired || e.StatusCode == http.StatusUnauthorized
}

// Classify marks an error from a proxied connection: a proxy that could not be reached
// becomes ErrProxyUnreachable (wrapping err); any other error is returned as is (a refused
// CONNECT already is a *ConnectError).
func Classify(err error) error {
	var op *net.OpError
	if err != nil && errors.As(err, &op) && op.Op == "proxyconnect" && !errors.Is(err, ErrProxyUnreachable) {
		return fmt.Errorf("%w: %w", ErrProxyUnreachable, err)
	}
	return err
}

// Is reports whether err is a proxy failure of any kind.
func Is(err error) bool {
	return errors.Is(err, ErrProxyAuth) || errors.Is(err, ErrProxyRefused) || errors.Is(err, ErrProxyUnreachable)
}

// Redact returns s with the password of any user information replaced.
func Redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		if strings.Contains(s, "@") {
			return "(unparsable URL)"
		}
		return s
	}
	if u.User == nil {
		return s
	}
	u.User = url.User("REDACTED")
	return u.String()
}
