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
			why := fmt.Sprintf("p99 added latency %s misses 2 ms (p50 %s). Before its result goes out a command pays its crypto (%s) and one fsync'd commit: the mark that it is about to write to AD, which must be durable before the write so that a crash can never apply it twice.", ms(u.Latency.P99), ms(u.Latency.P50), us(c.CryptoPerCmd))
			if f := r.JournalFloor; f != nil && f.Mark.P99 > 0 && f.Fdatasync.P99 > 0 {
				why += fmt.Sprintf(" That commit alone, with nothing else running, takes %s at p50 and %s at p99 on this disk. bbolt flushes twice per commit (the data pages, then the meta page that makes them live; one flush for both could tear the file on a crash), and on this virtual disk two flushes back to back are %s / %s (p50 / p99) where one is %s / %s: the tail is the disk's, and it doubles with the second flush. Getting under 2 ms here would take a separate single-flush log for the marks beside bbolt (its own recovery code on the exactly-once path) or giving up durability before the write; neither is worth about a millisecond next to the ~40 ms the DC spends on the reset itself.",
					ms(f.Mark.P50), ms(f.Mark.P99), ms(f.Fdatasync2.P50), ms(f.Fdatasync2.P99), ms(f.Fdatasync.P50), ms(f.Fdatasync.P99))
			}
			n = append(n, why)
		}
		if len(r.Sweep) > 0 {
			n = append(n, "The sweep shows the trade-off: more handlers share more of each fsync (fewer transactions per command, more commands/s) and queue longer behind each other's CPU on the one core (higher p50/p99). The Service Bus source's concurrency setting picks the point; latency in a burst is queueing, not added work.")
		}
		if c.PeakRSSKB >= 50*1024 {
			why := fmt.Sprintf("Peak RSS %.0f MB misses 50 MB: the journal file is %.0f MB after %d commands.", float64(c.PeakRSSKB)/1024, float64(c.JournalBytes)/(1<<20), c.N)
			if c.EndAnonKB+c.EndFileKB > 0 {
				why += fmt.Sprintf(" At the end of the burst %.0f MB was anonymous (%.0f MB of it the Go heap in use, which the collector lets grow to about twice the live heap between collections) and %.0f MB file-backed: the binary's code and the journal's mapped pages, which grow with the commands it keeps.",
					float64(c.EndAnonKB)/1024, float64(c.EndHeapKB)/1024, float64(c.EndFileKB)/1024)
			}
			n = append(n, why)
		} else {
			n = append(n, fmt.Sprintf("Peak RSS stays low although the journal keeps every command for the retention period (%.0f MB file after %d commands): entries are appended in arrival order behind an id index, so a write touches only the log's tail and the index pages, and bbolt's map holds few resident pages.", float64(c.JournalBytes)/(1<<20), c.N))
		}
	}
	if p := r.Policy; p != nil {
		n = append(n, policyNotes(p)...)
	}
	if d := r.DC; d != nil {
		n = append(n, dcNotes(d)...)
	}
	return n
}

// dcNotes explains the DC-bound numbers from the DC's own CPU time: how
// much work each approach asked of the DC per reset, and how much of the
// time the DC was busy.
func dcNotes(d *DCResult) []string {
	var n []string
	p := d.Pipeline()
	n = append(n, fmt.Sprintf("DC-bound: the DC does about %.0f resets/s here (design note: ~45/s on an idle 2-core machine); load on the machine slows it, and its cost per reset drifts by 10%% and more from one minute to the next on this shared machine, which is why (1), (1b) and (3) alternate in rounds. Samba serialises writes (one transaction lock across its LDAP worker processes): a bare reset keeps one core busy (DC busy %.2f in (1)) and more connections do not raise that. The pipeline's p50/p99 are dominated by queueing: the whole burst is sent at once, so the median command waits for half the burst.", d.Bare.PerSec, d.Bare.DCBusy()))
	if d.Bare.DC.CPU <= 0 || p.DC.CPU <= 0 {
		if d.VsBare() < 0.95 {
			n = append(n, fmt.Sprintf("(3)/(1) = %.2f misses 0.95; the DC's CPU time could not be read, so this run cannot say where the difference went.", d.VsBare()))
		}
		return n
	}
	bare, look, pipe := d.Bare.DCCPUPerOp(), d.Lookup.DCCPUPerOp(), p.DCCPUPerOp()
	work := float64(bare) / float64(pipe)           // (1)'s DC work per reset over (3)'s
	busy := p.DCBusy() / max(d.Bare.DCBusy(), 1e-9) // (3)'s DC busy share over (1)'s
	verdictWord := "meets"
	if d.VsBare() < 0.95 {
		verdictWord = "misses"
	}
	n = append(n, fmt.Sprintf("(3)/(1) = %.2f %s 0.95. The DC's own accounting says where the difference goes: (3)/(1) = (DC busy in (3) / in (1)) x (DC CPU per reset in (1) / in (3)) = %.2f x %.2f. Per reset the DC spent %s in (1), %s in (1b) and %s in (3).",
		d.VsBare(), verdictWord, busy, work, ms(bare), ms(look), ms(pipe)))
	lookup := fmt.Sprintf("The user lookup the connector must make before each write (scope, flags, pwdLastSet and the password version that crash recovery compares) costs the DC %s per reset when it follows a write ((1b) - (1)), so the DC's limit for the pipeline's work is (1b): %.1f resets/s, %.2f of (1); (3) runs at %.2f of it.",
		ms(look-bare), d.Lookup.PerSec, d.Lookup.PerSec/d.Bare.PerSec, p.PerSec/d.Lookup.PerSec)
	if look <= bare {
		lookup = fmt.Sprintf("The user lookup the connector must make before each write cost the DC nothing measurable in this run ((1b) %s against (1) %s per reset: within the DC's drift); (3) runs at %.2f of (1b).", ms(look), ms(bare), p.PerSec/d.Lookup.PerSec)
	}
	n = append(n, lookup)
	if p.PerSec < d.Lookup.PerSec {
		extra := fmt.Sprintf("(3) asked %s more of the DC per reset than (1b)", ms(pipe-look))
		if pipe <= look {
			extra = fmt.Sprintf("(3) cost the DC no more per reset than (1b) (%s against %s)", ms(pipe), ms(look))
		}
		n = append(n, fmt.Sprintf("Against (1b): %s, and the DC was busy %.2f of the time against %.2f. That is not work the connector asks for: in (3) the emulator, the sender and the connector share the machine's 2 cores with the DC, which waited %s per reset for a CPU held by other work (%s in (1), %s in (1b)); work on the other core also slows the DC's own (a shell busy loop on the other core alone raised the bare loop's DC CPU per reset by 3-8%% in a separate experiment: 33.5 -> 36.2, 41.7 -> 42.8 and 41.7 -> 43.7 ms). On a DC of its own, as in production, neither arises.",
			extra, p.DCBusy(), d.Lookup.DCBusy(), ms(p.DCWaitPerOp()), ms(d.Bare.DCWaitPerOp()), ms(d.Lookup.DCWaitPerOp())))
	}
	for _, q := range d.Pipelines[1:] {
		if q.DC.CPU > 0 {
			n = append(n, fmt.Sprintf("With an LDAP pool of %d the pipeline ran at %.1f resets/s (%.2f of (1)): the DC spent %s per reset and waited %s per reset for a CPU. More connections spread the commands' lookups and writes over several of Samba's prefork LDAP worker processes, which then compete for the CPUs and for the write lock: the DC does more work per reset, not more resets. One connection keeps them in one worker; against Samba, pool_size 1 is the better setting (the connector's default, 4, is kept for DCs that write in parallel).",
				q.PoolSize, q.PerSec, q.PerSec/d.Bare.PerSec, ms(q.DCCPUPerOp()), ms(q.DCWaitPerOp())))
		}
	}
	if d.VsNaive() < 1.3 {
		n = append(n, fmt.Sprintf("(3)/(2) = %.2fx misses 1.3x: on loopback a dial + TLS + bind costs the DC %s per reset over (1) (%s against %s), little next to its own reset cost, so reusing connections gains less than across a network.", d.VsNaive(), ms(d.Naive.DCCPUPerOp()-bare), ms(d.Naive.DCCPUPerOp()), ms(bare)))
	}
	return n
}
