package bench

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/adwriteback/adwriteback/integration/testdc"
	"github.com/adwriteback/adwriteback/relay/protocol"
)

func throughputOf(n int, wall, cpu, waited time.Duration) Throughput {
	return Throughput{N: n, Wall: wall, PerSec: float64(n) / wall.Seconds(), DC: testdc.Usage{CPU: cpu, Waited: waited}}
}

// TestDCNotesDecomposeTheRatio: the notes split (3)/(1) into the DC's busy
// share and its work per reset, and the two factors multiply back to the
// ratio the table reports.
func TestDCNotesDecomposeTheRatio(t *testing.T) {
	d := &DCResult{
		Bare:   throughputOf(1000, 40*time.Second, 40*time.Second, time.Second),
		Lookup: throughputOf(1000, 41*time.Second, 41*time.Second, time.Second),
		Naive:  throughputOf(1000, 60*time.Second, 55*time.Second, time.Second),
		Pipelines: []PipelineResult{
			{PoolSize: 1, Throughput: throughputOf(2000, 90*time.Second, 85*time.Second, 10*time.Second), Codes: map[protocol.ResultCode]int{protocol.CodeSucceeded: 2000}},
			{PoolSize: 4, Throughput: throughputOf(2000, 100*time.Second, 95*time.Second, 12*time.Second), Codes: map[protocol.ResultCode]int{protocol.CodeSucceeded: 2000}},
		},
	}
	notes := strings.Join(dcNotes(d), "\n")
	busy := d.Pipeline().DCBusy() / d.Bare.DCBusy()
	work := float64(d.Bare.DCCPUPerOp()) / float64(d.Pipeline().DCCPUPerOp())
	if got, want := busy*work, d.VsBare(); got < want-1e-9 || got > want+1e-9 {
		t.Fatalf("busy x work = %.4f, (3)/(1) = %.4f", got, want)
	}
	for _, want := range []string{
		fmt.Sprintf("(3)/(1) = %.2f misses 0.95", d.VsBare()),
		fmt.Sprintf("= %.2f x %.2f", busy, work),
		"40.00 ms in (1), 41.00 ms in (1b)",
		"costs the DC 1.00 ms per reset when it follows a write",
		"(3) asked 1.50 ms more of the DC per reset than (1b)",
		"With an LDAP pool of 4 the pipeline ran at 20.0 resets/s",
		"which waited 5.00 ms per reset for a CPU held by other work (1.00 ms in (1)",
	} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}
	md := (&Report{Machine: ThisMachine(), DC: d, Notes: dcNotes(d)}).Markdown()
	for _, want := range []string{"| (3, pool 4) ", "| (3)/(1) | 0.89 | ≥ 0.95 | **MISSED** |", "| 42.50 ms | 0.94 | 5.00 ms |"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}

// TestDCNotesWithoutUsage: a run whose DC usage could not be read says so
// instead of dividing by zero.
func TestDCNotesWithoutUsage(t *testing.T) {
	d := &DCResult{
		Bare:      Throughput{N: 100, Wall: 4 * time.Second, PerSec: 25},
		Lookup:    Throughput{N: 100, Wall: 4 * time.Second, PerSec: 25},
		Naive:     Throughput{N: 100, Wall: 6 * time.Second, PerSec: 16.7},
		Pipelines: []PipelineResult{{PoolSize: 1, Throughput: Throughput{N: 300, Wall: 15 * time.Second, PerSec: 20}}},
	}
	notes := strings.Join(dcNotes(d), "\n")
	if !strings.Contains(notes, "could not be read") {
		t.Fatalf("notes:\n%s", notes)
	}
}

// TestRSSBreakdown: the connector table splits the resident set at the end
// of the burst, and a missed peak is explained from that split.
func TestRSSBreakdown(t *testing.T) {
	c := &ConnectorResult{N: 100000, Workers: 16, Procs: 1, PeakRSSKB: 51 << 10, PeakRSSReset: true,
		EndAnonKB: 30 << 10, EndHeapKB: 22 << 10, EndFileKB: 18 << 10, JournalBytes: 128 << 20}
	r := &Report{Machine: ThisMachine(), Connector: c}
	r.Notes = Notes(r)
	md := r.Markdown()
	for _, want := range []string{
		"| RSS at the end of the burst: anonymous (of it, the Go heap in use) / file-backed (the binary's code and the journal's mapped pages) | 30.0 MB (22.0 MB) / 18.0 MB | | |\n",
		"Peak RSS 51 MB misses 50 MB: the journal file is 128 MB after 100000 commands. At the end of the burst 30 MB was anonymous (22 MB of it the Go heap in use",
		"and 18 MB file-backed: the binary's code and the journal's mapped pages",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	// Without the split (not Linux), no row and the plain note.
	c.EndAnonKB, c.EndFileKB = 0, 0
	r.Notes = Notes(r)
	if md := r.Markdown(); strings.Contains(md, "RSS at the end of the burst") || strings.Contains(md, "At the end of the burst") {
		t.Errorf("a split without figures:\n%s", md)
	}
}
