package app

import (
	"errors"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/adwriteback/adwriteback/connector/health"
	"github.com/adwriteback/adwriteback/connector/metrics"
	"github.com/adwriteback/adwriteback/ldapx"
)

// TestDeliveryWatch: every attempt reaches both the counters (by channel)
// and the readiness state, at the clock's time.
func TestDeliveryWatch(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m, err := metrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	clock := clockwork.NewFakeClockAt(t0)
	d := health.NewDeliveries("https", time.Minute)
	w := deliveryWatch{channel: "https", m: m, d: d, clock: clock}
	w.Delivered("succeeded", errors.New("503"))
	clock.Advance(time.Second)
	w.Delivered("succeeded", errors.New("503"))
	if r := d.Results(); r.Failures != 2 || !r.FailingSince.Equal(t0) {
		t.Fatalf("after failures: %+v", r)
	}
	w.Delivered("succeeded", nil)
	if r := d.Results(); r.Failures != 0 || !r.LastDelivered.Equal(t0.Add(time.Second)) {
		t.Fatalf("after a delivery: %+v", r)
	}
	counters := health.CountersFrom(reg, "adwriteback_")()
	if got := counters["result_delivery_failures_total{channel=https}"]; got != 2 {
		t.Errorf("failures %v, want 2 (%v)", got, counters)
	}
	if got := counters["results_delivered_total{channel=https,outcome=succeeded}"]; got != 1 {
		t.Errorf("delivered %v, want 1 (%v)", got, counters)
	}
}

func TestMetricsCertsAndToldOnce(t *testing.T) {
	got := metricsCerts([]ldapx.ServerStatus{{URL: "ldaps://dc1", CertNotAfter: t0}, {URL: "ldaps://dc2"}},
		"0.0.0.0:8443", []health.CertInfo{{NotAfter: t0.Add(time.Hour)}, {NotAfter: t0.Add(2 * time.Hour)}})
	want := []metrics.Cert{{DC: "ldaps://dc1", NotAfter: t0}, {DC: "ldaps://dc2"}, {Listener: "0.0.0.0:8443", NotAfter: t0.Add(time.Hour)}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("metricsCerts = %+v", got)
	}
	var told toldOnce
	if !told.first("a") || told.first("a") || !told.first("b") {
		t.Error("toldOnce does not tell each fact once")
	}
}
