package health

import (
	"errors"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// healthy is a snapshot where everything is fine: two DCs, the link up, keys,
// a writable journal and certificates valid for a year.
func healthy() Snapshot {
	return Snapshot{
		Now: t0,
		Domains: []Domain{{
			Name: "corp.example",
			DCs: []DC{
				{URL: "ldaps://dc1.corp.example:636", State: "up", LastOK: t0.Add(-time.Minute), Latency: 12 * time.Millisecond},
				{URL: "ldaps://dc2.corp.example:636", State: "up", LastOK: t0.Add(-2 * time.Minute), Latency: 15 * time.Millisecond},
			},
			PolicyHintsKnown: true, PolicyHints: true,
		}},
		Queue:         Queue{Name: "writeback", State: "up", LastReceive: t0.Add(-time.Second)},
		ConnectorKeys: 2, SenderKeys: 1,
		JournalPath: "/var/lib/adwriteback/journal.db",
		Certificates: []CertInfo{
			{Name: "LDAPS CA", Subject: "Corp Root CA", NotAfter: t0.AddDate(1, 0, 0)},
			{Name: "client", NotAfter: t0.AddDate(0, 6, 0)},
		},
	}
}

func check(t *testing.T, r Report, name string) Check {
	t.Helper()
	for _, c := range r.Checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no check %q in %+v", name, r.Checks)
	return Check{}
}

func TestEvaluate(t *testing.T) {
	type want struct {
		name     string
		severity Severity
		detail   string // substring
	}
	tests := []struct {
		name   string
		mutate func(s *Snapshot)
		ready  bool
		status string
		want   []want
	}{
		{
			name:   "all healthy",
			mutate: func(s *Snapshot) {},
			ready:  true, status: StatusReady,
			want: []want{
				{"dc:ldaps://dc1.corp.example:636", SeverityOK, "up; latency 12ms, last up 2026-03-01T11:59:00Z"},
				{"queue:writeback", SeverityOK, "receive link up"},
				{"keys", SeverityOK, "2 connector key(s), 1 sender key(s)"},
				{"journal", SeverityOK, "/var/lib/adwriteback/journal.db writable"},
				{"cert:LDAPS CA", SeverityOK, "valid until 2027-03-01 (365 days)"},
				{"policy_hints:corp.example", SeverityOK, "supported"},
			},
		},
		{
			name: "one of two DCs down is a warning",
			mutate: func(s *Snapshot) {
				s.Domains[0].DCs[1] = DC{URL: "ldaps://dc2.corp.example:636", State: DCDown, LastError: "dial tcp: connection refused",
					Failures: 4, LastProbe: t0.Add(-time.Second)}
			},
			ready: true, status: StatusDegraded,
			want: []want{
				{"dc:ldaps://dc1.corp.example:636", SeverityOK, ""},
				{"dc:ldaps://dc2.corp.example:636", SeverityWarning, "down; 1 of 2 domain controllers of corp.example up (4 consecutive failures): dial tcp: connection refused; last probe 2026-03-01T11:59:59Z"},
			},
		},
		{
			name: "every DC down is not ready",
			mutate: func(s *Snapshot) {
				for i := range s.Domains[0].DCs {
					s.Domains[0].DCs[i].State = "down"
				}
			},
			ready: false, status: StatusNotReady,
			want: []want{
				{"dc:ldaps://dc1.corp.example:636", SeverityCritical, "down, and no other domain controller of corp.example is up; last up 2026-03-01T11:59:00Z"},
				{"dc:ldaps://dc2.corp.example:636", SeverityCritical, "down"},
			},
		},
		{
			name: "a DC never probed is unknown, not up",
			mutate: func(s *Snapshot) {
				s.Domains[0].DCs[1] = DC{URL: "ldaps://dc2.corp.example:636", State: DCUnknown}
			},
			ready: true, status: StatusDegraded,
			want: []want{
				{"dc:ldaps://dc1.corp.example:636", SeverityOK, "up"},
				{"dc:ldaps://dc2.corp.example:636", SeverityWarning, "unknown; 1 of 2 domain controllers of corp.example up (not probed yet)"},
			},
		},
		{
			name: "no DC probed yet is not ready",
			mutate: func(s *Snapshot) {
				for i := range s.Domains[0].DCs {
					s.Domains[0].DCs[i] = DC{URL: s.Domains[0].DCs[i].URL}
				}
			},
			ready: false, status: StatusNotReady,
			want: []want{
				{"dc:ldaps://dc1.corp.example:636", SeverityCritical, "unknown, and no other domain controller of corp.example is up (not probed yet)"},
				{"dc:ldaps://dc2.corp.example:636", SeverityCritical, "unknown"},
			},
		},
		{
			name: "a second domain with its only DC down is not ready",
			mutate: func(s *Snapshot) {
				s.Domains = append(s.Domains, Domain{Name: "emea.corp.example",
					DCs: []DC{{URL: "ldaps://dc1.emea.corp.example"}}, PolicyHintsKnown: true, PolicyHints: true})
			},
			ready: false, status: StatusNotReady,
			want: []want{
				{"dc:ldaps://dc1.corp.example:636", SeverityOK, ""},
				{"dc:ldaps://dc1.emea.corp.example", SeverityCritical, "no other domain controller of emea.corp.example"},
			},
		},
		{
			name:   "no domain configured",
			mutate: func(s *Snapshot) { s.Domains = nil },
			ready:  false, status: StatusNotReady,
			want: []want{{"domains", SeverityCritical, "no Active Directory domain"}},
		},
		{
			name:   "domain without DCs",
			mutate: func(s *Snapshot) { s.Domains[0].DCs = nil },
			ready:  false, status: StatusNotReady,
			want: []want{{"domain:corp.example", SeverityCritical, "no domain controller known"}},
		},
		{
			name:   "policy hints not offered is information, not degraded",
			mutate: func(s *Snapshot) { s.Domains[0].PolicyHints = false },
			ready:  true, status: StatusReady,
			want: []want{{"policy_hints:corp.example", SeverityInfo, "cannot enforce password history"}},
		},
		{
			name:   "results delivered",
			mutate: func(s *Snapshot) { s.Results = &Results{Channel: "reply_queue", LastDelivered: t0.Add(-time.Hour)} },
			ready:  true, status: StatusReady,
			want: []want{{"results", SeverityOK, "last delivered"}},
		},
		{
			name: "results failing for less than undeliverable_after is a warning",
			mutate: func(s *Snapshot) {
				s.Results = &Results{Channel: "reply_queue", UndeliverableAfter: time.Minute, LastDelivered: t0.Add(-time.Hour),
					FailingSince: t0.Add(-59 * time.Second), Failures: 3, LastError: "queue not found"}
			},
			ready: true, status: StatusDegraded,
			want: []want{{"results", SeverityWarning, "3 failed deliveries over reply_queue"}},
		},
		{
			name: "results failing for undeliverable_after is not ready",
			mutate: func(s *Snapshot) {
				s.Results = &Results{Channel: "https", UndeliverableAfter: time.Minute,
					FailingSince: t0.Add(-time.Minute), Failures: 1, LastError: "503"}
			},
			ready: false, status: StatusNotReady,
			want: []want{{"results", SeverityCritical, "no result delivered for 1m0s (results.undeliverable_after 1m0s)"}},
		},
		{
			name: "results failing uses the default undeliverable_after",
			mutate: func(s *Snapshot) {
				s.Results = &Results{FailingSince: t0.Add(-DefaultUndeliverableAfter + time.Second), Failures: 1}
			},
			ready: true, status: StatusDegraded,
			want: []want{{"results", SeverityWarning, "1 failed delivery over results"}},
		},
		{
			name:   "policy hints not known yet is a warning",
			mutate: func(s *Snapshot) { s.Domains[0].PolicyHintsKnown = false },
			ready:  true, status: StatusDegraded,
			want: []want{{"policy_hints:corp.example", SeverityWarning, "not known yet"}},
		},
		{
			name: "queue link down is not ready",
			mutate: func(s *Snapshot) {
				s.Queue.State = "down"
				s.Queue.LastError = "amqp: connection refused"
				s.Queue.LastErrorAt = t0.Add(-5 * time.Second)
			},
			ready: false, status: StatusNotReady,
			want: []want{{"queue:writeback", SeverityCritical, "receive link down: amqp: connection refused (at 2026-03-01T11:59:55Z)"}},
		},
		{
			name:   "queue still connecting is not ready",
			mutate: func(s *Snapshot) { s.Queue.State = "connecting" },
			ready:  false, status: StatusNotReady,
			want: []want{{"queue:writeback", SeverityCritical, "receive link connecting"}},
		},
		{
			name:   "queue not reported is not ready",
			mutate: func(s *Snapshot) { s.Queue = Queue{} },
			ready:  false, status: StatusNotReady,
			want: []want{{"queue", SeverityCritical, "not reported"}},
		},
		{
			name:   "no connector key",
			mutate: func(s *Snapshot) { s.ConnectorKeys = 0 },
			ready:  false, status: StatusNotReady,
			want: []want{{"keys", SeverityCritical, "no connector private key"}},
		},
		{
			name:   "no sender key",
			mutate: func(s *Snapshot) { s.SenderKeys = 0 },
			ready:  false, status: StatusNotReady,
			want: []want{{"keys", SeverityCritical, "no sender public key"}},
		},
		{
			name:   "journal not writable",
			mutate: func(s *Snapshot) { s.Journal = errors.New("read-only file system") },
			ready:  false, status: StatusNotReady,
			want: []want{{"journal", SeverityCritical, "not writable: read-only file system"}},
		},
		{
			name:   "certificate expiring within 14 days warns",
			mutate: func(s *Snapshot) { s.Certificates[1].NotAfter = t0.Add(10*24*time.Hour + time.Hour) },
			ready:  true, status: StatusDegraded,
			want: []want{{"cert:client", SeverityWarning, "expires on 2026-03-11, in 10 days: renew it"}},
		},
		{
			name:   "certificate expiring in hours warns",
			mutate: func(s *Snapshot) { s.Certificates[1].NotAfter = t0.Add(3 * time.Hour) },
			ready:  true, status: StatusDegraded,
			want: []want{{"cert:client", SeverityWarning, "in less than a day"}},
		},
		{
			name:   "certificate just outside the warning window is fine",
			mutate: func(s *Snapshot) { s.Certificates[1].NotAfter = t0.Add(DefaultCertWarning + time.Minute) },
			ready:  true, status: StatusReady,
			want: []want{{"cert:client", SeverityOK, "14 days"}},
		},
		{
			name: "custom warning window",
			mutate: func(s *Snapshot) {
				s.CertWarning = 60 * 24 * time.Hour
				s.Certificates[1].NotAfter = t0.AddDate(0, 1, 0)
			},
			ready: true, status: StatusDegraded,
			want: []want{{"cert:client", SeverityWarning, "31 days"}},
		},
		{
			name:   "expired certificate is not ready",
			mutate: func(s *Snapshot) { s.Certificates[0].NotAfter = t0.Add(-24 * time.Hour) },
			ready:  false, status: StatusNotReady,
			want: []want{{"cert:LDAPS CA", SeverityCritical, "LDAPS CA (Corp Root CA) expired on 2026-02-28"}},
		},
		{
			name:   "certificate expiring exactly now is expired",
			mutate: func(s *Snapshot) { s.Certificates[0].NotAfter = t0 },
			ready:  false, status: StatusNotReady,
			want: []want{{"cert:LDAPS CA", SeverityCritical, "expired"}},
		},
		{
			name:   "unknown expiry warns",
			mutate: func(s *Snapshot) { s.Certificates[0].NotAfter = time.Time{} },
			ready:  true, status: StatusDegraded,
			want: []want{{"cert:LDAPS CA", SeverityWarning, "expiry unknown"}},
		},
		{
			name: "a critical check wins over warnings",
			mutate: func(s *Snapshot) {
				s.Domains[0].PolicyHints = false
				s.Journal = errors.New("disk full")
			},
			ready: false, status: StatusNotReady,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := healthy()
			tt.mutate(&s)
			r := Evaluate(s)
			if r.Ready != tt.ready || r.Status != tt.status {
				t.Errorf("Ready, Status = %v, %q; want %v, %q\nchecks: %+v", r.Ready, r.Status, tt.ready, tt.status, r.Checks)
			}
			for _, w := range tt.want {
				c := check(t, r, w.name)
				if c.Severity != w.severity || c.OK != (w.severity == SeverityOK || w.severity == SeverityInfo) {
					t.Errorf("%s: severity %q ok %v; want %q", w.name, c.Severity, c.OK, w.severity)
				}
				if !strings.Contains(c.Detail, w.detail) {
					t.Errorf("%s: detail %q does not contain %q", w.name, c.Detail, w.detail)
				}
			}
			// Ready is exactly "no critical check".
			critical := false
			for _, c := range r.Checks {
				critical = critical || c.Severity == SeverityCritical
			}
			if r.Ready == critical {
				t.Errorf("Ready %v inconsistent with checks %+v", r.Ready, r.Checks)
			}
		})
	}
}

func TestEvaluateCheckFacts(t *testing.T) {
	s := healthy()
	s.Certificates = []CertInfo{
		{Name: "late", NotAfter: t0.AddDate(2, 0, 0)},
		{Name: "soon", NotAfter: t0.Add(5*24*time.Hour + time.Minute)},
	}
	r := Evaluate(s)
	dc := check(t, r, "dc:ldaps://dc1.corp.example:636")
	if dc.Kind != "dc" || dc.LatencyMS != 12 || !dc.LastOK.Equal(t0.Add(-time.Minute)) {
		t.Errorf("dc facts: %+v", dc)
	}
	soon := check(t, r, "cert:soon")
	if soon.DaysLeft == nil || *soon.DaysLeft != 5 || !soon.NotAfter.Equal(s.Certificates[1].NotAfter) {
		t.Errorf("cert facts: %+v", soon)
	}
	// Certificates are listed soonest expiry first.
	var order []string
	for _, c := range r.Checks {
		if c.Kind == "certificate" {
			order = append(order, c.Name)
		}
	}
	if strings.Join(order, ",") != "cert:soon,cert:late" {
		t.Errorf("certificate order %v", order)
	}
	// Evaluate does not modify its input.
	if s.Certificates[0].Name != "late" {
		t.Error("Evaluate reordered the snapshot's certificates")
	}
}

// TestDeliveriesRecoverOnSuccess: failures start a streak at the first
// one; a success ends it.
func TestDeliveriesRecoverOnSuccess(t *testing.T) {
	d := NewDeliveries("reply_queue", time.Minute)
	d.Delivered(t0, nil)
	d.Delivered(t0.Add(time.Second), errors.New("one"))
	d.Delivered(t0.Add(2*time.Second), errors.New("two"))
	r := d.Results()
	if r.Failures != 2 || !r.FailingSince.Equal(t0.Add(time.Second)) || r.LastError != "two" || !r.LastDelivered.Equal(t0) {
		t.Fatalf("after failures: %+v", r)
	}
	if c := resultsCheck(t0.Add(time.Minute+time.Second), r); c.Severity != SeverityCritical {
		t.Fatalf("a minute of failures: %+v", c)
	}
	d.Delivered(t0.Add(2*time.Minute), nil)
	r = d.Results()
	if r.Failures != 0 || !r.FailingSince.IsZero() || r.LastError != "" || r.Channel != "reply_queue" || r.UndeliverableAfter != time.Minute {
		t.Fatalf("after a success: %+v", r)
	}
	if c := resultsCheck(t0.Add(time.Hour), r); c.Severity != SeverityOK {
		t.Fatalf("recovered: %+v", c)
	}
}
