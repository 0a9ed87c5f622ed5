package bench

import (
	"fmt"
	"os"
	"strings"
	"time"
)

// Report is one full run.
type Report struct {
	Machine   Machine
	Load      string // /proc/loadavg when the run started
	Full      bool
	Command   string
	Connector *ConnectorResult
	// Sweep is smaller bursts at SweepWorkers handlers; the one-handler
	// run gives the latency a command pays without queueing.
	Sweep        []*ConnectorResult
	JournalFloor *JournalFloor
	Policy       *PolicyResult // the local policy pre-check
	DC           *DCResult
	DCError      string
	Notes        []string
}

// SweepWorkers are the handler counts of the sweep.
func SweepWorkers() []int { return []int{1, 4, 16, 64} }

// Unloaded is the sweep's one-handler run (nil if none).
func (r *Report) Unloaded() *ConnectorResult {
	for _, c := range r.Sweep {
		if c.Workers == 1 {
			return c
		}
	}
	return nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }
func us(d time.Duration) string { return fmt.Sprintf("%d µs", d.Microseconds()) }

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**MISSED**"
}

// LoadAvg is /proc/loadavg's first three fields.
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// Markdown renders the results table.
func (r *Report) Markdown() string {
	var b strings.Builder
	m := r.Machine
	mode := "reduced (CI)"
	if r.Full {
		mode = "full"
	}
	fmt.Fprintf(&b, "# adwriteback benchmark results\n\n")
	fmt.Fprintf(&b, "Reproduce: `%s`\n\n", r.Command)
	fmt.Fprintf(&b, "| machine | |\n|---|---|\n")
	fmt.Fprintf(&b, "| date (UTC) | %s |\n| run | %s |\n| CPUs (nproc) | %d |\n| CPU model | %s |\n| Go | %s (%s) |\n| load average at start | %s |\n\n",
		m.Date.Format(time.RFC3339), mode, m.CPUs, m.CPUModel, m.GoVersion, m.OS, r.Load)
	if c := r.Connector; c != nil {
		fmt.Fprintf(&b, "## Connector-bound (one process, instant directory, durable journal)\n\n")
		fmt.Fprintf(&b, "A burst of %d reset commands, GOMAXPROCS=%d, %d concurrent handlers; real decoding, Ed25519 verify, replay claim, HPKE (X-Wing) open, scope + rate-limit + policy checks, bbolt journal with fsync (NoSync=%v; group commit), result signing, audit file; nop reporter.\n\n",
			c.N, c.Procs, c.Workers, c.NoSync)
		fmt.Fprintf(&b, "| measure | value | target | |\n|---|---|---|---|\n")
		fmt.Fprintf(&b, "| commands/s on %d core(s) | %.0f | ≥ 4,000 | %s |\n", c.Procs, c.PerSec, verdict(c.PerSec >= 4000))
		fmt.Fprintf(&b, "| CPU per command (user+sys) | %s | | |\n", us(c.CPUPerCmd))
		if u := r.Unloaded(); u != nil {
			fmt.Fprintf(&b, "| added latency p99: delivery in -> result sent, one command at a time (%d commands, 1 handler) | %s | < 2 ms | %s |\n", u.N, ms(u.Latency.P99), verdict(u.Latency.P99 < 2*time.Millisecond))
			fmt.Fprintf(&b, "| added latency p50, one command at a time | %s | | |\n", ms(u.Latency.P50))
			fmt.Fprintf(&b, "| delivery in -> message settled (outcome durable) p50 / p99, one at a time | %s / %s | | |\n", ms(u.Settled.P50), ms(u.Settled.P99))
		}
		fmt.Fprintf(&b, "| delivery in -> result sent p50 / p99 / max in the burst (queueing behind %d handlers included) | %s / %s / %s | | |\n", c.Workers, ms(c.Latency.P50), ms(c.Latency.P99), ms(c.Latency.Max))
		fmt.Fprintf(&b, "| peak RSS (VmHWM%s) | %.1f MB | < 50 MB | %s |\n", map[bool]string{true: ", reset before the burst", false: ""}[c.PeakRSSReset],
			float64(c.PeakRSSKB)/1024, verdict(c.PeakRSSKB < 50*1024))
		if c.EndAnonKB+c.EndFileKB > 0 {
			fmt.Fprintf(&b, "| RSS at the end of the burst: anonymous (of it, the Go heap in use) / file-backed (the binary's code and the journal's mapped pages) | %.1f MB (%.1f MB) / %.1f MB | | |\n",
				float64(c.EndAnonKB)/1024, float64(c.EndHeapKB)/1024, float64(c.EndFileKB)/1024)
		}
		fmt.Fprintf(&b, "| journal: fsync'd transactions per command | %.2f (%d for %d writes) | | |\n", float64(c.Journal.Commits)/float64(max(c.N, 1)), c.Journal.Commits, c.Journal.Writes)
		fmt.Fprintf(&b, "| journal file after the burst | %.1f MB | | |\n\n", float64(c.JournalBytes)/(1<<20))
		fmt.Fprintf(&b, "Floors, measured in the same run (one command after another, one goroutine):\n\n| floor | per command | commands/s |\n|---|---|---|\n")
		fmt.Fprintf(&b, "| crypto alone: Ed25519 verify + X-Wing HPKE open + Ed25519 sign (%d cmds) | %s CPU | %.0f |\n", c.CryptoN, us(c.CryptoPerCmd), c.CryptoPerSec)
		if f := r.JournalFloor; f != nil {
			fmt.Fprintf(&b, "| durable journal alone: claim + mark applying + outcome (%.0f fsync'd commits, %d cmds) | %s wall, %s CPU | %.0f |\n", f.CommitsEach, f.N, us(f.PerCmdWall), us(f.PerCmdCPU), f.PerSec)
			if f.Mark.P50 > 0 {
				fmt.Fprintf(&b, "| of which the mark before the write to AD (one fsync'd commit, awaited by every result), p50 / p99 | %s / %s | |\n", ms(f.Mark.P50), ms(f.Mark.P99))
			}
			if f.Fdatasync.P50 > 0 {
				fmt.Fprintf(&b, "| the disk: one 4 KiB write + fdatasync, p50 / p99 | %s / %s | |\n", ms(f.Fdatasync.P50), ms(f.Fdatasync.P99))
				fmt.Fprintf(&b, "| the disk: two of them back to back, as a bbolt commit makes, p50 / p99 | %s / %s | |\n", ms(f.Fdatasync2.P50), ms(f.Fdatasync2.P99))
			}
		}
		b.WriteString("\n")
		if len(r.Sweep) > 0 {
			fmt.Fprintf(&b, "Concurrency sweep (smaller bursts; the same pipeline):\n\n| handlers | commands | commands/s | CPU per command | result sent p50 | p99 | settled p99 | fsync'd transactions per command |\n|---|---|---|---|---|---|---|---|\n")
			for _, w := range r.Sweep {
				fmt.Fprintf(&b, "| %d | %d | %.0f | %s | %s | %s | %s | %.2f |\n", w.Workers, w.N, w.PerSec, us(w.CPUPerCmd), ms(w.Latency.P50), ms(w.Latency.P99), ms(w.Settled.P99), float64(w.Journal.Commits)/float64(max(w.N, 1)))
			}
			b.WriteString("\n")
		}
	}
	if p := r.Policy; p != nil {
		b.WriteString(policyMarkdown(p))
	}
	if d := r.DC; d != nil {
		fmt.Fprintf(&b, "## DC-bound (same Samba DC, same run)\n\n")
		fmt.Fprintf(&b, "| approach | resets | wall | resets/s | p50 | p99 | failed | DC CPU per reset | DC busy (cores) | DC waited for a CPU, per reset |\n|---|---|---|---|---|---|---|---|---|---|\n")
		rows := []Throughput{d.Bare, d.Lookup, d.Naive}
		labels := []string{"(1)", "(1b)", "(2)"}
		for i, p := range d.Pipelines {
			rows = append(rows, p.Throughput)
			labels = append(labels, pipeLabel(i, p.PoolSize))
		}
		for i, t := range rows {
			cpu, busy, wait := "", "", ""
			if t.DC.CPU > 0 {
				cpu, busy, wait = ms(t.DCCPUPerOp()), fmt.Sprintf("%.2f", t.DCBusy()), ms(t.DCWaitPerOp())
			}
			fmt.Fprintf(&b, "| %s %s | %d | %.1f s | %.1f | %s | %s | %d | %s | %s | %s |\n", labels[i], t.Name, t.N, t.Wall.Seconds(), t.PerSec, ms(t.Latency.P50), ms(t.Latency.P99), t.Errors, cpu, busy, wait)
		}
		fmt.Fprintf(&b, "\n| ratio | value | target | |\n|---|---|---|---|\n")
		fmt.Fprintf(&b, "| (3)/(1) | %.2f | ≥ 0.95 | %s |\n", d.VsBare(), verdict(d.VsBare() >= 0.95))
		fmt.Fprintf(&b, "| (3)/(2) | %.2fx | ≥ 1.3x | %s |\n", d.VsNaive(), verdict(d.VsNaive() >= 1.3))
		fmt.Fprintf(&b, "| (3)/(1b): against the DC's limit for the same DC work | %.2f | | |\n", d.Pipeline().PerSec/d.Lookup.PerSec)
		for i, p := range d.Pipelines[1:] {
			l := pipeLabel(i+1, p.PoolSize)
			fmt.Fprintf(&b, "| %s/(1), %s/(2) | %.2f, %.2fx | | |\n", l, l, p.PerSec/d.Bare.PerSec, p.PerSec/d.Naive.PerSec)
		}
		b.WriteString("\n")
		for i, p := range d.Pipelines {
			fmt.Fprintf(&b, "%s result codes: %v. ", pipeLabel(i, p.PoolSize), p.Codes)
		}
		fmt.Fprintf(&b, "Latency of (3) is end to end: from the sender's send to its verified result, for a burst sent at once (so it includes queueing behind the DC). DC CPU is the time the DC's threads ran during each run, and DC waited the time they were ready to run but other work held the CPUs (the scheduler's accounting in /proc, summed over the DC's processes), per successful reset; DC busy is the CPU time over the run's wall time.\n\n")
	} else if r.DCError != "" {
		fmt.Fprintf(&b, "## DC-bound\n\nNot measured: %s\n\n", r.DCError)
	}
	if len(r.Notes) > 0 {
		fmt.Fprintf(&b, "## Notes\n\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	return b.String()
}

// pipeLabel names the i-th pipeline run: (3) for the first, the one the
// targets are checked on, (3) with its pool size for the others.
func pipeLabel(i, poolSize int) string {
	if i == 0 {
		return "(3)"
	}
	return fmt.Sprintf("(3, pool %d)", poolSize)
}
