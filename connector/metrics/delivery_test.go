package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestDeliveredApartFromDecided: results delivered and failed deliveries
// are counted by channel, apart from the commands decided; an unknown
// channel is "other".
func TestDeliveredApartFromDecided(t *testing.T) {
	m, reg := newTest(t)
	m.Command("reset", "succeeded", time.Millisecond)
	m.Command("reset", "succeeded", time.Millisecond)
	m.DeliveryFailed("reply_queue")
	m.DeliveryFailed("reply_queue")
	m.Delivered("reply_queue", "succeeded")
	m.Delivered("pigeon", "succeeded")
	want := `
# HELP adwriteback_result_delivery_failures_total Attempts to deliver a result that failed, by channel (reply_queue, https).
# TYPE adwriteback_result_delivery_failures_total counter
adwriteback_result_delivery_failures_total{channel="https"} 0
adwriteback_result_delivery_failures_total{channel="reply_queue"} 2
# HELP adwriteback_results_delivered_total Results delivered, by channel (reply_queue, https) and result code; a result sent again (from the journal) counts again.
# TYPE adwriteback_results_delivered_total counter
adwriteback_results_delivered_total{channel="other",outcome="succeeded"} 1
adwriteback_results_delivered_total{channel="reply_queue",outcome="succeeded"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"adwriteback_results_delivered_total", "adwriteback_result_delivery_failures_total"); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(m.commands.WithLabelValues("reset", "succeeded")); got != 2 {
		t.Fatalf("decided %v, want 2", got)
	}
}

// TestWatchCerts: days left per DC and for the listener, negative once
// expired; an unknown expiry is left out.
func TestWatchCerts(t *testing.T) {
	m, reg := newTest(t)
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	certs := []Cert{
		{DC: "ldaps://dc1.adw.test:636", NotAfter: now.Add(30 * 24 * time.Hour)},
		{DC: "ldaps://dc2.adw.test:636", NotAfter: now.Add(-36 * time.Hour)},
		{DC: "ldaps://dc3.adw.test:636"},
		{Listener: "127.0.0.1:8443", NotAfter: now.Add(12 * time.Hour)},
	}
	if err := m.WatchCerts(func() time.Time { return now }, func() []Cert { return certs }); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP adwriteback_tls_certificate_expiry_days Days until the certificate expires (negative once expired), by domain controller (dc: its leaf, from the last TLS handshake) or listener (the HTTPS listener's own); the other label is empty.
# TYPE adwriteback_tls_certificate_expiry_days gauge
adwriteback_tls_certificate_expiry_days{dc="",listener="127.0.0.1:8443"} 0.5
adwriteback_tls_certificate_expiry_days{dc="ldaps://dc1.adw.test:636",listener=""} 30
adwriteback_tls_certificate_expiry_days{dc="ldaps://dc2.adw.test:636",listener=""} -1.5
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "adwriteback_tls_certificate_expiry_days"); err != nil {
		t.Fatal(err)
	}
}
