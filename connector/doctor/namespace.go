package doctor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/adwriteback/adwriteback/connector/config"
	"github.com/adwriteback/adwriteback/connector/health"
	"github.com/adwriteback/adwriteback/relay/proxy"
	"github.com/adwriteback/adwriteback/relay/servicebus"
)

// httpsAnswer is what an HTTPS request of the doctor found: the chain the
// server presented (for verifyChain to judge), the server's Date, and the
// local time of the answer by the doctor's clock.
type httpsAnswer struct {
	Chain []*x509.Certificate
	Date  time.Time // zero when the answer had none
	Local time.Time
	// Proxy is the proxy's host:port, "" when the request went direct.
	Proxy string
}

// fetchHTTPS makes a GET to https://name/path, connecting to addr
// (host:port; "" is name:443) through the proxy sel picks for name, as the
// connector's WebSocket dialer does. Certificate verification is left to
// the caller (verifyChain), so that a refusal can be told apart; nothing
// secret is sent. Errors are classified by proxy.Classify.
func fetchHTTPS(ctx context.Context, sel *proxy.Selector, name, addr, path string, clock clockwork.Clock) (httpsAnswer, error) {
	var ans httpsAnswer
	dest := &url.URL{Scheme: "https", Host: name}
	if p, err := sel.For(dest); err == nil && p != nil {
		ans.Proxy = p.Host
	}
	host := name
	if h, _, err := net.SplitHostPort(name); err == nil {
		host = h
	}
	var chain []*x509.Certificate
	cfg := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"},
		InsecureSkipVerify: true, //nolint:gosec // inspected by verifyChain, and nothing secret is sent
		VerifyConnection:   func(cs tls.ConnectionState) error { chain = cs.PeerCertificates; return nil }}
	tr, err := sel.Fixed(dest, cfg)
	if err != nil {
		return ans, err
	}
	tr.ForceAttemptHTTP2 = false
	defer tr.CloseIdleConnections()
	if addr == "" {
		addr = net.JoinHostPort(host, "443")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, (&url.URL{Scheme: "https", Host: addr, Path: path}).String(), nil)
	if err != nil {
		return ans, err
	}
	req.Host = name
	hc := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	t0 := clock.Now()
	resp, err := hc.Do(req)
	t1 := clock.Now()
	ans.Chain = chain
	if err != nil {
		return ans, proxy.Classify(err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	ans.Local = t0.Add(t1.Sub(t0) / 2)
	if d, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
		ans.Date = d
	}
	return ans, nil
}

// namespaceAddr is where the connector's connection to the namespace goes
// for its transport: the custom endpoint (its port defaulting to the
// transport's) or the namespace, on 5671 (amqp) or 443 (websockets).
func namespaceAddr(q config.Queue, ns string) string {
	port := "5671"
	if q.Transport == string(servicebus.TransportWebSockets) {
		port = "443"
	}
	if e := q.CustomEndpoint; e != "" {
		if _, _, err := net.SplitHostPort(e); err == nil {
			return e
		}
		return net.JoinHostPort(e, port)
	}
	return net.JoinHostPort(ns, port)
}

// namespaceHTTPSAddr is the namespace's HTTPS address: 443 on the custom
// endpoint's host, or on the namespace.
func namespaceHTTPSAddr(q config.Queue, ns string) string {
	host := ns
	if e := q.CustomEndpoint; e != "" {
		host = e
		if h, _, err := net.SplitHostPort(e); err == nil {
			host = h
		}
	}
	return net.JoinHostPort(host, "443")
}

// handshake makes a TLS handshake with addr for name (SNI) and returns the
// chain presented, unverified (verifyChain judges it). Nothing is sent
// after the handshake.
func handshake(ctx context.Context, d Dialer, addr, name string) ([]*x509.Certificate, error) {
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer raw.Close()
	tc := tls.Client(raw, &tls.Config{ServerName: name, MinVersion: tls.VersionTLS12, NextProtos: []string{"amqp"},
		InsecureSkipVerify: true}) //nolint:gosec // inspected by verifyChain
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	return tc.ConnectionState().PeerCertificates, nil
}

// namespaceProbe is what the doctor learnt of the namespace: the TLS check
// and, when its HTTPS endpoint answered, the answer (for the clock check).
type namespaceProbe struct {
	TLS    Check
	HTTPS  *httpsAnswer
	Source string // what answered HTTPS, for the clock check
}

// probeNamespace makes the TLS handshake the connector makes with the
// namespace (or its custom endpoint): on 5671 for transport amqp, through
// the proxy on 443 for websockets; and verifies the chain with the system
// roots plus queue.ca_file, for the namespace's name. It reports the
// certificate's issuer and days to expiry (WARN within
// health.DefaultCertWarning): the check "namespace tls". It also asks the
// namespace's HTTPS endpoint for the time, for CheckClock.
func probeNamespace(ctx context.Context, q config.Queue, opts Options) namespaceProbe {
	const name = "namespace tls"
	ns := q.ServiceBus().NamespaceHost()
	if ns == "" {
		return namespaceProbe{TLS: skip(name, "", "no namespace configured (see the config check)")}
	}
	if strings.EqualFold(connStringValue(q.ConnectionString, "UseDevelopmentEmulator"), "true") {
		return namespaceProbe{TLS: skip(name, ns, "the connection string sets UseDevelopmentEmulator=true: plain AMQP to a local emulator, without TLS")}
	}
	addr := namespaceAddr(q, ns)
	target := ns
	if addr != net.JoinHostPort(ns, "443") && addr != net.JoinHostPort(ns, "5671") {
		target = ns + " via " + addr
	}
	var out namespaceProbe
	sel, err := proxy.New(q.Proxy.Config())
	if err != nil {
		out.TLS = fail(name, target, fmt.Sprintf("the proxy settings are invalid: %v", err), "correct the queue.proxy section of the configuration")
		return out
	}
	// each network step has its own time: a firewall that drops 443 must
	// not leave none for the handshake on 5671
	hctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	ans, herr := fetchHTTPS(hctx, sel, ns, namespaceHTTPSAddr(q, ns), "/", opts.Clock)
	cancel()
	if herr == nil {
		out.HTTPS, out.Source = &ans, "the namespace "+ns
	}
	var chain []*x509.Certificate
	var via string
	if q.Transport == string(servicebus.TransportWebSockets) {
		chain, err, via = ans.Chain, herr, "directly"
		if ans.Proxy != "" {
			via = "through the proxy " + ans.Proxy
		}
	} else {
		tctx, cancel := context.WithTimeout(ctx, opts.Timeout)
		chain, err = handshake(tctx, opts.Dialer, addr, ns)
		cancel()
		via = "directly (amqp never uses a proxy)"
	}
	if len(chain) == 0 {
		out.TLS = namespaceUnreachable(name, target, via, q, err)
		return out
	}
	out.TLS = judgeNamespaceChain(name, target, ns, chain, q.CAFile, opts.Clock.Now())
	return out
}

// namespaceUnreachable explains a handshake with the namespace that did
// not happen.
func namespaceUnreachable(name, target, via string, q config.Queue, err error) Check {
	if proxy.Is(err) {
		return fail(name, target, fmt.Sprintf("no TLS connection %s: %v", via, err), "see the proxy check above")
	}
	port := "5671"
	fix := "allow outbound TCP 5671 to the namespace (or set queue.transport: websockets to use 443, with queue.proxy if a proxy is required); check queue.namespace and queue.custom_endpoint"
	if q.Transport == string(servicebus.TransportWebSockets) {
		port = "443"
		fix = "allow outbound TCP 443 to the namespace, or through queue.proxy; check queue.namespace and queue.custom_endpoint"
	}
	if err == nil {
		err = fmt.Errorf("no certificate presented")
	}
	return fail(name, target, fmt.Sprintf("no TLS handshake on %s %s: %v", port, via, err), fix)
}

// judgeNamespaceChain verifies the namespace's chain as the connector
// does: the system roots, and queue.ca_file's.
func judgeNamespaceChain(name, target, ns string, chain []*x509.Certificate, caFile string, now time.Time) Check {
	leaf := chain[0]
	pools := []*x509.CertPool{nil}
	caSrc := "the system trust store"
	if caFile != "" {
		p, err := (TLSSettings{CAFile: caFile}).roots()
		if err != nil {
			return fail(name, target, fmt.Sprintf("cannot load queue.ca_file: %v", err), "set queue.ca_file to a readable PEM file of CA certificates, or remove it")
		}
		pools = append(pools, p)
		caSrc = "the system trust store or queue.ca_file " + caFile
	}
	desc := fmt.Sprintf("certificate for %s issued by %q", certNames(leaf), leaf.Issuer.CommonName)
	inspect := fmt.Sprintf("if a proxy or firewall inspects TLS, exempt *.servicebus.windows.net from inspection (the connector verifies the namespace); "+
		"otherwise put the CA that issued it (%q) in queue.ca_file", leaf.Issuer.CommonName)
	fault, err := verifyChain(chain, ns, now, pools...)
	switch fault {
	case chainOK:
	case chainUnknownCA:
		return fail(name, target, fmt.Sprintf("untrusted CA: the namespace's certificate is signed by %q, which is not in %s; %s", leaf.Issuer.CommonName, caSrc, desc), inspect)
	case chainName:
		return fail(name, target, fmt.Sprintf("name mismatch: the certificate is not valid for %s; %s", ns, desc),
			"check queue.namespace (and queue.custom_endpoint: it must lead to that namespace); "+inspect)
	case chainExpired, chainNotYetValid:
		return fail(name, target, fmt.Sprintf("the certificate is not valid now (%s, valid %s to %s): %v", now.UTC().Format(time.DateTime),
			leaf.NotBefore.UTC().Format(time.DateOnly), leaf.NotAfter.UTC().Format(time.DateOnly), err),
			"fix this host's clock (NTP); if the clock is right, "+inspect)
	default:
		return fail(name, target, fmt.Sprintf("the certificate does not verify: %v; %s", err, desc), inspect)
	}
	left, days, when := expiry(leaf, now)
	if left < health.DefaultCertWarning {
		return warn(name, target, fmt.Sprintf("verified, but the certificate expires in %d day(s), on %s; %s", days, when, desc),
			"Azure renews its certificates itself; if this one is from queue.ca_file's PKI (a private endpoint, an inspecting proxy), renew it")
	}
	return ok(name, target, "verified: %s, expires in %d days (%s)", desc, days, when)
}

// Clock skew thresholds: tokens and command expiry tolerate small skew.
const (
	ClockWarn = time.Minute
	ClockFail = 5 * time.Minute
)

// clockSource is a remote clock: a server's HTTP Date and the local time
// of its answer.
type clockSource struct {
	Name  string
	Date  time.Time
	Local time.Time
}

// CheckClock compares this host's clock (the doctor's clock) with the
// first source that gave a Date: WARN beyond ClockWarn, FAIL beyond
// ClockFail.
func CheckClock(sources []clockSource) Check {
	const name = "clock skew"
	for _, s := range sources {
		if s.Date.IsZero() {
			continue
		}
		skew := s.Local.Sub(s.Date).Round(time.Second)
		dir, abs := "ahead of", skew
		if skew < 0 {
			dir, abs = "behind", -skew
		}
		detail := fmt.Sprintf("this host's clock is %s %s %s (its HTTP Date header)", abs, dir, s.Name)
		const fix = "synchronise this host's clock with NTP (Linux: timedatectl set-ntp true, or chrony; Windows: w32tm /resync): Entra ID tokens and each command's expiry are checked against it"
		switch {
		case abs > ClockFail:
			return fail(name, "", detail+fmt.Sprintf("; more than %s: tokens and commands will be refused", ClockFail), fix)
		case abs > ClockWarn:
			return warn(name, "", detail+fmt.Sprintf("; more than %s", ClockWarn), fix)
		}
		return ok(name, "", "%s (within %s)", detail, ClockWarn)
	}
	return skip(name, "", "neither the namespace's HTTPS endpoint nor the token endpoint answered with a date")
}
