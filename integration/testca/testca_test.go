package testca

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"testing"
	"time"
)

// TestServerPEM: a certificate the CA issues verifies for its names
// against the CA's pool alone, not for another name nor against another
// CA, pairs with its key, and expires with the CA.
func TestServerPEM(t *testing.T) {
	ca, err := New("unit CA", ValidFor(2*365*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	cert := pairCert(t)(ca.ServerPEM("ns.example.test", "127.0.0.9"))
	if _, err := cert.Verify(x509.VerifyOptions{DNSName: "ns.example.test", Roots: ca.Pool()}); err != nil {
		t.Errorf("verify for its name: %v", err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{DNSName: "127.0.0.9", Roots: ca.Pool()}); err != nil {
		t.Errorf("verify for its address: %v", err)
	}
	if left := time.Until(cert.NotAfter); left < 2*364*24*time.Hour {
		t.Errorf("the certificate expires in %v, want with the CA in two years", left)
	}
	var host x509.HostnameError
	if _, err := cert.Verify(x509.VerifyOptions{DNSName: "other.example.test", Roots: ca.Pool()}); !errors.As(err, &host) {
		t.Errorf("verify for another name: %v, want a host name error", err)
	}
	other, err := New("another CA")
	if err != nil {
		t.Fatal(err)
	}
	var unknown x509.UnknownAuthorityError
	if _, err := cert.Verify(x509.VerifyOptions{DNSName: "ns.example.test", Roots: other.Pool()}); !errors.As(err, &unknown) {
		t.Errorf("verify against another CA: %v, want unknown authority", err)
	}
	if p := ca.PEM(); len(p) == 0 || !x509.NewCertPool().AppendCertsFromPEM(p) {
		t.Error("PEM is not a PEM certificate")
	}
	if _, _, err := ca.ServerPEM(); err == nil {
		t.Error("a certificate with no name was issued")
	}
}

// TestDefaultValidityOutlastsTheExpiryWarning: a CA made without ValidFor
// issues certificates the connector does not warn about (it warns under
// 14 days, health.DefaultCertWarning).
func TestDefaultValidityOutlastsTheExpiryWarning(t *testing.T) {
	ca, err := New("default CA")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.ServerCert("host.test")
	if err != nil {
		t.Fatal(err)
	}
	if left := time.Until(cert.Leaf.NotAfter); left < 30*24*time.Hour {
		t.Fatalf("a default CA's certificate is valid for %s only", left)
	}
}

// TestClientPEM: a client certificate verifies against the CA's pool for
// client authentication, not for server authentication, carries its CN
// and DNS names, pairs with its key and needs a name.
func TestClientPEM(t *testing.T) {
	ca, err := New("unit CA")
	if err != nil {
		t.Fatal(err)
	}
	cert := pairCert(t)(ca.ClientPEM("prometheus", "prometheus.corp.example"))
	if cert.Subject.CommonName != "prometheus" || len(cert.DNSNames) != 1 || cert.DNSNames[0] != "prometheus.corp.example" {
		t.Errorf("subject %q, DNS names %q", cert.Subject.CommonName, cert.DNSNames)
	}
	client := x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if _, err := cert.Verify(client); err != nil {
		t.Errorf("verify for client authentication: %v", err)
	}
	server := x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	var inv x509.CertificateInvalidError
	if _, err := cert.Verify(server); !errors.As(err, &inv) || inv.Reason != x509.IncompatibleUsage {
		t.Errorf("verify for server authentication: %v, want incompatible usage", err)
	}
	if c, err := ca.ClientCert("bare"); err != nil || len(c.Leaf.DNSNames) != 0 || c.Leaf.Subject.CommonName != "bare" {
		t.Errorf("ClientCert(bare) = %v, %v", c.Leaf, err)
	}
	if _, err := ca.ClientCert(""); err == nil {
		t.Error("a client certificate with no name was issued")
	}
}

// pairCert returns a function that takes what ServerPEM or ClientPEM
// return, checks the certificate pairs with the key and returns it parsed.
func pairCert(t *testing.T) func(certPEM, keyPEM []byte, err error) *x509.Certificate {
	return func(certPEM, keyPEM []byte, err error) *x509.Certificate {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
			t.Fatalf("key pair: %v", err)
		}
		block, _ := pem.Decode(certPEM)
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return cert
	}
}
