package app

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/adwriteback/adwriteback/connector/config"
	"github.com/adwriteback/adwriteback/connector/health"
	"github.com/adwriteback/adwriteback/connector/metrics"
	"github.com/adwriteback/adwriteback/ldapx"
	"github.com/adwriteback/adwriteback/relay/servicebus"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func TestAdapters(t *testing.T) {
	dcs := healthDCs([]ldapx.ServerStatus{{URL: "ldaps://dc1", State: ldapx.DCDown, LastOK: t0, LastProbe: t0.Add(time.Second),
		LastError: "refused", Failures: 2, BindLatency: 3 * time.Millisecond}})
	want := health.DC{URL: "ldaps://dc1", State: health.DCDown, LastOK: t0, LastProbe: t0.Add(time.Second),
		Latency: 3 * time.Millisecond, LastError: "refused", Failures: 2}
	if len(dcs) != 1 || dcs[0] != want {
		t.Errorf("healthDCs = %+v", dcs)
	}
	q := healthQueue(servicebus.Health{Queue: "q", State: servicebus.LinkDown, LastError: errors.New("amqp: boom"),
		LastErrorAt: t0, InFlight: 2, LastReceive: t0})
	if q != (health.Queue{Name: "q", State: "down", LastError: "amqp: boom", LastErrorAt: t0, InFlight: 2, LastReceive: t0}) {
		t.Errorf("healthQueue = %+v", q)
	}
	if healthQueue(servicebus.Health{State: servicebus.LinkUp}).LastError != "" {
		t.Error("nil error became text")
	}

	mq := metricsQueue(servicebus.Health{State: servicebus.LinkUp, InFlight: 3, ConsecutiveFailures: 1, Reconnects: 5,
		Received: 10, Completed: 6, Abandoned: 2, DeadLettered: 1, LockLost: 1, SettleErrors: 4, LockRenewals: 7, LastReceive: t0})
	if mq != (metrics.Queue{State: "up", InFlight: 3, ConsecutiveFailures: 1, Reconnects: 5, Received: 10, Completed: 6,
		Abandoned: 2, DeadLettered: 1, LockLost: 1, SettleErrors: 4, LockRenewals: 7, LastReceive: t0}) {
		t.Errorf("metricsQueue = %+v", mq)
	}
	md := metricsDCs([]ldapx.ServerStatus{{URL: "ldaps://dc2", State: ldapx.DCUp, Failures: 1, BindLatency: time.Millisecond}})
	if len(md) != 1 || md[0] != (metrics.DC{URL: "ldaps://dc2", State: "up", Failures: 1, BindLatency: time.Millisecond}) {
		t.Errorf("metricsDCs = %+v", md)
	}
}

// TestLinkStatesMatch: the metrics label values are the source's link states, so a state
// the source reports is never missing from adwriteback_queue_link_state.
func TestLinkStatesMatch(t *testing.T) {
	for _, s := range []servicebus.LinkState{servicebus.LinkConnecting, servicebus.LinkUp, servicebus.LinkDown, servicebus.LinkStopped} {
		if !slices.Contains(metrics.LinkStates, string(s)) {
			t.Errorf("link state %q is not in metrics.LinkStates %v", s, metrics.LinkStates)
		}
	}
	if len(metrics.LinkStates) != 4 {
		t.Errorf("metrics.LinkStates = %v, want the source's four states", metrics.LinkStates)
	}
}

// TestHTTPTrustWired: the http section's token, allowed hosts and DN
// redaction reach the handler's options, beside what was already set.
func TestHTTPTrustWired(t *testing.T) {
	h := config.HTTP{
		Auth:         config.HTTPAuth{BearerTokenFile: "/etc/adwriteback/http.token", BearerToken: "tok"},
		AllowedHosts: []string{"localhost"},
		Status:       config.HTTPStatus{RedactUserDNs: true},
	}
	o := withHTTPTrust(health.Options{Version: "v1"}, h)
	if o.BearerToken != "tok" || !slices.Equal(o.AllowedHosts, []string{"localhost"}) || !o.RedactUserDNs || o.Version != "v1" {
		t.Errorf("options = %+v", o)
	}
	if o.RequireClientCert || o.ClientNames != nil {
		t.Errorf("client certificates required without a client CA: %+v", o)
	}
	h.ClientCAFile, h.ClientNames = "/etc/adwriteback/clients-ca.pem", []string{"prometheus"}
	if o := withHTTPTrust(health.Options{}, h); !o.RequireClientCert || !slices.Equal(o.ClientNames, h.ClientNames) {
		t.Errorf("with a client CA: options = %+v", o)
	}
}
