package doctor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/adwriteback/adwriteback/connector/health"

	"github.com/go-ldap/ldap/v3"
)

// server is one DC URL from the configuration.
type server struct {
	URL      string
	Host     string
	Addr     string // host:port
	StartTLS bool
}

func parseServer(s string) (server, error) {
	u, err := url.Parse(s)
	if err != nil {
		return server{}, fmt.Errorf("%q is not a URL: %w", s, err)
	}
	port := u.Port()
	var st bool
	switch strings.ToLower(u.Scheme) {
	case "ldaps":
		if port == "" {
			port = "636"
		}
	case "ldap":
		st = true
		if port == "" {
			port = "389"
		}
	default:
		return server{}, fmt.Errorf("%q: scheme must be ldaps:// or ldap://", s)
	}
	if u.Hostname() == "" {
		return server{}, fmt.Errorf("%q has no host", s)
	}
	return server{URL: s, Host: u.Hostname(), Addr: net.JoinHostPort(u.Hostname(), port), StartTLS: st}, nil
}

// Dialer dials TCP (net.Dialer satisfies it).
type Dialer interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// CheckTCP connects to the DC's LDAP port.
func CheckTCP(ctx context.Context, d Dialer, s server) Check {
	const name = "tcp reachable"
	start := time.Now()
	c, err := d.DialContext(ctx, "tcp", s.Addr)
	if err != nil {
		return fail(name, s.URL, fmt.Sprintf("cannot connect to %s: %v", s.Addr, err),
			fmt.Sprintf("check the DC is up and listening on %s, and that no firewall between this host and the DC blocks it (LDAPS is TCP 636, LDAP+StartTLS 389); or correct the URL in domains[].servers", s.Addr))
	}
	c.Close()
	return ok(name, s.URL, "connected to %s in %s", s.Addr, time.Since(start).Round(time.Millisecond))
}

// TLSSettings are a domain's certificate verification settings.
type TLSSettings struct {
	CAFile     string
	ServerName string
	Insecure   bool
	// Discovered: the DC was found in DNS, so it is checked as the
	// connector checks one (its own name, never ServerName; its rootDSE
	// before the bind).
	Discovered bool
}

// roots returns the trust anchors: the CA file's, or the system's (nil).
func (t TLSSettings) roots() (*x509.CertPool, error) {
	if t.CAFile == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(t.CAFile)
	if err != nil {
		return nil, err
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", t.CAFile)
	}
	return p, nil
}

// FetchCertificates makes a TLS handshake with the DC (LDAPS, or StartTLS
// for ldap://) without verifying, and returns the chain it presents, for
// CheckTrust and CheckExpiry to judge. Nothing is sent after the handshake.
func FetchCertificates(ctx context.Context, d Dialer, s server) ([]*x509.Certificate, error) {
	raw, err := d.DialContext(ctx, "tcp", s.Addr)
	if err != nil {
		return nil, err
	}
	defer raw.Close()
	if dl, ok := ctx.Deadline(); ok {
		raw.SetDeadline(dl)
	}
	// Verification is done by CheckTrust, with the configured roots, so
	// that the reason for a refusal can be told apart.
	cfg := &tls.Config{InsecureSkipVerify: true, ServerName: s.Host, MinVersion: tls.VersionTLS12} //nolint:gosec // inspected, not trusted
	if s.StartTLS {
		l := ldap.NewConn(raw, false)
		l.Start()
		defer l.Close()
		if dl, ok := ctx.Deadline(); ok {
			l.SetTimeout(time.Until(dl))
		}
		if err := l.StartTLS(cfg); err != nil {
			return nil, fmt.Errorf("StartTLS: %w", err)
		}
		st, ok := l.TLSConnectionState()
		if !ok {
			return nil, errors.New("StartTLS did not complete")
		}
		return st.PeerCertificates, nil
	}
	tc := tls.Client(raw, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	return tc.ConnectionState().PeerCertificates, nil
}

// CheckTrust verifies the DC's chain the way the connector will: against
// the configured CA file (or the system roots) for the configured server
// name (or the URL's host). It tells apart an untrusted issuer, a name
// mismatch and an expired or not yet valid certificate.
func CheckTrust(chain []*x509.Certificate, s server, t TLSSettings, now time.Time) Check {
	const name = "tls trust"
	if len(chain) == 0 {
		return fail(name, s.URL, "the DC presented no certificate", "install a server certificate on the DC (Windows: enroll a Domain Controller / Kerberos Authentication certificate; Samba: tls certfile/keyfile in smb.conf)")
	}
	host := s.Host
	if t.ServerName != "" {
		host = t.ServerName
	}
	leaf := chain[0]
	desc := fmt.Sprintf("certificate %q issued by %q, names %s", leaf.Subject.CommonName, leaf.Issuer.CommonName, certNames(leaf))
	if t.Insecure {
		return warn(name, s.URL, "certificate verification is OFF (tls.insecure_skip_verify): anyone on the path can read passwords; "+desc,
			"set domains[].tls.insecure_skip_verify: false and domains[].tls.ca_file to the CA that issued the DC certificate")
	}
	roots, err := t.roots()
	if err != nil {
		return fail(name, s.URL, fmt.Sprintf("cannot load the CA file: %v", err),
			"set domains[].tls.ca_file to a readable PEM file holding the CA certificate that issued the DC certificate")
	}
	fault, err := verifyChain(chain, host, now, roots)
	if fault == chainOK {
		return ok(name, s.URL, "trusted for %s: %s", host, desc)
	}
	caSrc := "the system trust store"
	if t.CAFile != "" {
		caSrc = "ca_file " + t.CAFile
	}
	caFix := fmt.Sprintf("set domains[].tls.ca_file to the PEM certificate of the CA that issued the DC certificate (%q); export it on Windows with `certutil -ca.cert ca.pem`, on Samba it is the file named by `tls cafile` in smb.conf", leaf.Issuer.CommonName)
	switch fault {
	case chainName:
		fix := fmt.Sprintf("use a server URL whose host is one of the certificate's names, or set domains[].tls.server_name to one of %s", certNames(leaf))
		if len(leaf.DNSNames) == 0 && len(leaf.IPAddresses) == 0 {
			fix = "the certificate has no subjectAltName (Go ignores the legacy Common Name): reissue the DC certificate with the DC's DNS name in subjectAltName"
		}
		return fail(name, s.URL, fmt.Sprintf("name mismatch: the certificate is not valid for %q; %s", host, desc), fix)
	case chainExpired, chainNotYetValid:
		var invalid x509.CertificateInvalidError
		errors.As(err, &invalid)
		what := "expired"
		if fault == chainNotYetValid {
			what = "not yet valid"
		}
		return fail(name, s.URL, fmt.Sprintf("certificate %s: %q is valid from %s to %s (now %s)", what, invalid.Cert.Subject.CommonName,
			invalid.Cert.NotBefore.UTC().Format(time.DateOnly), invalid.Cert.NotAfter.UTC().Format(time.DateOnly), now.UTC().Format(time.DateOnly)),
			"renew the DC certificate (Windows: certificate autoenrollment / certlm.msc; Samba: replace tls certfile and restart), or fix this host's clock")
	case chainUnknownCA:
		return fail(name, s.URL, fmt.Sprintf("untrusted CA: the certificate is signed by %q, which is not in %s; %s", leaf.Issuer.CommonName, caSrc, desc), caFix)
	}
	return fail(name, s.URL, fmt.Sprintf("certificate not trusted: %v; %s", err, desc), caFix)
}

// CheckExpiry reports the DC certificate's days to expiry: WARN within
// health.DefaultCertWarning, the threshold /readyz warns at too.
func CheckExpiry(chain []*x509.Certificate, s server, now time.Time) Check {
	const name = "certificate expiry"
	if len(chain) == 0 {
		return skip(name, s.URL, "no certificate")
	}
	left, days, when := expiry(chain[0], now)
	switch {
	case left <= 0:
		return fail(name, s.URL, fmt.Sprintf("the DC certificate expired on %s", when), "renew the DC certificate")
	case left < health.DefaultCertWarning:
		return warn(name, s.URL, fmt.Sprintf("the DC certificate expires in %d day(s), on %s", days, when), "renew the DC certificate before it expires: the connector will refuse it then")
	}
	return ok(name, s.URL, "the DC certificate expires in %d days, on %s", days, when)
}

func certNames(c *x509.Certificate) string {
	var n []string
	n = append(n, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		n = append(n, ip.String())
	}
	if len(n) == 0 {
		return "(no subjectAltName)"
	}
	return "[" + strings.Join(n, ", ") + "]"
}
