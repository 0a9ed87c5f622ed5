package policy_test

import (
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/adwriteback/adwriteback/connector/policy"
	"github.com/adwriteback/adwriteback/connector/policy/policybench"
)

// bannedForBench builds the 1,000,000-term list once per process and
// measures its heap: live heap after building, minus live heap before the
// terms were generated (the terms are dropped before the second reading).
var bannedForBench = sync.OnceValues(func() (*policy.BannedList, uint64) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	bl, err := policy.NewBannedList(policybench.Terms(policybench.ListSize))
	if err != nil {
		panic(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	return bl, after.HeapAlloc - before.HeapAlloc
})

// BenchmarkCheck is the full check (lengths, complexity, names, and a
// 1,000,000-term banned list) per password. Target: under 20 us/op. The
// cases are policybench.Cases (mixed, miss-N, miss-mid-N, worst-N; see
// there for what each measures).
//
// Each runs in both banned modes (strict/..., entra/...): the checks find
// every match either way; entra also scores them and matches the names.
func BenchmarkCheck(b *testing.B) {
	for _, mode := range policybench.Modes() {
		b.Run(string(mode), func(b *testing.B) { benchmarkCheck(b, mode) })
	}
}

func benchmarkCheck(b *testing.B, mode policy.BannedMode) {
	bl, heap := bannedForBench()
	p, u := policybench.Policy(bl, mode), policybench.User()
	for _, c := range policybench.Cases(bl) {
		b.Run(c.Name, func(b *testing.B) {
			pws := c.Passwords
			if len(pws) == 0 {
				b.Skip("no password of this kind misses the list in 200,000 tries")
			}
			hits := 0
			for i := 0; b.Loop(); i++ {
				vs, _ := policy.Check(p, u, pws[i%len(pws)])
				for _, v := range vs {
					if v.Rule == policy.RuleBanned {
						hits++
					}
				}
			}
			b.ReportMetric(float64(heap), "banned-heap-bytes")
			b.ReportMetric(float64(bl.MemoryBytes()), "banned-index-bytes")
			b.ReportMetric(float64(hits)/float64(b.N), "banned-hits/op")
		})
	}
}

// BenchmarkBannedBuild is building the 1,000,000-term index.
func BenchmarkBannedBuild(b *testing.B) {
	terms := policybench.Terms(policybench.ListSize)
	for b.Loop() {
		if _, err := policy.NewBannedList(terms); err != nil {
			b.Fatal(err)
		}
	}
}

// TestBannedAgainstReference compares the index with brute force on a
// synthetic list big enough to have shared keys and repeated runes.
func TestBannedAgainstReference(t *testing.T) {
	terms := policybench.Terms(1500)
	terms = append(terms, "aaaa", "aaab", "abab", "baaa", "mississippi")
	bl, err := policy.NewBannedList(terms)
	if err != nil {
		t.Fatal(err)
	}
	pws := policybench.Passwords()
	pws = append(pws, "aaaaaaa", "xaabx", "mis#issippi", "##mississippi##", "mi#ss#issippi", "€mississipp", "mississipi", "misisippi", "mIssi55ippi!", "bbaaab")
	for _, w := range policybench.Terms(200) {
		pws = append(pws, "X"+w+"7", w[1:], w[:len(w)-1]+"q", strings.ToUpper(w),
			w[:2]+"#"+w[2:], "-"+w[:3]+"%"+w[3:]+"#", w[:1]+"€"+w[2:], "a#b"+w+"c^d")
	}
	for _, pw := range pws {
		_, got := bl.Match(pw)
		want := policy.RefBanned(terms, pw) != ""
		if got != want {
			t.Fatalf("Match(%q) = %v, reference %v (%s)", pw, got, want, policy.RefBanned(terms, pw))
		}
	}
}
