package testdc

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"testing"
)

// TestCAIssueServer: a certificate the CA issues verifies for its names
// against the CA's pool alone, not for another name, and pairs with its
// key.
func TestCAIssueServer(t *testing.T) {
	ca, err := NewCA("unit CA")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.IssueServer([]string{"ns.example.test"}, []net.IP{net.IPv4(127, 0, 0, 9)})
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
	if _, err := cert.Verify(x509.VerifyOptions{DNSName: "ns.example.test", Roots: ca.Pool()}); err != nil {
		t.Errorf("verify for its name: %v", err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{DNSName: "127.0.0.9", Roots: ca.Pool()}); err != nil {
		t.Errorf("verify for its address: %v", err)
	}
	var host x509.HostnameError
	if _, err := cert.Verify(x509.VerifyOptions{DNSName: "other.example.test", Roots: ca.Pool()}); !errors.As(err, &host) {
		t.Errorf("verify for another name: %v, want a host name error", err)
	}
	other, err := NewCA("another CA")
	if err != nil {
		t.Fatal(err)
	}
	var unknown x509.UnknownAuthorityError
	if _, err := cert.Verify(x509.VerifyOptions{DNSName: "ns.example.test", Roots: other.Pool()}); !errors.As(err, &unknown) {
		t.Errorf("verify against another CA: %v, want unknown authority", err)
	}
	if p := ca.CertPEM(); len(p) == 0 || !x509.NewCertPool().AppendCertsFromPEM(p) {
		t.Error("CertPEM is not a PEM certificate")
	}
	if _, _, err := ca.IssueServer(nil, nil); err == nil {
		t.Error("a certificate with no name was issued")
	}
}
