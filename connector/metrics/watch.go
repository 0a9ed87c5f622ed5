package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// LinkStates are the values of the queue link state label, in a fixed
// order: a source reports one of them as Queue.State.
var LinkStates = []string{"connecting", "up", "down", "stopped"}

// Queue is what the queue collector reads from the message source at each
// scrape: its receive link state (one of LinkStates) and its totals since
// start. The wiring code converts the source's own health type to it.
type Queue struct {
	State                                string
	InFlight, ConsecutiveFailures        int
	Reconnects                           int
	Received, Completed, Abandoned       int64
	DeadLettered, LockLost, SettleErrors int64
	LockRenewals                         int64
	// LastReceive is when a receive call last succeeded (zero before the first).
	LastReceive time.Time
}

// DC is what the DC collector reads about one domain controller of a
// domain's LDAP pool at each scrape.
type DC struct {
	URL string
	// State is "up" only when the DC's last probe or use succeeded;
	// "down" after a failure; "unknown" before either.
	State       string
	Failures    int // consecutive
	BindLatency time.Duration
}

// DCStates are the values of the state label of the DC state series.
var DCStates = []string{"unknown", "up", "down"}

// WatchQueue registers a collector that reads the message source's state
// at every scrape. It exposes the receive link state (one series per state
// in LinkStates, 1 for the current one), messages in flight, consecutive
// receive failures, and the source's totals: received, settled by
// disposition, locks lost, settle errors and reconnects.
func (m *Metrics) WatchQueue(queue func() Queue) error {
	return m.reg.Register(&queueCollector{queue: queue})
}

type queueCollector struct {
	queue func() Queue
}

var (
	descLinkState = prometheus.NewDesc(Namespace+"_queue_link_state",
		"Service Bus receive link state: 1 for the current state, 0 for the others.", []string{"state"}, nil)
	descInFlight = prometheus.NewDesc(Namespace+"_queue_in_flight",
		"Commands received and not yet settled.", nil, nil)
	descConsecutiveFailures = prometheus.NewDesc(Namespace+"_queue_consecutive_failures",
		"Receive failures since the last successful receive.", nil, nil)
	descReceived = prometheus.NewDesc(Namespace+"_queue_received_total",
		"Messages received from the queue.", nil, nil)
	descSettled = prometheus.NewDesc(Namespace+"_queue_settled_total",
		"Messages settled, by disposition.", []string{"disposition"}, nil)
	descLockLost = prometheus.NewDesc(Namespace+"_queue_lock_lost_total",
		"Message locks lost (renewal failed or expired) while a command was in flight.", nil, nil)
	descLockRenewals = prometheus.NewDesc(Namespace+"_queue_lock_renewals_total",
		"Message locks renewed while a command was in flight.", nil, nil)
	descSettleErrors = prometheus.NewDesc(Namespace+"_queue_settle_errors_total",
		"Failed settle calls (complete, abandon, dead-letter).", nil, nil)
	descReconnects = prometheus.NewDesc(Namespace+"_queue_reconnects_total",
		"Receivers recreated after a failure or a stall.", nil, nil)
	descLastReceive = prometheus.NewDesc(Namespace+"_queue_last_receive_timestamp_seconds",
		"Unix time of the last successful receive call (0 before the first).", nil, nil)
)

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLinkState, descInFlight, descConsecutiveFailures, descReceived,
		descSettled, descLockLost, descLockRenewals, descSettleErrors, descReconnects, descLastReceive} {
		ch <- d
	}
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	h := c.queue()
	for _, s := range LinkStates {
		v := 0.0
		if h.State == s {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(descLinkState, prometheus.GaugeValue, v, s)
	}
	ch <- prometheus.MustNewConstMetric(descInFlight, prometheus.GaugeValue, float64(h.InFlight))
	ch <- prometheus.MustNewConstMetric(descConsecutiveFailures, prometheus.GaugeValue, float64(h.ConsecutiveFailures))
	ch <- prometheus.MustNewConstMetric(descReceived, prometheus.CounterValue, float64(h.Received))
	ch <- prometheus.MustNewConstMetric(descSettled, prometheus.CounterValue, float64(h.Completed), "completed")
	ch <- prometheus.MustNewConstMetric(descSettled, prometheus.CounterValue, float64(h.Abandoned), "abandoned")
	ch <- prometheus.MustNewConstMetric(descSettled, prometheus.CounterValue, float64(h.DeadLettered), "dead_lettered")
	ch <- prometheus.MustNewConstMetric(descLockLost, prometheus.CounterValue, float64(h.LockLost))
	ch <- prometheus.MustNewConstMetric(descLockRenewals, prometheus.CounterValue, float64(h.LockRenewals))
	ch <- prometheus.MustNewConstMetric(descSettleErrors, prometheus.CounterValue, float64(h.SettleErrors))
	ch <- prometheus.MustNewConstMetric(descReconnects, prometheus.CounterValue, float64(h.Reconnects))
	last := 0.0
	if !h.LastReceive.IsZero() {
		last = float64(h.LastReceive.UnixNano()) / 1e9
	}
	ch <- prometheus.MustNewConstMetric(descLastReceive, prometheus.GaugeValue, last)
}

// WatchDCs registers a collector that reads the LDAP pool's view of its
// domain controllers at every scrape, for one domain. It exposes, per DC
// URL: up (1 only when the last probe or use succeeded: 0 when down and
// when unknown, i.e. not probed yet), the state (one series per state in
// DCStates, 1 for the current one), consecutive failures and the latency
// of the last successful bind or probe. Call it once per domain.
func (m *Metrics) WatchDCs(domain string, servers func() []DC) error {
	return m.reg.Register(&dcCollector{domain: domain, servers: servers, dcs: m.dcs})
}

type dcCollector struct {
	domain  string
	servers func() []DC
	dcs     *labelSet
}

var (
	descDCUp = prometheus.NewDesc(Namespace+"_ldap_dc_up",
		"1 when the domain controller's last probe or use succeeded; 0 when it failed or the DC was not probed yet.", []string{"domain", "dc"}, nil)
	descDCState = prometheus.NewDesc(Namespace+"_ldap_dc_state",
		"The domain controller's state: 1 for the current one of unknown (not probed yet), up, down.", []string{"domain", "dc", "state"}, nil)
	descDCFailures = prometheus.NewDesc(Namespace+"_ldap_dc_consecutive_failures",
		"Consecutive connection failures to the domain controller.", []string{"domain", "dc"}, nil)
	descDCBind = prometheus.NewDesc(Namespace+"_ldap_dc_bind_latency_seconds",
		"Latency of the last successful bind or probe of the domain controller.", []string{"domain", "dc"}, nil)
)

// Describe sends nothing: the collector is unchecked, because several
// domains share the descriptors (each with its own domain label value).
func (c *dcCollector) Describe(chan<- *prometheus.Desc) {}

func (c *dcCollector) Collect(ch chan<- prometheus.Metric) {
	seen := map[string]bool{}
	for _, s := range c.servers() {
		dc := c.dcs.value(s.URL)
		if seen[dc] { // several URLs folded into "other": report the first only
			continue
		}
		seen[dc] = true
		state := s.State
		if state == "" {
			state = "unknown"
		}
		up := 0.0
		if state == "up" {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(descDCUp, prometheus.GaugeValue, up, c.domain, dc)
		for _, st := range DCStates {
			v := 0.0
			if st == state {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(descDCState, prometheus.GaugeValue, v, c.domain, dc, st)
		}
		ch <- prometheus.MustNewConstMetric(descDCFailures, prometheus.GaugeValue, float64(s.Failures), c.domain, dc)
		ch <- prometheus.MustNewConstMetric(descDCBind, prometheus.GaugeValue, seconds(s.BindLatency), c.domain, dc)
	}
}

// Health is the readiness verdict the health collector reads at every
// scrape: Ready as /readyz answers it, and whether the journal accepted
// its last write probe.
type Health struct {
	Ready           bool
	JournalWritable bool
}

// WatchHealth registers a collector that reads the readiness verdict at
// every scrape: adwriteback_ready (1 when /readyz would answer 200) and
// adwriteback_journal_writable (1 when the journal's write probe
// succeeded), so that alerts need not probe /readyz themselves.
func (m *Metrics) WatchHealth(health func() Health) error {
	return m.reg.Register(&healthCollector{health: health})
}

type healthCollector struct {
	health func() Health
}

var (
	descReady = prometheus.NewDesc(Namespace+"_ready",
		"1 when the connector is ready (/readyz answers 200), 0 when a critical check fails.", nil, nil)
	descJournalWritable = prometheus.NewDesc(Namespace+"_journal_writable",
		"1 when the journal accepted its last write probe, 0 when it is not writable.", nil, nil)
)

func (c *healthCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descReady
	ch <- descJournalWritable
}

func (c *healthCollector) Collect(ch chan<- prometheus.Metric) {
	h := c.health()
	ch <- prometheus.MustNewConstMetric(descReady, prometheus.GaugeValue, boolValue(h.Ready))
	ch <- prometheus.MustNewConstMetric(descJournalWritable, prometheus.GaugeValue, boolValue(h.JournalWritable))
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
