package bench

import (
	"strings"
	"testing"
	"time"

	"github.com/adwriteback/adwriteback/connector/policy"
)

// TestPolicyMarkdown: the policy pre-check section renders each row with
// its baseline and verdict, a row with no passwords as not measured, and
// the notes name the slowest row and the index's size.
func TestPolicyMarkdown(t *testing.T) {
	p := &PolicyResult{
		Terms: 1_000_000, Build: 4200 * time.Millisecond, Index: 150 << 20, Heap: 160 << 20, Checks: 20000,
		Rows: []PolicyRow{
			{Mode: policy.BannedStrict, Case: "mixed", Passwords: 10, PerCheck: 3210 * time.Nanosecond, Baseline: 450 * time.Nanosecond, Hits: 0.8},
			{Mode: policy.BannedEntra, Case: "worst-32", Passwords: 32, PerCheck: 21500 * time.Nanosecond, Baseline: 1020 * time.Nanosecond},
			{Mode: policy.BannedEntra, Case: "miss-mid-20", Passwords: 0},
		},
	}
	r := &Report{Machine: ThisMachine(), Policy: p}
	r.Notes = Notes(r)
	md := r.Markdown()
	for _, want := range []string{
		"## Policy pre-check (1,000,000-term banned list)\n\n",
		"built in 4.2 s, index 150.0 MB by MemoryBytes, 160.0 MB of live heap",
		"Each row times 20,000 checks",
		"| mode | case | passwords | per check | baseline (no list) | banned hits per check | target | |\n",
		"| strict | mixed | 10 | 3.21 µs | 0.45 µs | 0.80 | < 20 µs | met |\n",
		"| entra | worst-32 | 32 | 21.50 µs | 1.02 µs | 0.00 | < 20 µs | **MISSED** |\n",
		"| entra | miss-mid-20 | 0 | not measured",
		"Policy pre-check: the slowest row is entra/worst-32 at 21.50 µs per check (1.02 µs without the list), and 1 of 2 rows miss 20 µs.",
		"The 1,000,000-term list's index takes 150 MB (MemoryBytes; 160 MB of live heap) and took 4.2 s to build",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	if i, j := strings.Index(md, "## Policy pre-check"), strings.Index(md, "## Notes"); i < 0 || j < i {
		t.Errorf("policy section not before the notes:\n%s", md)
	}

	p.Rows[1].PerCheck = 15 * time.Microsecond
	if n := strings.Join(policyNotes(p), "\n"); !strings.Contains(n, "entra/worst-32 at 15.00 µs per check (1.02 µs without the list), so every row meets 20 µs.") {
		t.Errorf("notes:\n%s", n)
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 20000: "20,000", 1_000_000: "1,000,000", -1234: "-1,234"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}
