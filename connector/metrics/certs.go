package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Cert is one certificate whose days left are exposed: a DC's (DC is its
// URL) or the HTTPS listener's (Listener is its address). Exactly one of
// DC and Listener is set.
type Cert struct {
	DC, Listener string
	NotAfter     time.Time
}

var descCertDays = prometheus.NewDesc(Namespace+"_tls_certificate_expiry_days",
	"Days until the certificate expires (negative once expired), by domain controller (dc: its leaf, from the last TLS handshake) or listener (the HTTPS listener's own); the other label is empty.",
	[]string{"dc", "listener"}, nil)

// WatchCerts registers a collector that reads the certificates at every
// scrape and exposes each one's days left at now(); a certificate whose
// expiry is unknown (zero NotAfter) is left out.
func (m *Metrics) WatchCerts(now func() time.Time, certs func() []Cert) error {
	return m.reg.Register(&certCollector{now: now, certs: certs, dcs: m.dcs})
}

type certCollector struct {
	now   func() time.Time
	certs func() []Cert
	dcs   *labelSet
}

func (c *certCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descCertDays }

func (c *certCollector) Collect(ch chan<- prometheus.Metric) {
	now := c.now()
	seen := map[[2]string]bool{}
	for _, cert := range c.certs() {
		if cert.NotAfter.IsZero() {
			continue
		}
		key := [2]string{"", cert.Listener}
		if cert.DC != "" {
			key = [2]string{c.dcs.value(cert.DC), ""}
		}
		if seen[key] {
			continue
		}
		seen[key] = true
		days := cert.NotAfter.Sub(now).Hours() / 24
		ch <- prometheus.MustNewConstMetric(descCertDays, prometheus.GaugeValue, days, key[0], key[1])
	}
}
