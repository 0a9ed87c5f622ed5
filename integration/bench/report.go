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
	DC        *DCResult
	DCError   string
	Notes     []string
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
		fmt.Fprintf(&b, "%d reset commands, GOMAXPROCS=%d, %d concurrent handlers; real decoding, Ed25519 verify, replay claim, HPKE (X-Wing) open, scope + rate-limit + policy checks, bbolt journal with fsync (NoSync=%v), result signing, audit file; nop reporter.\n\n",
			c.N, c.Procs, c.Workers, c.NoSync)
		fmt.Fprintf(&b, "| measure | value | target | |\n|---|---|---|---|\n")
		fmt.Fprintf(&b, "| commands/s on %d core(s) | %.0f | ≥ 4,000 | %s |\n", c.Procs, c.PerSec, verdict(c.PerSec >= 4000))
		fmt.Fprintf(&b, "| CPU per command (user+sys) | %s | | |\n", us(c.CPUPerCmd))
		fmt.Fprintf(&b, "| added latency p50 | %s | | |\n", ms(c.Latency.P50))
		fmt.Fprintf(&b, "| added latency p99 | %s | < 2 ms | %s |\n", ms(c.Latency.P99), verdict(c.Latency.P99 < 2*time.Millisecond))
		fmt.Fprintf(&b, "| added latency max | %s | | |\n", ms(c.Latency.Max))
		fmt.Fprintf(&b, "| peak RSS (VmHWM%s) | %.1f MB | < 50 MB | %s |\n", map[bool]string{true: ", reset before the burst", false: ""}[c.PeakRSSReset],
			float64(c.PeakRSSKB)/1024, verdict(c.PeakRSSKB < 50*1024))
		fmt.Fprintf(&b, "| crypto floor: verify + open + sign (%d cmds, one goroutine) | %s per command = %.0f/s | | |\n\n", c.CryptoN, us(c.CryptoPerCmd), c.CryptoPerSec)
	}
	if d := r.DC; d != nil {
		fmt.Fprintf(&b, "## DC-bound (same Samba DC, same run)\n\n")
		fmt.Fprintf(&b, "| approach | resets | wall | resets/s | p50 | p99 | failed |\n|---|---|---|---|---|---|---|\n")
		for i, t := range []Throughput{d.Bare, d.Naive, d.Pipeline} {
			fmt.Fprintf(&b, "| (%d) %s | %d | %.1f s | %.1f | %s | %s | %d |\n", i+1, t.Name, t.N, t.Wall.Seconds(), t.PerSec, ms(t.Latency.P50), ms(t.Latency.P99), t.Errors)
		}
		fmt.Fprintf(&b, "\n| ratio | value | target | |\n|---|---|---|---|\n")
		fmt.Fprintf(&b, "| (3)/(1) | %.2f | ≥ 0.95 | %s |\n", d.VsBare(), verdict(d.VsBare() >= 0.95))
		fmt.Fprintf(&b, "| (3)/(2) | %.2fx | ≥ 1.3x | %s |\n\n", d.VsNaive(), verdict(d.VsNaive() >= 1.3))
		fmt.Fprintf(&b, "Pipeline result codes: %v. Latency of (3) is end to end: from the sender's send to its verified result, for a burst sent at once (so it includes queueing behind the DC).\n\n", d.Codes)
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
