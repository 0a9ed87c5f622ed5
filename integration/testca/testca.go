// Package testca is the integration harness's test certificate authority:
// one CA whose certificate a test hands to clients (a CA file or a pool)
// and which issues the server certificates of the harness's servers (the
// token issuer's HTTPS, the emulator's TLS listener, the test DC's LDAPS,
// a proxy that must not be trusted) and the client certificates of the
// clients a server asks for one (the connector's status listener). A stack has one CA for all its
// servers, so a client is given one CA file.
package testca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"
)

// CA is a test certificate authority.
type CA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

// Option edits how New makes a CA.
type Option func(*options)

type options struct{ validity time.Duration }

// ValidFor makes the CA, and the certificates it issues, valid for d
// from now (the default is DefaultValidity; the test DC, which outlives a
// test run, asks for years).
func ValidFor(d time.Duration) Option { return func(o *options) { o.validity = d } }

// DefaultValidity is how long a CA and its certificates are valid unless
// ValidFor says otherwise: well past the connector's certificate-expiry
// warning (14 days), so a fresh test CA never reads as about to expire
// to /readyz or the doctor.
const DefaultValidity = 90 * 24 * time.Hour

// New makes a CA named name, valid for DefaultValidity unless ValidFor
// says otherwise. The certificates it issues expire with it.
func New(name string, opts ...Option) (*CA, error) {
	o := options{validity: DefaultValidity}
	for _, f := range opts {
		f(&o)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("testca: CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(o.validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("testca: CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("testca: CA certificate: %w", err)
	}
	return &CA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// PEM is the CA certificate, PEM-encoded (what a CA file holds).
func (ca *CA) PEM() []byte { return append([]byte(nil), ca.pem...) }

// Pool is a certificate pool holding only the CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// ServerCert issues a server certificate for hosts (DNS names or IP
// addresses; at least one).
func (ca *CA) ServerCert(hosts ...string) (tls.Certificate, error) {
	if len(hosts) == 0 {
		return tls.Certificate{}, errors.New("testca: a server certificate needs a host")
	}
	return ca.issue("server", hosts[0], hosts, x509.ExtKeyUsageServerAuth)
}

// ClientCert issues a TLS client certificate (extended key usage client
// authentication only) whose common name is cn and whose DNS names are
// names (none: no subject alternative name at all, the name is the CN).
func (ca *CA) ClientCert(cn string, names ...string) (tls.Certificate, error) {
	if cn == "" {
		return tls.Certificate{}, errors.New("testca: a client certificate needs a common name")
	}
	return ca.issue("client", cn, names, x509.ExtKeyUsageClientAuth)
}

// issue makes a certificate for kind (what errors call it) named cn, with
// hosts as its DNS names or IP addresses and usage as its only extended
// key usage, expiring with the CA.
func (ca *CA) issue(kind, cn string, hosts []string, usage x509.ExtKeyUsage) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("testca: %s key: %w", kind, err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     ca.cert.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("testca: %s certificate: %w", kind, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("testca: %s certificate: %w", kind, err)
	}
	return tls.Certificate{Certificate: [][]byte{der, ca.cert.Raw}, PrivateKey: key, Leaf: leaf}, nil
}

// ServerPEM issues a server certificate for hosts as ServerCert does and
// returns it and its private key (PKCS #8) in PEM, as a server that reads
// files takes them (Samba, Node.js).
func (ca *CA) ServerPEM(hosts ...string) (certPEM, keyPEM []byte, err error) {
	c, err := ca.ServerCert(hosts...)
	if err != nil {
		return nil, nil, err
	}
	return pemPair(c)
}

// ClientPEM issues a client certificate as ClientCert does and returns it
// and its private key (PKCS #8) in PEM, as curl or Prometheus take them.
func (ca *CA) ClientPEM(cn string, names ...string) (certPEM, keyPEM []byte, err error) {
	c, err := ca.ClientCert(cn, names...)
	if err != nil {
		return nil, nil, err
	}
	return pemPair(c)
}

// pemPair is c's leaf certificate and private key in PEM.
func pemPair(c tls.Certificate) (certPEM, keyPEM []byte, err error) {
	der, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		return nil, nil, fmt.Errorf("testca: private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// serial is a random positive serial number, as Go's TLS stack requires.
func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return big.NewInt(time.Now().UnixNano())
	}
	return n.Add(n, big.NewInt(1))
}
