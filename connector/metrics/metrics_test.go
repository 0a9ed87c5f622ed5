package metrics

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func newTest(t *testing.T) (*Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	m, err := New(reg)
	if err != nil {
		t.Fatal(err)
	}
	return m, reg
}

func TestCommandCountsAndDurations(t *testing.T) {
	m, reg := newTest(t)
	m.Command("reset", "succeeded", 30*time.Millisecond)
	m.Command("reset", "succeeded", 70*time.Millisecond)
	m.Command("change", "policy_violation", 2*time.Millisecond)
	m.Command("reset", "transient", -time.Second) // negative: recorded as 0

	if got := testutil.ToFloat64(m.commands.WithLabelValues("reset", "succeeded")); got != 2 {
		t.Errorf("reset/succeeded = %v, want 2", got)
	}
	if got := testutil.ToFloat64(m.commands.WithLabelValues("change", "policy_violation")); got != 1 {
		t.Errorf("change/policy_violation = %v, want 1", got)
	}
	want := `
# HELP adwriteback_command_duration_seconds Time to handle one command, from receipt to result, by operation.
# TYPE adwriteback_command_duration_seconds histogram
adwriteback_command_duration_seconds_bucket{op="change",le="0.001"} 0
adwriteback_command_duration_seconds_bucket{op="change",le="0.0025"} 1
adwriteback_command_duration_seconds_bucket{op="change",le="0.005"} 1
adwriteback_command_duration_seconds_bucket{op="change",le="0.01"} 1
adwriteback_command_duration_seconds_bucket{op="change",le="0.025"} 1
adwriteback_command_duration_seconds_bucket{op="change",le="0.05"} 1
adwriteback_command_duration_seconds_bucket{op="change",le="0.1"} 1
adwriteback_command_duration_seconds_bucket{op="change",le="0.25"} 1
adwriteback_command_duration_seconds_bucket{op="change",le="0.5"} 1
adwriteback_command_duration_seconds_bucket{op="change",le="1"} 1
adwriteback_command_duration_seconds_bucket{op="change",le="2.5"} 1
adwriteback_command_duration_seconds_bucket{op="change",le="5"} 1
adwriteback_command_duration_seconds_bucket{op="change",le="10"} 1
adwriteback_command_duration_seconds_bucket{op="change",le="30"} 1
adwriteback_command_duration_seconds_bucket{op="change",le="+Inf"} 1
adwriteback_command_duration_seconds_sum{op="change"} 0.002
adwriteback_command_duration_seconds_count{op="change"} 1
adwriteback_command_duration_seconds_bucket{op="reset",le="0.001"} 1
adwriteback_command_duration_seconds_bucket{op="reset",le="0.0025"} 1
adwriteback_command_duration_seconds_bucket{op="reset",le="0.005"} 1
adwriteback_command_duration_seconds_bucket{op="reset",le="0.01"} 1
adwriteback_command_duration_seconds_bucket{op="reset",le="0.025"} 1
adwriteback_command_duration_seconds_bucket{op="reset",le="0.05"} 2
adwriteback_command_duration_seconds_bucket{op="reset",le="0.1"} 3
adwriteback_command_duration_seconds_bucket{op="reset",le="0.25"} 3
adwriteback_command_duration_seconds_bucket{op="reset",le="0.5"} 3
adwriteback_command_duration_seconds_bucket{op="reset",le="1"} 3
adwriteback_command_duration_seconds_bucket{op="reset",le="2.5"} 3
adwriteback_command_duration_seconds_bucket{op="reset",le="5"} 3
adwriteback_command_duration_seconds_bucket{op="reset",le="10"} 3
adwriteback_command_duration_seconds_bucket{op="reset",le="30"} 3
adwriteback_command_duration_seconds_bucket{op="reset",le="+Inf"} 3
adwriteback_command_duration_seconds_sum{op="reset"} 0.1
adwriteback_command_duration_seconds_count{op="reset"} 3
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "adwriteback_command_duration_seconds"); err != nil {
		t.Error(err)
	}
}

func TestLabelValuesStayBounded(t *testing.T) {
	m, _ := newTest(t)
	m.Command("drop table", "succeeded", 0)    // unknown op
	m.Command("reset", "password=hunter2", 0)  // unknown outcome
	m.Command("unknown", "invalid_command", 0) // the engine's label for undecodable commands
	m.Violation("min_length")
	m.Violation("has space")              // not a plain token
	m.Violation(strings.Repeat("x", 200)) // too long
	for i := range maxRules + 10 {
		m.Violation(fmt.Sprintf("rule_%d", i))
	}

	if got := testutil.ToFloat64(m.commands.WithLabelValues(Other, "succeeded")); got != 1 {
		t.Errorf("other op = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.commands.WithLabelValues("reset", Other)); got != 1 {
		t.Errorf("other outcome = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.commands.WithLabelValues("unknown", "invalid_command")); got != 1 {
		t.Errorf("unknown/invalid_command = %v, want 1", got)
	}
	if n := testutil.CollectAndCount(m.commands); n != 3 {
		t.Errorf("commands series = %d, want 3", n)
	}
	// min_length plus rule_0..rule_62 fill the 64 slots; the rest and the bad ones go to other.
	if n := testutil.CollectAndCount(m.violations); n != maxRules+1 {
		t.Errorf("violation series = %d, want %d", n, maxRules+1)
	}
	if got := testutil.ToFloat64(m.violations.WithLabelValues(Other)); got != 2+11 {
		t.Errorf("other rule = %v, want 13", got)
	}
	if got := testutil.ToFloat64(m.violations.WithLabelValues("min_length")); got != 1 {
		t.Errorf("min_length = %v, want 1", got)
	}
}

func TestJournalHitsRetriesLDAPAndLag(t *testing.T) {
	m, reg := newTest(t)
	m.JournalHit()
	m.Retry()
	m.Retry()
	m.ObserveLDAP("ldaps://dc1.corp.example:636", "modify", 20*time.Millisecond)
	m.ObserveLDAP("ldaps://dc2.corp.example:636", "modify", 3*time.Millisecond)
	m.ObserveLDAP("ldaps://dc2.corp.example:636", "bind", 4*time.Millisecond)

	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	m.ObserveReceiveLag(t0, t0.Add(1500*time.Millisecond))
	m.ObserveReceiveLag(t0, t0.Add(-time.Second)) // skew: 0
	m.ObserveReceiveLag(time.Time{}, t0)          // no enqueue time: ignored

	if got := testutil.ToFloat64(m.journalHits); got != 1 {
		t.Errorf("journal hits = %v", got)
	}
	if got := testutil.ToFloat64(m.retries); got != 2 {
		t.Errorf("retries = %v", got)
	}
	if n := testutil.CollectAndCount(m.ldapDur); n != 3 {
		t.Errorf("ldap series = %d, want 3", n)
	}
	want := `
# HELP adwriteback_queue_receive_lag_seconds Time between a command's enqueue on Service Bus and its receipt by the connector.
# TYPE adwriteback_queue_receive_lag_seconds histogram
adwriteback_queue_receive_lag_seconds_bucket{le="0.01"} 1
adwriteback_queue_receive_lag_seconds_bucket{le="0.05"} 1
adwriteback_queue_receive_lag_seconds_bucket{le="0.1"} 1
adwriteback_queue_receive_lag_seconds_bucket{le="0.25"} 1
adwriteback_queue_receive_lag_seconds_bucket{le="0.5"} 1
adwriteback_queue_receive_lag_seconds_bucket{le="1"} 1
adwriteback_queue_receive_lag_seconds_bucket{le="2.5"} 2
adwriteback_queue_receive_lag_seconds_bucket{le="5"} 2
adwriteback_queue_receive_lag_seconds_bucket{le="10"} 2
adwriteback_queue_receive_lag_seconds_bucket{le="30"} 2
adwriteback_queue_receive_lag_seconds_bucket{le="60"} 2
adwriteback_queue_receive_lag_seconds_bucket{le="120"} 2
adwriteback_queue_receive_lag_seconds_bucket{le="300"} 2
adwriteback_queue_receive_lag_seconds_bucket{le="600"} 2
adwriteback_queue_receive_lag_seconds_bucket{le="+Inf"} 2
adwriteback_queue_receive_lag_seconds_sum 1.5
adwriteback_queue_receive_lag_seconds_count 2
# HELP adwriteback_journal_hits_total Redelivered commands answered from the journal instead of applied again.
# TYPE adwriteback_journal_hits_total counter
adwriteback_journal_hits_total 1
# HELP adwriteback_retries_total Retries of transient failures inside the engine.
# TYPE adwriteback_retries_total counter
adwriteback_retries_total 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"adwriteback_queue_receive_lag_seconds", "adwriteback_journal_hits_total", "adwriteback_retries_total"); err != nil {
		t.Error(err)
	}
	for _, c := range []struct {
		dc, op string
		count  uint64
		sum    float64
	}{
		{"ldaps://dc1.corp.example:636", "modify", 1, 0.020},
		{"ldaps://dc2.corp.example:636", "modify", 1, 0.003},
		{"ldaps://dc2.corp.example:636", "bind", 1, 0.004},
	} {
		n, sum := histogram(t, reg, "adwriteback_ldap_operation_duration_seconds", map[string]string{"dc": c.dc, "op": c.op})
		if n != c.count || math.Abs(sum-c.sum) > 1e-9 {
			t.Errorf("ldap %s %s: count %d sum %v, want %d %v", c.dc, c.op, n, sum, c.count, c.sum)
		}
	}
}

func TestNewRejectsDoubleRegistration(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := New(reg); err != nil {
		t.Fatal(err)
	}
	_, err := New(reg)
	var are prometheus.AlreadyRegisteredError
	if !errors.As(err, &are) {
		t.Fatalf("second New on the same registry: err = %v, want AlreadyRegisteredError", err)
	}
}

func TestWatchQueue(t *testing.T) {
	m, reg := newTest(t)
	var mu sync.Mutex
	h := Queue{State: "connecting"}
	if err := m.WatchQueue(func() Queue { mu.Lock(); defer mu.Unlock(); return h }); err != nil {
		t.Fatal(err)
	}
	const head = `
# HELP adwriteback_queue_link_state Service Bus receive link state: 1 for the current state, 0 for the others.
# TYPE adwriteback_queue_link_state gauge
`
	want := head + `adwriteback_queue_link_state{state="connecting"} 1
adwriteback_queue_link_state{state="down"} 0
adwriteback_queue_link_state{state="stopped"} 0
adwriteback_queue_link_state{state="up"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "adwriteback_queue_link_state"); err != nil {
		t.Error(err)
	}

	mu.Lock()
	h.State = "up"
	h.InFlight = 3
	h.Received, h.Completed, h.Abandoned, h.DeadLettered, h.LockLost, h.SettleErrors, h.Reconnects = 10, 6, 2, 1, 1, 4, 5
	h.LockRenewals = 7
	h.LastReceive = time.Unix(1700000000, 500_000_000)
	mu.Unlock()

	want = head + `adwriteback_queue_link_state{state="connecting"} 0
adwriteback_queue_link_state{state="down"} 0
adwriteback_queue_link_state{state="stopped"} 0
adwriteback_queue_link_state{state="up"} 1
# HELP adwriteback_queue_in_flight Commands received and not yet settled.
# TYPE adwriteback_queue_in_flight gauge
adwriteback_queue_in_flight 3
# HELP adwriteback_queue_received_total Messages received from the queue.
# TYPE adwriteback_queue_received_total counter
adwriteback_queue_received_total 10
# HELP adwriteback_queue_settled_total Messages settled, by disposition.
# TYPE adwriteback_queue_settled_total counter
adwriteback_queue_settled_total{disposition="abandoned"} 2
adwriteback_queue_settled_total{disposition="completed"} 6
adwriteback_queue_settled_total{disposition="dead_lettered"} 1
# HELP adwriteback_queue_lock_lost_total Message locks lost (renewal failed or expired) while a command was in flight.
# TYPE adwriteback_queue_lock_lost_total counter
adwriteback_queue_lock_lost_total 1
# HELP adwriteback_queue_lock_renewals_total Message locks renewed while a command was in flight.
# TYPE adwriteback_queue_lock_renewals_total counter
adwriteback_queue_lock_renewals_total 7
# HELP adwriteback_queue_settle_errors_total Failed settle calls (complete, abandon, dead-letter).
# TYPE adwriteback_queue_settle_errors_total counter
adwriteback_queue_settle_errors_total 4
# HELP adwriteback_queue_reconnects_total Receivers recreated after a failure or a stall.
# TYPE adwriteback_queue_reconnects_total counter
adwriteback_queue_reconnects_total 5
# HELP adwriteback_queue_last_receive_timestamp_seconds Unix time of the last successful receive call (0 before the first).
# TYPE adwriteback_queue_last_receive_timestamp_seconds gauge
adwriteback_queue_last_receive_timestamp_seconds 1.7000000005e+09
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"adwriteback_queue_link_state", "adwriteback_queue_in_flight", "adwriteback_queue_received_total",
		"adwriteback_queue_settled_total", "adwriteback_queue_lock_lost_total", "adwriteback_queue_lock_renewals_total", "adwriteback_queue_settle_errors_total",
		"adwriteback_queue_reconnects_total", "adwriteback_queue_last_receive_timestamp_seconds"); err != nil {
		t.Error(err)
	}
}

func TestWatchDCs(t *testing.T) {
	m, reg := newTest(t)
	corp := []DC{
		{URL: "ldaps://dc1.corp.example:636", State: "up", BindLatency: 12 * time.Millisecond},
		{URL: "ldaps://dc2.corp.example:636", State: "down", Failures: 3},
		{URL: "ldaps://dc3.corp.example:636"},
	}
	if err := m.WatchDCs("corp.example", func() []DC { return corp }); err != nil {
		t.Fatal(err)
	}
	if err := m.WatchDCs("emea.corp.example", func() []DC {
		return []DC{{URL: "ldaps://dc1.emea.corp.example", State: "up"}}
	}); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP adwriteback_ldap_dc_up 1 when the domain controller's last probe or use succeeded; 0 when it failed or the DC was not probed yet.
# TYPE adwriteback_ldap_dc_up gauge
adwriteback_ldap_dc_up{dc="ldaps://dc1.corp.example:636",domain="corp.example"} 1
adwriteback_ldap_dc_up{dc="ldaps://dc1.emea.corp.example",domain="emea.corp.example"} 1
adwriteback_ldap_dc_up{dc="ldaps://dc2.corp.example:636",domain="corp.example"} 0
adwriteback_ldap_dc_up{dc="ldaps://dc3.corp.example:636",domain="corp.example"} 0
# HELP adwriteback_ldap_dc_state The domain controller's state: 1 for the current one of unknown (not probed yet), up, down.
# TYPE adwriteback_ldap_dc_state gauge
adwriteback_ldap_dc_state{dc="ldaps://dc1.corp.example:636",domain="corp.example",state="down"} 0
adwriteback_ldap_dc_state{dc="ldaps://dc1.corp.example:636",domain="corp.example",state="unknown"} 0
adwriteback_ldap_dc_state{dc="ldaps://dc1.corp.example:636",domain="corp.example",state="up"} 1
adwriteback_ldap_dc_state{dc="ldaps://dc1.emea.corp.example",domain="emea.corp.example",state="down"} 0
adwriteback_ldap_dc_state{dc="ldaps://dc1.emea.corp.example",domain="emea.corp.example",state="unknown"} 0
adwriteback_ldap_dc_state{dc="ldaps://dc1.emea.corp.example",domain="emea.corp.example",state="up"} 1
adwriteback_ldap_dc_state{dc="ldaps://dc2.corp.example:636",domain="corp.example",state="down"} 1
adwriteback_ldap_dc_state{dc="ldaps://dc2.corp.example:636",domain="corp.example",state="unknown"} 0
adwriteback_ldap_dc_state{dc="ldaps://dc2.corp.example:636",domain="corp.example",state="up"} 0
adwriteback_ldap_dc_state{dc="ldaps://dc3.corp.example:636",domain="corp.example",state="down"} 0
adwriteback_ldap_dc_state{dc="ldaps://dc3.corp.example:636",domain="corp.example",state="unknown"} 1
adwriteback_ldap_dc_state{dc="ldaps://dc3.corp.example:636",domain="corp.example",state="up"} 0
# HELP adwriteback_ldap_dc_consecutive_failures Consecutive connection failures to the domain controller.
# TYPE adwriteback_ldap_dc_consecutive_failures gauge
adwriteback_ldap_dc_consecutive_failures{dc="ldaps://dc1.corp.example:636",domain="corp.example"} 0
adwriteback_ldap_dc_consecutive_failures{dc="ldaps://dc1.emea.corp.example",domain="emea.corp.example"} 0
adwriteback_ldap_dc_consecutive_failures{dc="ldaps://dc2.corp.example:636",domain="corp.example"} 3
adwriteback_ldap_dc_consecutive_failures{dc="ldaps://dc3.corp.example:636",domain="corp.example"} 0
# HELP adwriteback_ldap_dc_bind_latency_seconds Latency of the last successful bind or probe of the domain controller.
# TYPE adwriteback_ldap_dc_bind_latency_seconds gauge
adwriteback_ldap_dc_bind_latency_seconds{dc="ldaps://dc1.corp.example:636",domain="corp.example"} 0.012
adwriteback_ldap_dc_bind_latency_seconds{dc="ldaps://dc1.emea.corp.example",domain="emea.corp.example"} 0
adwriteback_ldap_dc_bind_latency_seconds{dc="ldaps://dc2.corp.example:636",domain="corp.example"} 0
adwriteback_ldap_dc_bind_latency_seconds{dc="ldaps://dc3.corp.example:636",domain="corp.example"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"adwriteback_ldap_dc_up", "adwriteback_ldap_dc_state", "adwriteback_ldap_dc_consecutive_failures", "adwriteback_ldap_dc_bind_latency_seconds"); err != nil {
		t.Error(err)
	}
}

func TestConcurrentUse(t *testing.T) {
	m, reg := newTest(t)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				m.Command("reset", "succeeded", time.Millisecond)
				m.Violation(fmt.Sprintf("rule_%d", (g*200+i)%100))
				m.ObserveLDAP("ldaps://dc1", "modify", time.Millisecond)
			}
		}()
	}
	wg.Wait()
	if got := testutil.ToFloat64(m.commands.WithLabelValues("reset", "succeeded")); got != 1600 {
		t.Errorf("commands = %v, want 1600", got)
	}
	if n := testutil.CollectAndCount(m.violations); n != maxRules+1 {
		t.Errorf("violation series = %d, want %d", n, maxRules+1)
	}
	if _, err := reg.Gather(); err != nil {
		t.Fatal(err)
	}
}

// histogram returns the sample count and sum of the histogram series with
// exactly the given labels.
func histogram(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) (uint64, float64) {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, lp := range m.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue series
				}
			}
			return m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
		}
	}
	t.Fatalf("no %s series with labels %v", name, labels)
	return 0, 0
}

func TestWatchHealth(t *testing.T) {
	m, reg := newTest(t)
	var mu sync.Mutex
	h := Health{Ready: true, JournalWritable: true}
	if err := m.WatchHealth(func() Health { mu.Lock(); defer mu.Unlock(); return h }); err != nil {
		t.Fatal(err)
	}
	const head = `
# HELP adwriteback_journal_writable 1 when the journal accepted its last write probe, 0 when it is not writable.
# TYPE adwriteback_journal_writable gauge
adwriteback_journal_writable %d
# HELP adwriteback_ready 1 when the connector is ready (/readyz answers 200), 0 when a critical check fails.
# TYPE adwriteback_ready gauge
adwriteback_ready %d
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(fmt.Sprintf(head, 1, 1)),
		"adwriteback_ready", "adwriteback_journal_writable"); err != nil {
		t.Error(err)
	}
	mu.Lock()
	h = Health{}
	mu.Unlock()
	if err := testutil.GatherAndCompare(reg, strings.NewReader(fmt.Sprintf(head, 0, 0)),
		"adwriteback_ready", "adwriteback_journal_writable"); err != nil {
		t.Error(err)
	}
}
