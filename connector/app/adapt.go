package app

import (
	"context"
	"sync"

	"github.com/jonboulle/clockwork"

	"github.com/adwriteback/adwriteback/connector/config"
	"github.com/adwriteback/adwriteback/connector/engine"
	"github.com/adwriteback/adwriteback/connector/health"
	"github.com/adwriteback/adwriteback/connector/metrics"
	"github.com/adwriteback/adwriteback/connector/presence"
	"github.com/adwriteback/adwriteback/ldapx"
	"github.com/adwriteback/adwriteback/relay/servicebus"
)

// The adapters below turn the LDAP pool's and the Service Bus source's own
// state into the plain types health and metrics declare, so that those two
// packages depend on neither.

var _ engine.Metrics = (*metrics.Metrics)(nil)

// healthDCs converts the LDAP pool's view (ldapx.Client.Servers).
func healthDCs(servers []ldapx.ServerStatus) []health.DC {
	out := make([]health.DC, len(servers))
	for i, s := range servers {
		out[i] = health.DC{
			URL: s.URL, State: string(s.State), LastOK: s.LastOK, LastProbe: s.LastProbe, Latency: s.BindLatency,
			LastError: s.LastError, Failures: s.Failures,
		}
	}
	return out
}

// healthQueue converts a Service Bus source's health (servicebus.Source.Health).
func healthQueue(h servicebus.Health) health.Queue {
	q := health.Queue{
		Name: h.Queue, State: string(h.State), LastReceive: h.LastReceive,
		LastErrorAt: h.LastErrorAt, InFlight: h.InFlight,
	}
	if h.LastError != nil {
		q.LastError = h.LastError.Error()
	}
	return q
}

// metricsQueue converts a Service Bus source's health for the queue collector.
func metricsQueue(h servicebus.Health) metrics.Queue {
	return metrics.Queue{
		State: string(h.State), InFlight: h.InFlight, ConsecutiveFailures: h.ConsecutiveFailures,
		Reconnects: h.Reconnects, Received: h.Received, Completed: h.Completed, Abandoned: h.Abandoned,
		DeadLettered: h.DeadLettered, LockLost: h.LockLost, SettleErrors: h.SettleErrors,
		LockRenewals: h.LockRenewals, LastReceive: h.LastReceive,
	}
}

// deliveryWatch tells the metrics and readiness of every attempt to
// deliver a result over channel (results.mode).
type deliveryWatch struct {
	channel string
	m       *metrics.Metrics
	d       *health.Deliveries
	clock   clockwork.Clock
}

var _ engine.Deliveries = deliveryWatch{}

func (w deliveryWatch) Delivered(outcome string, err error) {
	if err != nil {
		w.m.DeliveryFailed(w.channel)
	} else {
		w.m.Delivered(w.channel, outcome)
	}
	w.d.Delivered(w.clock.Now(), err)
}

// metricsCerts lists the DCs' leaf certificates, from the pool's last
// TLS handshakes, and the HTTPS listener's.
func metricsCerts(servers []ldapx.ServerStatus, listener string, listenerCerts []health.CertInfo) []metrics.Cert {
	var out []metrics.Cert
	for _, s := range servers {
		out = append(out, metrics.Cert{DC: s.URL, NotAfter: s.CertNotAfter})
	}
	if len(listenerCerts) > 0 { // the leaf comes first in a chain file
		out = append(out, metrics.Cert{Listener: listener, NotAfter: listenerCerts[0].NotAfter})
	}
	return out
}

// toldOnce remembers which permanent facts of the environment were
// logged, so that each is logged once.
type toldOnce struct {
	mu   sync.Mutex
	told map[string]bool
}

// first reports whether fact is new, and remembers it.
func (t *toldOnce) first(fact string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.told[fact] {
		return false
	}
	if t.told == nil {
		t.told = map[string]bool{}
	}
	t.told[fact] = true
	return true
}

// metricsDCs converts the LDAP pool's view for the DC collector.
func metricsDCs(servers []ldapx.ServerStatus) []metrics.DC {
	out := make([]metrics.DC, len(servers))
	for i, s := range servers {
		out[i] = metrics.DC{URL: s.URL, State: string(s.State), Failures: s.Failures, BindLatency: s.BindLatency}
	}
	return out
}

// withHTTPTrust adds the listener's trust settings (bearer token, client
// certificates, Host allow-list, DN redaction) from the http config section
// to o. serveHTTP gives the listener the client CA that verifies the
// certificates.
func withHTTPTrust(o health.Options, h config.HTTP) health.Options {
	o.BearerToken = h.Auth.BearerToken
	o.RequireClientCert, o.ClientNames = h.ClientCAFile != "", h.ClientNames
	o.AllowedHosts = h.AllowedHosts
	o.RedactUserDNs = h.Status.RedactUserDNs
	return o
}

// statusSender adapts the status queue's sender to presence.Sender.
type statusSender struct{ s *servicebus.StatusSender }

func (s statusSender) SendStatus(ctx context.Context, m presence.Message) error {
	return s.s.Send(ctx, servicebus.StatusOut{MessageID: m.ID, Body: m.Body, TTL: m.TTL,
		Instance: m.Instance, State: string(m.State)})
}
