// Package health owns the connector's view of its own readiness and its
// admin HTTP surface. Evaluate turns a Snapshot of plain data (domain
// controllers, queue link, result delivery, keys, journal, certificates,
// policy-hints support)
// into a Report with one Check per dependency; it is a pure function. The
// handler serves /livez, /readyz (the Report as JSON, 200 or 503), /metrics
// and /status, an HTML page for admins with the checks, the last operations
// from the audit log (kept by Recent) and the counters. ListenAndServe runs
// the listener, with optional TLS, until its context ends. Options may
// require a bearer token on every page but /livez, restrict the Host
// header to an allow-list (DNS rebinding) and mask user DNs on /status.
//
// It declares the plain types it reads (Domain, DC, Queue, Results,
// CertInfo; Deliveries keeps Results for the wiring code) and
// imports neither the engine, nor the LDAP layer, nor a queue's SDK: the
// wiring code (connector/app) converts their states, and the dependency
// test there holds this package to that.
package health

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Severity grades a Check. Only SeverityCritical makes the connector not
// ready; SeverityWarning makes it degraded; SeverityInfo is a permanent
// fact of the environment worth knowing, which changes neither.
type Severity string

// Severities, from fine to fatal.
const (
	SeverityOK       Severity = "ok"
	SeverityInfo     Severity = "info"
	SeverityWarning  Severity = "warning"
	SeverityCritical Severity = "critical"
)

// DefaultCertWarning is how long before expiry a certificate starts to warn:
// the one threshold /readyz and the doctor's certificate check share.
const DefaultCertWarning = 14 * 24 * time.Hour

// Snapshot is everything readiness depends on, as plain data gathered by the
// caller at one moment. Evaluate reads nothing else.
type Snapshot struct {
	// Now is the time of the snapshot; certificate expiry is judged against it.
	Now time.Time
	// Domains are the AD domains the connector writes to, each with its DCs.
	Domains []Domain
	// Queue is the Service Bus receive link.
	Queue Queue
	// Results is the channel results are delivered over (nil: not
	// reported, no check).
	Results *Results
	// ConnectorKeys counts the connector's private keys loaded for opening
	// sealed passwords; SenderKeys counts the senders' public keys loaded for
	// verifying commands. Both must be at least one.
	ConnectorKeys int
	SenderKeys    int
	// Journal is the result of journal.Journal.Writable (nil: writable);
	// JournalPath names the file in the check's detail.
	Journal     error
	JournalPath string
	// Certificates whose expiry matters: the LDAPS CA and DC certificates,
	// the client certificate, the HTTPS listener's certificate.
	Certificates []CertInfo
	// CertWarning is how long before expiry a certificate warns (0: 14 days).
	CertWarning time.Duration
}

// Domain is one AD domain as the LDAP pool sees it.
type Domain struct {
	Name string
	DCs  []DC
	// PolicyHintsKnown is false until a DC's rootDSE was read; then
	// PolicyHints says whether the domain's DCs offer the policy-hints
	// control.
	PolicyHintsKnown bool
	PolicyHints      bool
}

// DC is one domain controller as the LDAP pool last saw it.
type DC struct {
	URL string
	// State is DCUp only when the DC's last probe or use succeeded;
	// DCDown after a failure; DCUnknown (or empty) before either.
	State     string
	LastOK    time.Time     // last successful bind, probe or operation
	LastProbe time.Time     // zero before the first probe
	Latency   time.Duration // of the last successful bind or probe
	LastError string        // user-safe: the decoded error, never a password
	Failures  int           // consecutive
}

// The states of a DC.
const (
	DCUnknown = "unknown"
	DCUp      = "up"
	DCDown    = "down"
)

// Queue is the message source's receive link.
type Queue struct {
	Name        string
	State       string // "connecting", "up", "down", "stopped"
	LastReceive time.Time
	LastError   string
	LastErrorAt time.Time
	InFlight    int
}

// CertInfo is one certificate whose expiry is checked.
type CertInfo struct {
	Name     string // what it is for, e.g. "LDAPS CA (corp.example)"
	Subject  string
	NotAfter time.Time
}

// Report is the readiness verdict: Ready is false when any check is critical.
type Report struct {
	Ready bool `json:"ready"`
	// Status is "ready", "degraded" (ready, with warnings) or "not_ready".
	Status string    `json:"status"`
	Time   time.Time `json:"time,omitzero"`
	Checks []Check   `json:"checks"`
}

// Check is one dependency's state.
type Check struct {
	// Name identifies the check, e.g. "dc:ldaps://dc1.corp.example:636",
	// "queue", "keys", "journal", "cert:LDAPS CA", "policy_hints:corp.example".
	Name     string   `json:"name"`
	Kind     string   `json:"kind"` // dc, domain, queue, results, keys, journal, certificate, policy_hints
	OK       bool     `json:"ok"`
	Severity Severity `json:"severity"`
	Detail   string   `json:"detail"`
	// Optional facts, per kind.
	LastOK    time.Time `json:"last_ok,omitzero"`
	LatencyMS float64   `json:"latency_ms,omitzero"`
	// State and LastProbe are a DC's: up, down or unknown.
	State     string    `json:"state,omitempty"`
	LastProbe time.Time `json:"last_probe,omitzero"`
	NotAfter  time.Time `json:"not_after,omitzero"`
	DaysLeft  *int      `json:"days_left,omitempty"`
}

// Report statuses.
const (
	StatusReady    = "ready"
	StatusDegraded = "degraded"
	StatusNotReady = "not_ready"
)

// Evaluate grades every dependency in s. It is a pure function of s.
func Evaluate(s Snapshot) Report {
	var checks []Check
	checks = append(checks, domainChecks(s.Domains)...)
	checks = append(checks, queueCheck(s.Queue))
	if s.Results != nil {
		checks = append(checks, resultsCheck(s.Now, *s.Results))
	}
	checks = append(checks, keysCheck(s.ConnectorKeys, s.SenderKeys))
	checks = append(checks, journalCheck(s.Journal, s.JournalPath))
	checks = append(checks, certChecks(s.Now, s.CertWarning, s.Certificates)...)

	r := Report{Ready: true, Status: StatusReady, Time: s.Now, Checks: checks}
	for _, c := range checks {
		switch c.Severity {
		case SeverityCritical:
			r.Ready, r.Status = false, StatusNotReady
		case SeverityWarning:
			if r.Ready {
				r.Status = StatusDegraded
			}
		}
	}
	return r
}

func ok(name, kind, detail string) Check {
	return Check{Name: name, Kind: kind, OK: true, Severity: SeverityOK, Detail: detail}
}

func bad(name, kind string, sev Severity, detail string) Check {
	return Check{Name: name, Kind: kind, OK: false, Severity: sev, Detail: detail}
}

// domainChecks: one check per DC, one per domain's policy-hints support.
// A down DC is critical only when no DC of its domain is up.
func domainChecks(domains []Domain) []Check {
	if len(domains) == 0 {
		return []Check{bad("domains", "domain", SeverityCritical, "no Active Directory domain is configured")}
	}
	var out []Check
	for _, d := range domains {
		label := d.Name
		if label == "" {
			label = "(domain)"
		}
		if len(d.DCs) == 0 {
			out = append(out, bad("domain:"+label, "domain", SeverityCritical, "no domain controller known for "+label))
			continue
		}
		up := 0
		for _, dc := range d.DCs {
			if dc.State == DCUp {
				up++
			}
		}
		for _, dc := range d.DCs {
			out = append(out, dcCheck(dc, up, len(d.DCs), label))
		}
		name := "policy_hints:" + label
		switch {
		case !d.PolicyHintsKnown:
			out = append(out, bad(name, "policy_hints", SeverityWarning,
				"not known yet: no domain controller's rootDSE has been read"))
		case d.PolicyHints:
			out = append(out, ok(name, "policy_hints",
				"supported: resets enforce password history like a user's change"))
		default:
			// A fact of the domain, not a fault: nothing the connector
			// or its admin can restart away, so it is information.
			c := ok(name, "policy_hints",
				"not offered by the domain controllers (Windows Server 2008 R2 or later needed): admin resets cannot enforce password history")
			c.Severity = SeverityInfo
			out = append(out, c)
		}
	}
	return out
}

// dcCheck grades one DC of a domain where up of total DCs are up: only an
// up DC is OK; a down or unknown one is critical when no DC of its domain
// is up, else a warning. The detail starts with the state.
func dcCheck(dc DC, up, total int, label string) Check {
	name := "dc:" + dc.URL
	state := dc.State
	if state == "" {
		state = DCUnknown
	}
	var c Check
	if state == DCUp {
		c = ok(name, "dc", "up"+dcFacts(dc))
	} else {
		sev, why := SeverityWarning, fmt.Sprintf("%s; %d of %d domain controllers of %s up", state, up, total, label)
		if up == 0 {
			sev, why = SeverityCritical, fmt.Sprintf("%s, and no other domain controller of %s is up", state, label)
		}
		if state == DCUnknown {
			why += " (not probed yet)"
		}
		if dc.Failures > 0 {
			why += fmt.Sprintf(" (%d consecutive %s)", dc.Failures, map[bool]string{true: "failure", false: "failures"}[dc.Failures == 1])
		}
		if dc.LastError != "" {
			why += ": " + dc.LastError
		}
		c = bad(name, "dc", sev, why+dcFacts(dc))
	}
	c.State, c.LastOK, c.LastProbe = state, dc.LastOK, dc.LastProbe
	c.LatencyMS = float64(dc.Latency.Microseconds()) / 1000
	return c
}

// dcFacts: "; last probe ..., latency ..., last up ..." as far as known.
func dcFacts(dc DC) string {
	var f []string
	if !dc.LastProbe.IsZero() {
		f = append(f, "last probe "+dc.LastProbe.UTC().Format(time.RFC3339))
	}
	if dc.Latency > 0 && dc.State == DCUp {
		f = append(f, "latency "+roundDuration(dc.Latency).String())
	}
	if !dc.LastOK.IsZero() {
		f = append(f, "last up "+dc.LastOK.UTC().Format(time.RFC3339))
	}
	if len(f) == 0 {
		return ""
	}
	return "; " + strings.Join(f, ", ")
}

func queueCheck(q Queue) Check {
	name := "queue"
	if q.Name != "" {
		name = "queue:" + q.Name
	}
	switch q.State {
	case "up":
		detail := "receive link up"
		if !q.LastReceive.IsZero() {
			detail += ", last receive " + q.LastReceive.UTC().Format(time.RFC3339)
		}
		if q.InFlight > 0 {
			detail += fmt.Sprintf(", %d in flight", q.InFlight)
		}
		return ok(name, "queue", detail)
	case "":
		return bad(name, "queue", SeverityCritical, "receive link state not reported")
	default:
		detail := "receive link " + q.State
		if q.LastError != "" {
			detail += ": " + q.LastError
			if !q.LastErrorAt.IsZero() {
				detail += " (at " + q.LastErrorAt.UTC().Format(time.RFC3339) + ")"
			}
		}
		return bad(name, "queue", SeverityCritical, detail)
	}
}

func keysCheck(conn, sender int) Check {
	detail := fmt.Sprintf("%d connector key(s), %d sender key(s) loaded", conn, sender)
	var missing []string
	if conn < 1 {
		missing = append(missing, "no connector private key: sealed passwords cannot be opened")
	}
	if sender < 1 {
		missing = append(missing, "no sender public key: commands cannot be verified")
	}
	if len(missing) > 0 {
		return bad("keys", "keys", SeverityCritical, detail+"; "+strings.Join(missing, "; "))
	}
	return ok("keys", "keys", detail)
}

func journalCheck(err error, path string) Check {
	where := "journal"
	if path != "" {
		where = "journal " + path
	}
	if err != nil {
		return bad("journal", "journal", SeverityCritical, where+" not writable: "+err.Error())
	}
	return ok("journal", "journal", where+" writable")
}

func certChecks(now time.Time, warn time.Duration, certs []CertInfo) []Check {
	if warn <= 0 {
		warn = DefaultCertWarning
	}
	sorted := append([]CertInfo(nil), certs...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].NotAfter.Before(sorted[j].NotAfter) })
	out := make([]Check, 0, len(sorted))
	for _, c := range sorted {
		name := "cert:" + c.Name
		what := c.Name
		if c.Subject != "" {
			what += " (" + c.Subject + ")"
		}
		if c.NotAfter.IsZero() {
			out = append(out, bad(name, "certificate", SeverityWarning, what+": expiry unknown"))
			continue
		}
		left := c.NotAfter.Sub(now)
		days := int(left / (24 * time.Hour))
		var ch Check
		switch {
		case left <= 0:
			ch = bad(name, "certificate", SeverityCritical,
				fmt.Sprintf("%s expired on %s", what, c.NotAfter.UTC().Format(time.DateOnly)))
		case left < warn:
			ch = bad(name, "certificate", SeverityWarning,
				fmt.Sprintf("%s expires on %s, in %s: renew it", what, c.NotAfter.UTC().Format(time.DateOnly), daysText(left)))
		default:
			ch = ok(name, "certificate",
				fmt.Sprintf("%s valid until %s (%s)", what, c.NotAfter.UTC().Format(time.DateOnly), daysText(left)))
		}
		ch.NotAfter = c.NotAfter
		ch.DaysLeft = &days
		out = append(out, ch)
	}
	return out
}

func daysText(d time.Duration) string {
	days := int(d / (24 * time.Hour))
	switch {
	case days == 0:
		return "less than a day"
	case days == 1:
		return "1 day"
	default:
		return fmt.Sprintf("%d days", days)
	}
}

func roundDuration(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(100 * time.Microsecond)
	default:
		return d.Round(time.Microsecond)
	}
}
