package bench

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"github.com/adwriteback/adwriteback/connector/policy"
	"github.com/adwriteback/adwriteback/connector/policy/policybench"
)

// PolicyTarget is the design's bound on the local policy pre-check: per
// password, with a 1,000,000-term banned list, in either banned mode.
const PolicyTarget = 20 * time.Microsecond

// PolicyOptions configure the policy pre-check run.
type PolicyOptions struct {
	// Checks is how many policy.Check calls each row times, cycling over
	// its case's passwords (default 20,000); the baseline makes as many.
	Checks int
	// Log receives progress lines (nil: silent).
	Log func(format string, a ...any)
}

// PolicyResult is what the policy pre-check run measured.
type PolicyResult struct {
	Terms  int           // terms in the banned list
	Build  time.Duration // policy.NewBannedList, wall time
	Index  int           // the list's MemoryBytes
	Heap   uint64        // live heap the built list holds (its terms dropped)
	Checks int           // timed checks per row, and per baseline
	Rows   []PolicyRow
}

// PolicyRow is one banned mode and password case.
type PolicyRow struct {
	Mode      policy.BannedMode
	Case      string
	Passwords int // distinct passwords cycled over; 0: none found, not measured
	// PerCheck is the wall time of one policy.Check with the list;
	// Baseline the same checks with the same policy but no list.
	PerCheck, Baseline time.Duration
	Hits               float64 // banned violations per check
}

// Met is whether the row is under PolicyTarget.
func (r PolicyRow) Met() bool { return r.PerCheck < PolicyTarget }

// Worst is the slowest measured row (nil if none).
func (p *PolicyResult) Worst() *PolicyRow {
	var w *PolicyRow
	for i := range p.Rows {
		r := &p.Rows[i]
		if r.Passwords > 0 && (w == nil || r.PerCheck > w.PerCheck) {
			w = r
		}
	}
	return w
}

// PolicyCheck measures the local policy pre-check (policy.Check) against
// the 1,000,000-term synthetic banned list of policybench, for each banned
// mode and each of policybench's password cases, one check after another
// on one goroutine; and, as a baseline in the same run, the same checks
// with no banned list.
func PolicyCheck(ctx context.Context, opt PolicyOptions) (*PolicyResult, error) {
	if opt.Checks <= 0 {
		opt.Checks = 20000
	}
	logf := opt.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	res := &PolicyResult{Terms: policybench.ListSize, Checks: opt.Checks}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	bl, build, err := buildBanned(res.Terms)
	if err != nil {
		return nil, err
	}
	res.Build = build
	runtime.GC() // the terms are garbage now
	runtime.ReadMemStats(&after)
	res.Index = bl.MemoryBytes()
	if after.HeapAlloc > before.HeapAlloc {
		res.Heap = after.HeapAlloc - before.HeapAlloc
	}
	logf("policy pre-check: list built in %.1f s (index %.0f MB); generating the password cases", res.Build.Seconds(), float64(res.Index)/(1<<20))
	cases := policybench.Cases(bl)
	u := policybench.User()
	for _, mode := range policybench.Modes() {
		logf("policy pre-check: %s mode, %d cases, %d checks each", mode, len(cases), opt.Checks)
		for _, c := range cases {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			row := PolicyRow{Mode: mode, Case: c.Name, Passwords: len(c.Passwords)}
			if row.Passwords > 0 {
				// Alternate list and baseline in two halves, so that drift
				// in the machine's load falls on both alike.
				half := max(opt.Checks/2, 1)
				var with, without time.Duration
				hits := 0
				for range 2 {
					d, h := timeChecks(policybench.Policy(nil, mode), u, c.Passwords, half)
					without += d
					d, h = timeChecks(policybench.Policy(bl, mode), u, c.Passwords, half)
					with += d
					hits += h
				}
				row.PerCheck = with / time.Duration(2*half)
				row.Baseline = without / time.Duration(2*half)
				row.Hits = float64(hits) / float64(2*half)
			}
			res.Rows = append(res.Rows, row)
		}
	}
	runtime.KeepAlive(bl)
	return res, nil
}

// buildBanned builds policybench's n-term list and times the build (not
// the generation of the terms).
func buildBanned(n int) (*policy.BannedList, time.Duration, error) {
	terms := policybench.Terms(n)
	t0 := time.Now()
	bl, err := policy.NewBannedList(terms)
	if err != nil {
		return nil, 0, fmt.Errorf("banned list: %w", err)
	}
	return bl, time.Since(t0), nil
}

// timeChecks runs n checks of p cycling over pws (after one untimed pass
// to warm the caches) and returns their wall time and the banned
// violations found.
func timeChecks(p policy.Policy, u policy.User, pws []string, n int) (time.Duration, int) {
	for _, pw := range pws {
		_, _ = policy.Check(p, u, pw)
	}
	hits := 0
	t0 := time.Now()
	for i := range n {
		vs, _ := policy.Check(p, u, pws[i%len(pws)])
		for _, v := range vs {
			if v.Rule == policy.RuleBanned {
				hits++
			}
		}
	}
	return time.Since(t0), hits
}

// usf is a duration in microseconds with two decimals.
func usf(d time.Duration) string { return fmt.Sprintf("%.2f µs", float64(d.Nanoseconds())/1000) }

// policyMarkdown renders the policy pre-check section.
func policyMarkdown(p *PolicyResult) string {
	var b []byte
	b = fmt.Appendf(b, "## Policy pre-check (%s-term banned list)\n\n", thousands(p.Terms))
	b = fmt.Appendf(b, "policy.Check per password, one after another on one goroutine: lengths, complexity, names and the banned list (policybench's synthetic list: built in %.1f s, index %.1f MB by MemoryBytes, %.1f MB of live heap). Each row times %s checks cycling over its case's passwords; the baseline is the same checks with the same policy and no banned list (entra mode still scans for the tenant name then), alternated with the timed run in the same process. Cases: mixed, realistic passwords, most of which hit the list; miss-N, N random characters (letters, digits, symbols) that hit nothing, so the scan runs to the end; miss-mid-N, the same over less common letters; worst-N, runes the terms use but rarely, hitting nothing: no pruning, no early end.\n\n",
		p.Build.Seconds(), float64(p.Index)/(1<<20), float64(p.Heap)/(1<<20), thousands(p.Checks))
	b = fmt.Appendf(b, "| mode | case | passwords | per check | baseline (no list) | banned hits per check | target | |\n|---|---|---|---|---|---|---|---|\n")
	for _, r := range p.Rows {
		if r.Passwords == 0 {
			b = fmt.Appendf(b, "| %s | %s | 0 | not measured: no password of this kind misses the list in 200,000 tries | | | | |\n", r.Mode, r.Case)
			continue
		}
		b = fmt.Appendf(b, "| %s | %s | %d | %s | %s | %.2f | < %d µs | %s |\n", r.Mode, r.Case, r.Passwords, usf(r.PerCheck), usf(r.Baseline), r.Hits, PolicyTarget.Microseconds(), verdict(r.Met()))
	}
	return string(append(b, '\n'))
}

// policyNotes explains the policy pre-check's numbers.
func policyNotes(p *PolicyResult) []string {
	w := p.Worst()
	if w == nil {
		return nil
	}
	missed, measured := 0, 0
	for _, r := range p.Rows {
		if r.Passwords > 0 {
			measured++
			if !r.Met() {
				missed++
			}
		}
	}
	n := fmt.Sprintf("Policy pre-check: the slowest row is %s/%s at %s per check (%s without the list), ", w.Mode, w.Case, usf(w.PerCheck), usf(w.Baseline))
	if missed == 0 {
		n += fmt.Sprintf("so every row meets %d µs.", PolicyTarget.Microseconds())
	} else {
		n += fmt.Sprintf("and %d of %d rows miss %d µs.", missed, measured, PolicyTarget.Microseconds())
	}
	n += fmt.Sprintf(" The %s-term list's index takes %.0f MB (MemoryBytes; %.0f MB of live heap) and took %.1f s to build, once, when the policy is loaded.",
		thousands(p.Terms), float64(p.Index)/(1<<20), float64(p.Heap)/(1<<20), p.Build.Seconds())
	return []string{n}
}

// thousands formats n with comma separators: 1000000 -> "1,000,000".
func thousands(n int) string {
	s := fmt.Sprint(n)
	neg := ""
	if n < 0 {
		neg, s = "-", s[1:]
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return neg + s
}
