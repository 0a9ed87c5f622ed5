package health

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/adwriteback/adwriteback/connector/audit"
	"github.com/adwriteback/adwriteback/connector/metrics"
)

// state is a switchable fake of the connector's dependencies.
type state struct {
	mu sync.Mutex
	s  Snapshot
}

func (st *state) get(ctx context.Context) Snapshot {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.s
}

func (st *state) set(f func(*Snapshot)) {
	st.mu.Lock()
	f(&st.s)
	st.mu.Unlock()
}

func sampleRecords() []audit.Record {
	return []audit.Record{
		{Time: t0.Add(-3 * time.Minute), CommandID: "cmd-0001", Op: "reset", Domain: "corp.example",
			UserDN: "CN=Alice Martin,OU=Staff,DC=corp,DC=example", Outcome: "succeeded", DC: "ldaps://dc1.corp.example:636",
			LatencyMS: 41.7, Applied: true},
		{Time: t0.Add(-2 * time.Minute), CommandID: "cmd-0002", Op: "change", Domain: "corp.example",
			UserDN: "CN=Bob Stone,OU=Staff,DC=corp,DC=example", Outcome: "policy_violation",
			Rules: []string{"min_length", "complexity"}, LatencyMS: 0.8},
		{Time: t0.Add(-time.Minute), CommandID: "cmd-0003", Op: "reset", Domain: "corp.example",
			UserDN: `CN=<script>alert("x")</script>,OU=Staff,DC=corp,DC=example`, Outcome: "rejected_by_dc",
			DCReason: "0000052D", DC: "ldaps://dc2.corp.example:636", LatencyMS: 18, DeliveryCount: 2},
	}
}

type fixture struct {
	srv   *httptest.Server
	state *state
	m     *metrics.Metrics
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	st := &state{s: healthy()}
	recent := NewRecent(10)
	for _, r := range sampleRecords() {
		recent.Add(r)
	}
	h := NewHandler(Options{
		Snapshot: st.get,
		Metrics:  promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
		Recent:   recent,
		Counters: CountersFrom(reg, "adwriteback_"),
		Version:  "v1.2.3",
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &fixture{srv: srv, state: st, m: m}
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return send(t, http.DefaultClient, req)
}

// send does req with c and reads the whole body.
func send(t *testing.T, c *http.Client, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestLivez(t *testing.T) {
	f := newFixture(t)
	// Liveness does not depend on readiness.
	f.state.set(func(s *Snapshot) { s.Queue.State = "down"; s.Journal = errors.New("disk full") })
	resp, body := get(t, f.srv.URL+"/livez")
	if resp.StatusCode != 200 || body != "ok\n" {
		t.Fatalf("/livez = %d %q", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q", ct)
	}
}

func TestReadyz(t *testing.T) {
	f := newFixture(t)

	decode := func(body string) Report {
		t.Helper()
		var r Report
		dec := json.NewDecoder(strings.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("decode %s: %v", body, err)
		}
		return r
	}

	resp, body := get(t, f.srv.URL+"/readyz")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz healthy = %d\n%s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	r := decode(body)
	if !r.Ready || r.Status != StatusReady || len(r.Checks) != len(Evaluate(healthy()).Checks) {
		t.Errorf("report %+v", r)
	}
	// The JSON shape: field names are part of the admin API.
	var raw map[string]any
	if err := json.Unmarshal([]byte(body), &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"ready", "status", "time", "checks"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("report has no %q: %s", k, body)
		}
	}
	first := raw["checks"].([]any)[0].(map[string]any)
	for _, k := range []string{"name", "kind", "ok", "severity", "detail", "last_ok", "latency_ms"} {
		if _, ok := first[k]; !ok {
			t.Errorf("dc check has no %q: %v", k, first)
		}
	}

	// A DC of two down: still 200, degraded.
	f.state.set(func(s *Snapshot) { s.Domains[0].DCs[0].State = "down" })
	resp, body = get(t, f.srv.URL+"/readyz")
	if resp.StatusCode != http.StatusOK || decode(body).Status != StatusDegraded {
		t.Fatalf("/readyz one DC down = %d\n%s", resp.StatusCode, body)
	}

	// The queue link drops: 503 with the reason.
	f.state.set(func(s *Snapshot) { s.Queue.State = "down"; s.Queue.LastError = "connection refused" })
	resp, body = get(t, f.srv.URL+"/readyz")
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/readyz queue down = %d\n%s", resp.StatusCode, body)
	}
	r = decode(body)
	if r.Ready || r.Status != StatusNotReady || !strings.Contains(check(t, r, "queue:writeback").Detail, "connection refused") {
		t.Errorf("report %+v", r)
	}

	// And back.
	f.state.set(func(s *Snapshot) { *s = healthy() })
	if resp, _ = get(t, f.srv.URL+"/readyz"); resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz recovered = %d", resp.StatusCode)
	}
}

func TestReadyzSnapshotGetsDeadlineAndClock(t *testing.T) {
	var gotDeadline bool
	h := NewHandler(Options{
		Snapshot: func(ctx context.Context) Snapshot {
			_, gotDeadline = ctx.Deadline()
			s := healthy()
			s.Now = time.Time{} // the handler's clock fills it
			s.Certificates = []CertInfo{{Name: "client", NotAfter: t0.Add(time.Hour)}}
			return s
		},
		Clock:           clockwork.NewFakeClockAt(t0.Add(2 * time.Hour)),
		SnapshotTimeout: time.Second,
	})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if !gotDeadline {
		t.Error("Snapshot context has no deadline")
	}
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "expired") {
		t.Errorf("certificate expired by the handler's clock: %d %s", rec.Code, rec.Body)
	}
}

func TestReadyzWithoutSnapshotIsNotReady(t *testing.T) {
	rec := httptest.NewRecorder()
	NewHandler(Options{}).ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("no Snapshot func: %d", rec.Code)
	}
}

func TestMetricsEndpoint(t *testing.T) {
	f := newFixture(t)
	f.m.Command("reset", "succeeded", 20*time.Millisecond)
	f.m.Violation("min_length")
	resp, body := get(t, f.srv.URL+"/metrics")
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics = %d", resp.StatusCode)
	}
	for _, want := range []string{
		`adwriteback_commands_total{op="reset",outcome="succeeded"} 1`,
		`adwriteback_violations_total{rule="min_length"} 1`,
		`adwriteback_command_duration_seconds_count{op="reset"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// Without a Metrics handler, /metrics does not exist.
	rec := httptest.NewRecorder()
	NewHandler(Options{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("no Metrics handler: %d", rec.Code)
	}
}

func TestStatusPage(t *testing.T) {
	f := newFixture(t)
	f.m.Command("reset", "succeeded", 20*time.Millisecond)
	f.m.Command("reset", "succeeded", 20*time.Millisecond)
	f.state.set(func(s *Snapshot) {
		s.Domains[0].DCs[1].State = "down"
		s.Domains[0].DCs[1].LastError = "dial tcp 10.0.0.2:636: i/o timeout"
	})

	resp, body := get(t, f.srv.URL+"/status")
	if resp.StatusCode != 200 {
		t.Fatalf("/status = %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP %q", csp)
	}
	for _, want := range []string{
		`<meta name="viewport" content="width=device-width, initial-scale=1">`,
		`Ready, with warnings`, `version v1.2.3`,
		// checks, with their severity class
		`<tr class="ok"><td data-label="Check"><code>dc:ldaps://dc1.corp.example:636</code>`,
		`<tr class="warn"><td data-label="Check"><code>dc:ldaps://dc2.corp.example:636</code>`,
		`dial tcp 10.0.0.2:636: i/o timeout`,
		`<code>queue:writeback</code>`, `<code>journal</code>`, `<code>cert:LDAPS CA</code>`,
		// operations, newest first, with their fields
		`Last 3 operations`, `cmd-0001`, `cmd-0002`, `cmd-0003`,
		`CN=Alice Martin,OU=Staff,DC=corp,DC=example`, `policy_violation`, `min_length, complexity`,
		`DC: 0000052D; delivery 2`, `ldaps://dc1.corp.example:636`, `41.7 ms`,
		// counters from the registry
		`<code>commands_total{op=reset,outcome=succeeded}</code></td><td data-label="Value" class="num">2</td>`,
		`<code>command_duration_seconds_count{op=reset}</code>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/status lacks %q", want)
		}
	}
	if i, j := strings.Index(body, "cmd-0003"), strings.Index(body, "cmd-0001"); i > j {
		t.Error("operations are not newest first")
	}
	// Hostile values are escaped, never markup.
	if strings.Contains(body, "<script>") || strings.Contains(body, `alert("x")`) {
		t.Error("/status contains an unescaped user DN")
	}
	if !strings.Contains(body, "CN=&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;,OU=Staff") {
		t.Error("/status lacks the escaped hostile DN")
	}
	// / serves the same page; other paths are 404.
	if resp, body := get(t, f.srv.URL+"/"); resp.StatusCode != 200 || !strings.Contains(body, "cmd-0003") {
		t.Errorf("/ = %d", resp.StatusCode)
	}
	if resp, _ := get(t, f.srv.URL+"/nope"); resp.StatusCode != 404 {
		t.Errorf("/nope = %d", resp.StatusCode)
	}
}

func TestStatusPageNotReadyAndEmpty(t *testing.T) {
	h := NewHandler(Options{Snapshot: func(context.Context) Snapshot {
		s := healthy()
		s.Journal = errors.New("disk <full>")
		return s
	}})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/status", nil))
	body := rec.Body.String()
	// The page itself is served (200) even when not ready: it explains why.
	if rec.Code != 200 {
		t.Fatalf("/status = %d", rec.Code)
	}
	for _, want := range []string{
		`<span class="badge bad" id="overall">Not ready</span>`,
		`<tr class="bad"><td data-label="Check"><code>journal</code>`, `disk &lt;full&gt;`,
		`No operation since the connector started.`, `No counters.`, `version dev`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/status lacks %q", want)
		}
	}
}

func TestMethodsAndSecurityHeaders(t *testing.T) {
	f := newFixture(t)
	for _, path := range []string{"/livez", "/readyz", "/status", "/metrics"} {
		resp, err := http.Post(f.srv.URL+path, "text/plain", strings.NewReader("x"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("POST %s = %d", path, resp.StatusCode)
		}
		req, _ := http.NewRequest("HEAD", f.srv.URL+path, nil)
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("HEAD %s = %d", path, resp.StatusCode)
		}
		for _, h := range []string{"X-Content-Type-Options", "X-Frame-Options", "Cache-Control"} {
			if resp.Header.Get(h) == "" {
				t.Errorf("%s: no %s header", path, h)
			}
		}
	}
}
