package bench

import (
	"fmt"
	"time"
)

// Notes explains the numbers of a run: which targets were missed and why,
// from what the run itself measured.
func Notes(r *Report) []string {
	var n []string
	n = append(n, fmt.Sprintf("Load average %s at the start on %d CPUs (anything near or above 1 per CPU means the machine was shared with other work during the run, and absolute numbers are pessimistic; ratios measured in the same run are the meaningful part).", r.Load, r.Machine.CPUs))
	if c := r.Connector; c != nil {
		busy := float64(c.CPU) / float64(c.Wall) / float64(c.Procs)
		n = append(n, fmt.Sprintf("Connector-bound burst: the process used %.0f%% of its %d core(s); CPU per command %s, of which the crypto floor is %s (%.0f%%).",
			100*busy, c.Procs, us(c.CPUPerCmd), us(c.CryptoPerCmd), 100*float64(c.CryptoPerCmd)/float64(max(c.CPUPerCmd, 1))))
		if c.PerSec < 4000 {
			why := fmt.Sprintf("4,000 commands/s per core is missed (%.0f/s). The crypto alone allows at most %.0f/s per core on this CPU (the MLKEM768+X25519 decapsulation and the Ed25519 verification dominate it)", c.PerSec, c.CryptoPerSec)
			if f := r.JournalFloor; f != nil {
				why += fmt.Sprintf(", and each command writes the journal durably twice (the mark before the write to AD, awaited; the outcome, durable before the message is settled): alone, one command after another, the two cost %s of wall time and %s of CPU (mostly the kernel's fdatasync; bbolt syncs data and meta page per commit) on this disk. The group commit shares each transaction among the handlers waiting for it (%.2f transactions per command in the burst), which is what lets the burst run above %.0f/s", us(f.PerCmdWall), us(f.PerCmdCPU), float64(c.Journal.Commits)/float64(max(c.N, 1)), f.PerSec)
			}
			n = append(n, why+". Neither floor can be removed without giving up post-quantum sealing or durability before effects, so the target cannot be met on this machine.")
		}
		if u := r.Unloaded(); u != nil && u.Latency.P99 >= 2*time.Millisecond {
			n = append(n, fmt.Sprintf("p99 added latency %s misses 2 ms (p50 %s). Before its result goes out a command pays its crypto and one fsync'd commit (the mark before the write to AD); the journal floor (two commits) is %s per command here.", ms(u.Latency.P99), ms(u.Latency.P50), func() string {
				if r.JournalFloor == nil {
					return "unmeasured"
				}
				return us(r.JournalFloor.PerCmdWall)
			}()))
		}
		if len(r.Sweep) > 0 {
			n = append(n, "The sweep shows the trade-off: more handlers share more of each fsync (fewer transactions per command, more commands/s) and queue longer behind each other's CPU on the one core (higher p50/p99). The Service Bus source's concurrency setting picks the point; latency in a burst is queueing, not added work.")
		}
		if c.PeakRSSKB >= 50*1024 {
			n = append(n, fmt.Sprintf("Peak RSS %.0f MB misses 50 MB: the journal file is %.0f MB after %d commands.", float64(c.PeakRSSKB)/1024, float64(c.JournalBytes)/(1<<20), c.N))
		} else {
			n = append(n, fmt.Sprintf("Peak RSS stays low although the journal keeps every command for the retention period (%.0f MB file after %d commands): entries are appended in arrival order behind an id index, so a write touches only the log's tail and the index pages, and bbolt's map holds few resident pages.", float64(c.JournalBytes)/(1<<20), c.N))
		}
	}
	if d := r.DC; d != nil {
		n = append(n, fmt.Sprintf("DC-bound: the DC does about %.0f resets/s here (design note: ~45/s on an idle 2-core machine); load on the machine slows it. The pipeline keeps several resets in flight on its pooled connections. Its p50/p99 are dominated by queueing: the whole burst is sent at once, so the median command waits for half the burst.", d.Bare.PerSec))
		if d.VsBare() < 0.95 {
			lookup := fmt.Sprintf("so the lookup alone brings the DC's limit to %.0f%% of (1)", 100*d.Lookup.PerSec/d.Bare.PerSec)
			if d.Lookup.PerSec >= d.Bare.PerSec {
				lookup = fmt.Sprintf("within this run's noise of (1) at %.1f/s (the lookup costs the DC about 2 ms per reset when measured alone)", d.Bare.PerSec)
			}
			n = append(n, fmt.Sprintf("(3)/(1) = %.2f misses 0.95. Samba serialises writes (one transaction lock across its LDAP worker processes), so the DC's own cost per reset is the limit, and the pipeline must ask more of it than (1) does: a fresh user lookup before each write (scope, flags, pwdLastSet and the password version that crash recovery compares; the constructed msDS-ResultantPSO is part of it). (1b) measures exactly that on one connection: %.1f resets/s, %s. The rest, (3)/(1b) = %.2f, is spent on the DC too: the pipeline's concurrent connections interleave lookups and writes across Samba's worker processes, each waiting for the lock (in a separate experiment queue concurrency 1, 4 and 8 gave 22.1, 23.1 and 24.4 resets/s against a bare loop of 28-29/s: more commands in flight barely help, so the time is not in the connector).", d.VsBare(), d.Lookup.PerSec, lookup, d.Pipeline.PerSec/d.Lookup.PerSec))
		}
		if d.VsNaive() < 1.3 {
			n = append(n, fmt.Sprintf("(3)/(2) = %.2fx misses 1.3x: on loopback a dial + TLS + bind costs little next to the DC's own reset cost, so reusing connections gains little here.", d.VsNaive()))
		}
	}
	return n
}
