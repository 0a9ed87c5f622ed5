package doctor

import (
	"crypto/x509"
	"errors"
	"time"
)

// chainFault is why a presented certificate chain does not verify.
type chainFault int

const (
	chainOK          chainFault = iota
	chainNoCert                 // nothing presented
	chainName                   // not valid for the name (x509.HostnameError)
	chainExpired                // past NotAfter (x509.CertificateInvalidError, Expired)
	chainNotYetValid            // before NotBefore
	chainUnknownCA              // no path to a trusted root (x509.UnknownAuthorityError)
	chainOther                  // any other refusal
)

// verifyChain verifies chain (leaf first) for host at now against each of
// the root pools in turn (nil is the system's); it succeeds when one of
// them does, and otherwise returns the last pool's error, classified.
func verifyChain(chain []*x509.Certificate, host string, now time.Time, pools ...*x509.CertPool) (chainFault, error) {
	if len(chain) == 0 {
		return chainNoCert, errors.New("no certificate presented")
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if len(pools) == 0 {
		pools = []*x509.CertPool{nil}
	}
	var err error
	for _, p := range pools {
		if _, err = chain[0].Verify(x509.VerifyOptions{Roots: p, Intermediates: inter, DNSName: host, CurrentTime: now}); err == nil {
			return chainOK, nil
		}
	}
	var (
		hostErr x509.HostnameError
		invalid x509.CertificateInvalidError
		unknown x509.UnknownAuthorityError
	)
	switch {
	case errors.As(err, &hostErr):
		return chainName, err
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		if now.Before(invalid.Cert.NotBefore) {
			return chainNotYetValid, err
		}
		return chainExpired, err
	case errors.As(err, &unknown):
		return chainUnknownCA, err
	}
	return chainOther, err
}

// expiry is how long leaf has left at now, in whole days, and its end date.
func expiry(leaf *x509.Certificate, now time.Time) (left time.Duration, days int, when string) {
	left = leaf.NotAfter.Sub(now)
	return left, int(left.Hours() / 24), leaf.NotAfter.UTC().Format(time.DateOnly)
}
