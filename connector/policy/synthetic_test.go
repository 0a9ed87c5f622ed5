package policy

import "math/rand/v2"

// syntheticTerms and benchPasswords are policybench.Terms and
// policybench.Passwords for this package's internal tests, which cannot
// import policybench (it imports policy). TestSyntheticMatchesPolicybench
// keeps the copies equal.

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

// SyntheticTermsForTest and BenchPasswordsForTest export the copies to the
// external tests (policy_test), which compare them with policybench's.
var (
	SyntheticTermsForTest = syntheticTerms
	BenchPasswordsForTest = func() []string { return append([]string(nil), benchPasswords...) }
)
