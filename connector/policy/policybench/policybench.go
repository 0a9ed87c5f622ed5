// Package policybench holds the policy pre-check's benchmark workload: the
// synthetic 1,000,000-term banned list and the password sets, shared by
// connector/policy's BenchmarkCheck and the bench tool.
package policybench

import (
	"fmt"
	"math/rand/v2"

	"github.com/adwriteback/adwriteback/connector/policy"
)

// ListSize is the number of terms in the benchmarked banned list; the
// design's target (under 20 µs per password) is for a list this size.
const ListSize = 1_000_000

// Character sets of the generated passwords.
const (
	// WithSymbols is letters, digits and symbols: random passwords.
	WithSymbols = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#%^&*-_=?"
	// Mid is less common letters and digits: more of their grams occur in
	// terms, so the gate (see policy.BannedList) passes more of them to
	// the table.
	Mid = "cumwfgypbvkjxqz2689"
	// Rare is runes that occur in the terms, but rarely: nothing is pruned
	// and nothing ends the scan early.
	Rare = "qxzjkvbQXZJKVB2689"
)

// Terms makes n distinct-ish pseudo-words deterministically: lengths 4 to
// 16, letters weighted towards English frequencies, some with a digit
// suffix, like real banned lists (names, words, words+years).
func Terms(n int) []string {
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

// Passwords is a fresh slice of realistic passwords, most of which hit the
// list.
func Passwords() []string {
	return []string{
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
}

// MissPasswords returns up to n passwords of the given length, random over
// chars, that match no term of bl: each check scans every substring, the
// slowest case for that length. It gives up after 200,000 tries, so the
// result may be shorter than n, or empty.
func MissPasswords(bl *policy.BannedList, n, length int, chars string) []string {
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

// Policy is the benchmarked policy: AD's complexity and length rules, an
// organisation minimum above AD's, the banned list bl (nil for none) in
// the given mode, and a tenant name.
func Policy(bl *policy.BannedList, mode policy.BannedMode) policy.Policy {
	return policy.Policy{MinLength: 12, ComplexityEnabled: true, OrgMinLength: 14, Banned: bl,
		BannedMode: mode, TenantName: "Contoso"}
}

// User is the benchmarked user, whose names the complexity rules and the
// entra mode match against.
func User() policy.User {
	return policy.User{SAMAccountName: "ehagens", DisplayName: "Erin M. Hagens", FirstName: "Erin", LastName: "Hagens"}
}

// Modes are the banned modes benchmarked: the checks find every match
// either way; entra also scores them and matches the names.
func Modes() []policy.BannedMode { return []policy.BannedMode{policy.BannedStrict, policy.BannedEntra} }

// Case is a named set of passwords to check, one after another.
type Case struct {
	Name      string
	Passwords []string // may be empty: no password of this kind misses bl
}

// Cases are the benchmarked password sets against bl:
//   - mixed: realistic passwords, most of which hit the list;
//   - miss-N: N-character random passwords (letters, digits, symbols) that
//     hit nothing, so the scan runs to the end;
//   - miss-mid-N: the same over less common letters (Mid), more of whose
//     grams pass the gate to the table;
//   - worst-N: N-character passwords of runes that the terms use, but
//     rarely (Rare), and that hit nothing: no pruning, no early end, every
//     substring and deletion probed: the worst case for that length.
//
// Generating the miss and worst sets checks candidates against bl, so
// this takes a moment on the 1,000,000-term list.
func Cases(bl *policy.BannedList) []Case {
	cs := []Case{{Name: "mixed", Passwords: Passwords()}}
	for _, l := range []int{12, 16, 20} {
		cs = append(cs, Case{Name: fmt.Sprintf("miss-%d", l), Passwords: MissPasswords(bl, 64, l, WithSymbols)})
	}
	for _, l := range []int{12, 16, 20} {
		cs = append(cs, Case{Name: fmt.Sprintf("miss-mid-%d", l), Passwords: MissPasswords(bl, 32, l, Mid)})
	}
	for _, l := range []int{12, 16, 20, 32} {
		cs = append(cs, Case{Name: fmt.Sprintf("worst-%d", l), Passwords: MissPasswords(bl, 32, l, Rare)})
	}
	return cs
}
