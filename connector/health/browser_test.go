//go:build integration

package health

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/png"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/adwriteback/adwriteback/connector/audit"
	"github.com/adwriteback/adwriteback/connector/metrics"
	"github.com/adwriteback/adwriteback/integration/browser"
)

// realistic is a connector one hour into a working day: two DCs with one
// down, the queue up, a client certificate about to expire, and a mix of
// operations (one of them with a hostile display name in its DN).
func realistic(now time.Time) (Snapshot, []audit.Record) {
	s := Snapshot{
		Now: now,
		Domains: []Domain{{
			Name: "corp.example",
			DCs: []DC{
				{URL: "ldaps://dc1.corp.example:636", State: "up", LastOK: now.Add(-4 * time.Second), Latency: 9 * time.Millisecond},
				{URL: "ldaps://dc2.corp.example:636", State: "down", LastOK: now.Add(-26 * time.Minute),
					LastError: "dial tcp 10.20.0.12:636: connect: connection refused", Failures: 7},
			},
			PolicyHintsKnown: true, PolicyHints: true,
		}},
		Queue:         Queue{Name: "sspr-writeback", State: "up", LastReceive: now.Add(-2 * time.Second), InFlight: 1},
		ConnectorKeys: 2, SenderKeys: 1,
		JournalPath: "/var/lib/adwriteback/journal.db",
		Certificates: []CertInfo{
			{Name: "LDAPS CA", Subject: "Corp Issuing CA 2", NotAfter: now.AddDate(3, 0, 0)},
			{Name: "HTTPS listener", Subject: "adwriteback.corp.example", NotAfter: now.Add(9*24*time.Hour + time.Hour)},
		},
	}
	recs := []audit.Record{
		{CommandID: "9f1c2a7e-0001", Op: "reset", UserDN: "CN=Alice Martin,OU=Staff,OU=Paris,DC=corp,DC=example",
			Outcome: "succeeded", DC: "ldaps://dc1.corp.example:636", LatencyMS: 38.2, Applied: true},
		{CommandID: "9f1c2a7e-0002", Op: "change", UserDN: "CN=Bob Stone,OU=Staff,OU=Lyon,DC=corp,DC=example",
			Outcome: "policy_violation", Rules: []string{"min_length", "complexity"}, LatencyMS: 0.6},
		{CommandID: "9f1c2a7e-0003", Op: "reset", UserDN: "CN=Carol Nguyen,OU=Sales,DC=corp,DC=example",
			Outcome: "transient", DC: "ldaps://dc2.corp.example:636", DCReason: "connection refused", LatencyMS: 5012, DeliveryCount: 1},
		{CommandID: "9f1c2a7e-0004", Op: "reset", UserDN: "CN=Carol Nguyen,OU=Sales,DC=corp,DC=example",
			Outcome: "succeeded", DC: "ldaps://dc1.corp.example:636", LatencyMS: 41.9, Applied: true, DeliveryCount: 2},
		{CommandID: "9f1c2a7e-0005", Op: "reset", UserDN: "CN=Administrator,CN=Users,DC=corp,DC=example",
			Outcome: "protected_account", LatencyMS: 3.1},
		{CommandID: "9f1c2a7e-0006", Op: "unlock", UserDN: "CN=Dan Weiss,OU=Ops,DC=corp,DC=example",
			Outcome: "succeeded", DC: "ldaps://dc1.corp.example:636", LatencyMS: 12.4, Applied: true},
		{CommandID: "9f1c2a7e-0007", Op: "reset", UserDN: `CN=<script>alert(1)</script> Eve,OU=Staff,DC=corp,DC=example`,
			Outcome: "rejected_by_dc", Rules: []string{"history"}, DCReason: "0000052D", DC: "ldaps://dc1.corp.example:636", LatencyMS: 27.5},
		{CommandID: "9f1c2a7e-0008", Op: "reset", UserDN: "CN=Alice Martin,OU=Staff,OU=Paris,DC=corp,DC=example",
			Outcome: "succeeded", DC: "ldaps://dc1.corp.example:636", LatencyMS: 35.0, FromJournal: true, DeliveryCount: 3},
	}
	for i := range recs {
		recs[i].Time = now.Add(time.Duration(i-len(recs)) * 47 * time.Second)
	}
	return s, recs
}

func TestStatusPageInChromium(t *testing.T) {
	bin := browser.Chromium(t)
	now := time.Now().UTC().Truncate(time.Second)
	snap, recs := realistic(now)

	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	recent := NewRecent(20)
	var sink bytes.Buffer
	log := audit.New(&sink)
	log.Subscribe(recent.Add)
	for _, r := range recs {
		if err := log.Write(r); err != nil {
			t.Fatal(err)
		}
		m.Command(r.Op, r.Outcome, time.Duration(r.LatencyMS*float64(time.Millisecond)))
		for _, rule := range r.Rules {
			m.Violation(rule)
		}
	}
	m.JournalHit()
	m.Retry()

	srv := httptest.NewServer(NewHandler(Options{
		Snapshot: func(context.Context) Snapshot { return snap },
		Metrics:  promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
		Recent:   recent,
		Counters: CountersFrom(reg, "adwriteback_"),
		Version:  "v0.9.0-test",
	}))
	defer srv.Close()
	url := srv.URL + "/status"

	dom := string(browser.Run(t, bin, "--dump-dom", url))
	for _, want := range []string{
		"Ready, with warnings",
		"dc:ldaps://dc1.corp.example:636", "dc:ldaps://dc2.corp.example:636", "connection refused",
		"queue:sspr-writeback", "keys", "journal", "cert:HTTPS listener", "renew it", "policy_hints:corp.example",
		"Last 8 operations",
		"CN=Alice Martin,OU=Staff,OU=Paris,DC=corp,DC=example", "policy_violation", "min_length, complexity",
		"protected_account", "answered from journal", "DC: 0000052D", "5012.0 ms",
		"commands_total{op=reset,outcome=succeeded}",
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered DOM lacks %q", want)
		}
	}
	for i := 1; i <= 8; i++ {
		if id := fmt.Sprintf("9f1c2a7e-%04d", i); !strings.Contains(dom, id) {
			t.Errorf("rendered DOM lacks operation %s", id)
		}
	}
	// The hostile DN is text, not an element: the browser parsed no script.
	if strings.Contains(dom, "<script>") {
		t.Error("the rendered DOM contains a <script> element from a user DN")
	}
	if !strings.Contains(dom, "CN=&lt;script&gt;alert(1)&lt;/script&gt; Eve") {
		t.Error("the hostile DN is not shown as text")
	}

	artifacts := filepath.Join(browser.RepoRoot(t), "integration", "artifacts")
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(artifacts, "status.png")
	if err := os.Remove(shot); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	browser.Run(t, bin, "--screenshot="+shot, url)
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot written: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != browser.PhoneW || b.Dy() != browser.PhoneH {
		t.Errorf("screenshot is %dx%d, want %dx%d", b.Dx(), b.Dy(), browser.PhoneW, browser.PhoneH)
	}
	// The page is not blank: the header badge and table rows paint many colours.
	colours := map[uint32]bool{}
	for y := 0; y < browser.PhoneH; y += 7 {
		for x := 0; x < browser.PhoneW; x += 7 {
			r, g, b, _ := img.At(x, y).RGBA()
			colours[r>>12<<8|g>>12<<4|b>>12] = true
		}
	}
	if len(colours) < 8 {
		t.Errorf("screenshot looks blank: %d distinct colours", len(colours))
	}
	t.Logf("screenshot: %s", shot)
}
