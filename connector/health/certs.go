package health

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// CertsFromPEM returns one CertInfo per certificate in a PEM file (a CA
// bundle or a certificate chain), named name, or name #2, #3... for the
// following ones. Private key blocks and other PEM types are skipped.
func CertsFromPEM(name string, data []byte) ([]CertInfo, error) {
	var out []CertInfo
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("health: %s: certificate %d: %w", name, len(out)+1, err)
		}
		n := name
		if len(out) > 0 {
			n = fmt.Sprintf("%s #%d", name, len(out)+1)
		}
		out = append(out, CertInfo{Name: n, Subject: c.Subject.CommonName, NotAfter: c.NotAfter})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("health: %s: %w", name, errNoCertificate)
	}
	return out, nil
}

var errNoCertificate = errors.New("no PEM certificate found")

// CertsFromFile reads a PEM file and calls CertsFromPEM.
func CertsFromFile(name, path string) ([]CertInfo, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("health: %s: %w", name, err)
	}
	return CertsFromPEM(name, data)
}
