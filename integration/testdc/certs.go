package testdc

import (
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/adwriteback/adwriteback/integration/testca"
)

// caValidity is how long the DC's CA and certificate last: the DC
// outlives a test run (it is provisioned once and kept).
const caValidity = 2 * 365 * 24 * time.Hour

// makeCerts writes ca.pem, cert.pem and key.pem (0600) into dir: a CA of
// integration/testca (the harness's one CA implementation) and a server
// certificate for host and ip.
func makeCerts(dir, host string, ip net.IP) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	ca, err := testca.New("adwriteback test CA", testca.ValidFor(caValidity))
	if err != nil {
		return err
	}
	cert, key, err := ca.ServerPEM(host, ip.String())
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), ca.PEM(), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "cert.pem"), cert, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "key.pem"), key, 0o600)
}
