package policy

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
)

// syntheticTerms makes n distinct-ish pseudo-words deterministically: lengths
// 4 to 16, letters weighted towards English frequencies, some with a digit
// suffix, like real banned lists (names, words, words+years).
func syntheticTerms(n int) []string {
	const freq = "eeeeeeeeeeeetttttttttaaaaaaaaoooooooiiiiiiinnnnnnnssssssrrrrrrhhhhhlllldddcccuuummmwwffggyyppbbvkjxqz"
	rng := rand.New(rand.NewPCG(1, 2))
	out := make([]string, n)
	buf := make([]byte, 0, 20)
	for i := range out {
		l := 4 + rng.IntN(13)
		buf = buf[:0]
		for range l {
			buf = append(buf, freq[rng.IntN(len(freq))])
		}
		if rng.IntN(8) == 0 && l <= 12 {
			buf = append(buf, byte('0'+rng.IntN(10)), byte('0'+rng.IntN(10)))
		}
		out[i] = string(buf)
	}
	return out
}

var benchPasswords = []string{
	"Correct-Horse-Battery-9",
	"Tr0ub4dor&3",
	"Summer2024!",
	"xK9#mQ2$vL7@",
	"Erin.Hagens#2025",
	"Пароль-Надёжный-7",
	"パスワード123abc",
	"Welcome1",
	"Zq8!wR4%tY6^uI2&",
	"correcthorsebatterystaple",
}

// bannedForBench builds the 1,000,000-term list once per process and
// measures its heap: live heap after building, minus live heap before the
// terms were generated (the terms are dropped before the second reading).
var bannedForBench = sync.OnceValues(func() (*BannedList, uint64) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	bl, err := NewBannedList(syntheticTerms(1_000_000))
	if err != nil {
		panic(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	return bl, after.HeapAlloc - before.HeapAlloc
})

// missPasswords returns up to n passwords of the given length, random over
// letters, digits and symbols, that match no banned term: each check scans
// every substring, the slowest case for that length.
func missPasswords(bl *BannedList, n, length int, chars string) []string {
	rng := rand.New(rand.NewPCG(3, uint64(length)))
	var out []string
	buf := make([]byte, length)
	for try := 0; len(out) < n && try < 200000; try++ {
		for i := range buf {
			buf[i] = chars[rng.IntN(len(chars))]
		}
		if _, hit := bl.Match(string(buf)); !hit {
			out = append(out, string(buf))
		}
	}
	return out
}

// BenchmarkCheck is the full check (lengths, complexity, names, and a
// 1,000,000-term banned list) per password. Target: under 20 us/op.
//   - mixed: realistic passwords, most of which hit the list;
//   - miss-N: N-character random passwords (letters, digits, symbols) that
//     hit nothing, so the scan runs to the end;
//   - worst-N: N-character passwords of runes that the terms use, but
//     rarely, and that hit nothing: no pruning, no early end, every
//     substring and deletion probed: the worst case for that length.
//
// Each runs in both banned modes (strict/..., entra/...): the checks find
// every match either way; entra also scores them and matches the names.
func BenchmarkCheck(b *testing.B) {
	for _, mode := range []BannedMode{BannedStrict, BannedEntra} {
		b.Run(string(mode), func(b *testing.B) { benchmarkCheck(b, mode) })
	}
}

func benchmarkCheck(b *testing.B, mode BannedMode) {
	bl, heap := bannedForBench()
	p := Policy{MinLength: 12, ComplexityEnabled: true, OrgMinLength: 14, Banned: bl,
		BannedMode: mode, TenantName: "Contoso"}
	u := User{SAMAccountName: "ehagens", DisplayName: "Erin M. Hagens", FirstName: "Erin", LastName: "Hagens"}
	run := func(b *testing.B, pws []string) {
		if len(pws) == 0 {
			b.Skip("no password of this kind misses the list in 200,000 tries")
		}
		hits := 0
		for i := 0; b.Loop(); i++ {
			vs, _ := Check(p, u, pws[i%len(pws)])
			for _, v := range vs {
				if v.Rule == RuleBanned {
					hits++
				}
			}
		}
		b.ReportMetric(float64(heap), "banned-heap-bytes")
		b.ReportMetric(float64(bl.MemoryBytes()), "banned-index-bytes")
		b.ReportMetric(float64(hits)/float64(b.N), "banned-hits/op")
	}
	b.Run("mixed", func(b *testing.B) { run(b, benchPasswords) })
	const (
		withSymbols = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#%^&*-_=?"
		// Runes that occur in the terms, but rarely: nothing is pruned and
		// nothing ends the scan early.
		rare = "qxzjkvbQXZJKVB2689"
	)
	for _, l := range []int{12, 16, 20} {
		pws := missPasswords(bl, 64, l, withSymbols)
		b.Run(fmt.Sprintf("miss-%d", l), func(b *testing.B) { run(b, pws) })
	}
	for _, l := range []int{12, 16, 20} {
		// Less common letters: more of their grams occur in terms, so the gate (see
		// BannedList) passes more of them to the table.
		pws := missPasswords(bl, 32, l, "cumwfgypbvkjxqz2689")
		b.Run(fmt.Sprintf("miss-mid-%d", l), func(b *testing.B) { run(b, pws) })
	}
	for _, l := range []int{12, 16, 20, 32} {
		pws := missPasswords(bl, 32, l, rare)
		b.Run(fmt.Sprintf("worst-%d", l), func(b *testing.B) { run(b, pws) })
	}
}

// BenchmarkBannedBuild is building the 1,000,000-term index.
func BenchmarkBannedBuild(b *testing.B) {
	terms := syntheticTerms(1_000_000)
	for b.Loop() {
		if _, err := NewBannedList(terms); err != nil {
			b.Fatal(err)
		}
	}
}
