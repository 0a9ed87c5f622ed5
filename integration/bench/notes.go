package bench

import (
	"fmt"
	"time"
)

// Notes explains the numbers of a run: which targets were missed and why,
// from what the run itself measured.
func Notes(r *Report) []string {
	var n []string
	n = append(n, fmt.Sprintf("Load average %s at the start on %d CPUs: the machine was shared with other work during the run, so absolute numbers are pessimistic; ratios measured in the same run are the meaningful part.", r.Load, r.Machine.CPUs))
	if c := r.Connector; c != nil {
		busy := float64(c.CPU) / float64(c.Wall) / float64(c.Procs)
		n = append(n, fmt.Sprintf("Connector-bound: the process used %.0f%% of its %d core(s) during the burst; CPU per command %s of which the crypto floor (Ed25519 verify, X-Wing HPKE open, Ed25519 sign) is %s (%.0f%%).",
			100*busy, c.Procs, us(c.CPUPerCmd), us(c.CryptoPerCmd), 100*float64(c.CryptoPerCmd)/float64(max(c.CPUPerCmd, 1))))
		if c.PerSec < 4000 {
			n = append(n, fmt.Sprintf("4,000 commands/s per core is missed. On this CPU the crypto floor alone allows at most %.0f/s per core (the MLKEM768X25519 decapsulation dominates), so the target cannot be met with the default post-quantum KEM here whatever the rest costs.", c.CryptoPerSec))
		}
		if busy < 0.8 {
			n = append(n, "The core was idle part of the time: handlers wait on the journal. Each command makes four separate fsync'd bbolt transactions (replay claim, rate-limit attempt, mark applying, finish), each through bbolt's Batch (MaxBatchDelay 2 ms). Merging claim + attempt + applying into one transaction, or a group commit that flushes once per batch of commands, would cut the fsyncs per command from 4 to 1-2 and the waits with them.")
		}
		if other := c.CPUPerCmd - c.CryptoPerCmd; other > c.CryptoPerCmd {
			n = append(n, fmt.Sprintf("Outside the crypto each command costs about %s of CPU: 4 bbolt commits (each rewriting the touched B+tree pages and, by bbolt's default, the whole freelist), JSON encoding of journal entries and audit records, and goroutine switching among the handlers. Not profiled in this run; bbolt's NoFreelistSync with the hashmap freelist and fewer transactions per command are the first things to try.", us(other)))
		}
		if c.PeakRSSKB >= 50*1024 {
			n = append(n, fmt.Sprintf("Peak RSS %.0f MB misses 50 MB: the journal file grew to %.0f MB for %d commands (entries are kept for the retention period, 7 days by default) and bbolt maps it into memory, so every page a transaction touches counts as resident. The Go heap itself is small; a journal that stores less per command (the signed result is about 1 KB) or a shorter retention keeps RSS down.", float64(c.PeakRSSKB)/1024, float64(c.JournalBytes)/(1<<20), c.N))
		}
		if c.Latency.P99 >= 2*time.Millisecond {
			n = append(n, fmt.Sprintf("p99 added latency %s misses 2 ms: with %d handlers sharing one core every command queues behind the others' crypto, and each of its four journal transactions waits for a batch fsync; p50 is %s.", ms(c.Latency.P99), c.Workers, ms(c.Latency.P50)))
		}
	}
	if d := r.DC; d != nil {
		n = append(n, fmt.Sprintf("DC-bound: the DC does about %.0f resets/s here (design note: ~45/s on an idle 2-core machine); the load above slows it. The pipeline keeps several resets in flight on its pooled connections, which is why it can match or pass the one-connection loop. Its p50/p99 are dominated by queueing: the whole burst is sent at once, so the median command waits for half the burst.", d.Bare.PerSec))
		if d.VsBare() < 0.95 {
			n = append(n, fmt.Sprintf("(3)/(1) = %.2f misses 0.95. Per reset the pipeline also asks the DC for the user (search by sAMAccountName) and, after a transient failure, re-reads pwdLastSet; with the DC's reset cost serialised, any extra DC work and any gap between writes shows here.", d.VsBare()))
		}
		if d.VsNaive() < 1.3 {
			n = append(n, fmt.Sprintf("(3)/(2) = %.2fx misses 1.3x: on loopback a dial + TLS + bind costs little next to the DC's own reset cost, so reusing connections gains little here.", d.VsNaive()))
		}
	}
	return n
}
