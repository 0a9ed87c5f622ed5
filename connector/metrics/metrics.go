// Package metrics owns the connector's Prometheus metrics: one Metrics value
// registers every series under the "adwriteback" namespace on a registry the
// caller passes in (never the global one). It records the command
// pipeline's events (the engine's Metrics interface, which the wiring code
// asserts), takes LDAP latencies and queue receive lag from the wiring code,
// and reads the message source's and the LDAP pools' state and the
// certificates' expiry at scrape time through WatchQueue, WatchDCs and
// WatchCerts, as the neutral Queue, DC and Cert values it
// declares: it imports neither the engine, nor the LDAP layer, nor a queue's
// SDK (the dependency test in connector/app holds it to that).
//
// Label values are kept stable and bounded: operations and outcomes are
// checked against the wire protocol's sets, free-form values (rules, LDAP
// operations) must look like identifiers, and every label keeps at most a
// fixed number of distinct values; anything else is reported as "other".
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/adwriteback/adwriteback/relay/protocol"
)

// Namespace prefixes every metric name.
const Namespace = "adwriteback"

// Other is the label value that stands for any value outside a label's
// known or allowed set.
const Other = "other"

// Default histogram buckets, in seconds.
var (
	// CommandBuckets covers a whole command, from a journal hit (sub-ms) to a
	// slow DC with retries.
	CommandBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	// LDAPBuckets covers one LDAP operation against one DC.
	LDAPBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	// LagBuckets covers the time a command waited in the queue.
	LagBuckets = []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}
)

// Metrics holds the connector's metrics. Its methods are safe for concurrent
// use; a nil *Metrics is not valid (use engine's no-op default instead).
type Metrics struct {
	commands    *prometheus.CounterVec
	commandDur  *prometheus.HistogramVec
	violations  *prometheus.CounterVec
	journalHits prometheus.Counter
	retries     prometheus.Counter
	rejected    *prometheus.CounterVec
	delivered   *prometheus.CounterVec
	undelivered *prometheus.CounterVec
	ldapDur     *prometheus.HistogramVec
	receiveLag  prometheus.Histogram

	reg prometheus.Registerer

	ops, outcomes, rules, ldapOps, dcs, reasons, channels *labelSet
}

// Maximum distinct values kept per free-form label before "other" is used.
const (
	maxRules   = 64
	maxLDAPOps = 32
	maxDCs     = 64
	maxReasons = 32
)

// New creates the metrics and registers them on reg. It fails if any of them
// is already registered there.
func New(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		reg: reg,
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace,
			Name:      "commands_total",
			Help:      "Commands decided, by operation and result code (whether or not the result was delivered: see results_delivered_total).",
		}, []string{"op", "outcome"}),
		commandDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace,
			Name:      "command_duration_seconds",
			Help:      "Time to handle one command, from receipt to result, by operation.",
			Buckets:   CommandBuckets,
		}, []string{"op"}),
		violations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace,
			Name:      "violations_total",
			Help:      "Password policy rules failed by the local pre-check, by rule.",
		}, []string{"rule"}),
		journalHits: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace,
			Name:      "journal_hits_total",
			Help:      "Redelivered commands answered from the journal instead of applied again.",
		}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace,
			Name:      "retries_total",
			Help:      "Retries of transient failures inside the engine.",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace,
			Name:      "rejected_messages_total",
			Help:      "Messages dead-lettered without an answer: unverifiable (by protocol failure), a copy of a signed command under another message id (message_id_mismatch), or a command whose result could not be delivered by its last attempt (result_undeliverable).",
		}, []string{"reason"}),
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace,
			Name:      "results_delivered_total",
			Help:      "Results delivered, by channel (reply_queue, https) and result code; a result sent again (from the journal) counts again.",
		}, []string{"channel", "outcome"}),
		undelivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace,
			Name:      "result_delivery_failures_total",
			Help:      "Attempts to deliver a result that failed, by channel (reply_queue, https).",
		}, []string{"channel"}),
		ldapDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace,
			Subsystem: "ldap",
			Name:      "operation_duration_seconds",
			Help:      "Latency of LDAP operations, by domain controller and operation.",
			Buckets:   LDAPBuckets,
		}, []string{"dc", "op"}),
		receiveLag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace,
			Subsystem: "queue",
			Name:      "receive_lag_seconds",
			Help:      "Time between a command's enqueue on Service Bus and its receipt by the connector.",
			Buckets:   LagBuckets,
		}),
		ops:      newLabelSet(knownOps(), 0),
		outcomes: newLabelSet(knownOutcomes(), 0),
		rules:    newLabelSet(nil, maxRules),
		ldapOps:  newLabelSet(nil, maxLDAPOps),
		dcs:      newLabelSet(nil, maxDCs),
		reasons:  newLabelSet(nil, maxReasons),
		channels: newLabelSet(Channels, 0),
	}
	for _, c := range []prometheus.Collector{
		m.commands, m.commandDur, m.violations, m.journalHits, m.retries, m.rejected,
		m.delivered, m.undelivered, m.ldapDur, m.receiveLag,
	} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	// Failures start at 0 on every channel, so that an alert on their
	// increase sees the first one.
	for _, c := range Channels {
		m.undelivered.WithLabelValues(c)
	}
	return m, nil
}

// knownOps are the operation label values: the protocol's operations plus
// "unknown", which the engine uses for a command it could not decode.
func knownOps() []string {
	return []string{
		string(protocol.OpReset), string(protocol.OpChange), string(protocol.OpUnlock),
		string(protocol.OpCheck), string(protocol.OpDescribe), "unknown",
	}
}

func knownOutcomes() []string {
	codes := protocol.ResultCodes()
	out := make([]string, len(codes))
	for i, c := range codes {
		out[i] = string(c)
	}
	return out
}

// Command counts one handled command and observes its duration.
func (m *Metrics) Command(op, outcome string, d time.Duration) {
	op = m.ops.value(op)
	m.commands.WithLabelValues(op, m.outcomes.value(outcome)).Inc()
	m.commandDur.WithLabelValues(op).Observe(seconds(d))
}

// Rejected counts a message dead-lettered without an answer, by reason
// (protocol.KindName: a bounded set).
func (m *Metrics) Rejected(reason string) { m.rejected.WithLabelValues(m.reasons.value(reason)).Inc() }

// Channels are the values of the channel label: where results go.
var Channels = []string{"reply_queue", "https"}

// Delivered counts one result delivered over channel (one of Channels),
// with its result code.
func (m *Metrics) Delivered(channel, outcome string) {
	m.delivered.WithLabelValues(m.channels.value(channel), m.outcomes.value(outcome)).Inc()
}

// DeliveryFailed counts one failed attempt to deliver a result over channel.
func (m *Metrics) DeliveryFailed(channel string) {
	m.undelivered.WithLabelValues(m.channels.value(channel)).Inc()
}

// Violation counts one failed policy rule.
func (m *Metrics) Violation(rule string) {
	m.violations.WithLabelValues(m.rules.value(rule)).Inc()
}

// JournalHit counts a command answered from the journal.
func (m *Metrics) JournalHit() { m.journalHits.Inc() }

// Retry counts one retry of a transient failure.
func (m *Metrics) Retry() { m.retries.Inc() }

// ObserveLDAP records the latency of one LDAP operation (e.g. "bind",
// "search", "modify") against the domain controller dc (its URL).
func (m *Metrics) ObserveLDAP(dc, op string, d time.Duration) {
	m.ldapDur.WithLabelValues(m.dcs.value(dc), m.ldapOps.value(op)).Observe(seconds(d))
}

// ObserveReceiveLag records how long a command waited in the queue: the time
// between enqueued (transport.Delivery.EnqueuedTime) and received. A zero
// enqueued time is ignored; a negative lag (clock skew between Service Bus
// and this host) is recorded as zero.
func (m *Metrics) ObserveReceiveLag(enqueued, received time.Time) {
	if enqueued.IsZero() || received.IsZero() {
		return
	}
	m.receiveLag.Observe(seconds(received.Sub(enqueued)))
}

func seconds(d time.Duration) float64 {
	if d < 0 {
		return 0
	}
	return d.Seconds()
}
