package policy

import (
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf16"
)

// The reference implementation: written separately from the engine, slow and
// plain, straight from Microsoft's text.

func refUTF16Len(s string) int { return len(utf16.Encode([]rune(s))) }

func refCategories(s string) (found int) {
	var up, low, dig, sym, other bool
	for _, r := range s {
		switch {
		case strings.ContainsRune("0123456789", r):
			dig = true
		case strings.ContainsRune("~!@#$%^&*_-+=`|\\(){}[]:;\"'<>,.?/", r):
			sym = true
		case unicode.In(r, unicode.Lu, unicode.Other_Uppercase):
			up = true
		case unicode.In(r, unicode.Ll, unicode.Other_Lowercase):
			low = true
		case unicode.In(r, unicode.L, unicode.Nl, unicode.Other_Alphabetic):
			other = true
		}
	}
	for _, b := range []bool{up, low, dig, sym, other} {
		if b {
			found++
		}
	}
	return found
}

func refNameTokens(display string) []string {
	fields := []string{display}
	for _, d := range []string{",", ".", "-", "_", " ", "\t", "#"} {
		var next []string
		for _, f := range fields {
			next = append(next, strings.Split(f, d)...)
		}
		fields = next
	}
	var out []string
	for _, f := range fields {
		if refUTF16Len(f) >= 3 {
			out = append(out, f)
		}
	}
	return out
}

func refNameViolations(sam, display, pw string) (account bool, tokens []string) {
	up := strings.ToUpper
	if refUTF16Len(sam) >= 3 && strings.Contains(up(pw), up(sam)) {
		account = true
	}
	for _, tok := range refNameTokens(display) {
		if strings.Contains(up(pw), up(tok)) && !slices.ContainsFunc(tokens, func(t string) bool { return up(t) == up(tok) }) {
			tokens = append(tokens, tok)
		}
	}
	return account, tokens
}

func refLevenshtein(a, b []rune) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func refNormalize(s string) []rune {
	sub := map[rune]rune{'0': 'o', '1': 'l', '3': 'e', '4': 'a', '5': 's', '7': 't', '$': 's', '@': 'a', '!': 'i', '|': 'l', '+': 't'}
	var out []rune
	for _, r := range strings.ToLower(s) {
		if x, ok := sub[r]; ok {
			r = x
		}
		out = append(out, r)
	}
	return out
}

// refBanned returns a term within distance 1 of some substring, or "".
func refBanned(terms []string, pw string) string {
	p := refNormalize(pw)
	for _, t := range terms {
		tn := refNormalize(strings.TrimSpace(t))
		if len(tn) == 0 {
			continue
		}
		for i := 0; i <= len(p); i++ {
			for j := i; j <= len(p); j++ {
				if d := j - i - len(tn); d < -1 || d > 1 {
					continue
				}
				if refLevenshtein(p[i:j], tn) <= 1 {
					return t
				}
			}
		}
	}
	return ""
}

func FuzzCheck(f *testing.F) {
	f.Add("Password1", "ehagens", "Erin M. Hagens", "passw0rd", 8, true)
	f.Add("Пароль€€😀", "иван", "Иван Петров", "parol", 12, true)
	f.Add("密码abcDEF", "ab", "a.b-c_d e\tf#g", "abcd", 0, false)
	f.Add("\xff\xfe", "\xff\xff\xff", "\x00", "\xffabc", 3, true)
	f.Add(strings.Repeat("😀", 129), "x", "", "aaaa", 300, true)
	f.Fuzz(func(t *testing.T, pw, sam, display, term string, minLen int, complexity bool) {
		var terms []string
		fits := func(t string) bool {
			n := len(normalizeRunes(nil, strings.TrimSpace(t))) // the list's own length rule
			return n >= MinBannedTermLength && n <= MaxBannedTermLength
		}
		if fits(term) && fits(term+"x") { // term+"x" keeps term's trailing space
			terms = []string{term, term + "x"}
		}
		bl, err := NewBannedList(terms)
		if err != nil {
			t.Fatalf("NewBannedList: %v", err)
		}
		p := Policy{MinLength: minLen % 400, ComplexityEnabled: complexity, Banned: bl}
		u := User{SAMAccountName: sam, DisplayName: display}
		vs, err := Check(p, u, pw)
		if err != nil {
			t.Fatal(err)
		}

		var want []Rule
		n := refUTF16Len(pw)
		if n < p.MinLength {
			want = append(want, RuleMinLength)
		}
		if n > 256 {
			want = append(want, RuleMaxLength)
		}
		var wantTokens []string
		if complexity {
			if refCategories(pw) < 3 {
				want = append(want, RuleComplexity)
			}
			acct, toks := refNameViolations(sam, display, pw)
			if acct {
				want = append(want, RuleContainsAccountName)
			}
			for range toks {
				want = append(want, RuleContainsDisplayName)
			}
			wantTokens = toks
		}
		if n <= 256 && refBanned(terms, pw) != "" {
			want = append(want, RuleBanned)
		}
		if got := rules(vs); !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Fatalf("rules = %v, reference %v", got, want)
		}
		var gotTokens []string
		for _, v := range vs {
			if v.Rule == RuleContainsDisplayName {
				gotTokens = append(gotTokens, v.Token)
			}
			if len(pw) > 3 && strings.Contains(withoutTokens(v.Message, sam, display, term), pw) {
				t.Fatalf("message contains the password: %q", v.Message)
			}
		}
		if !slices.Equal(gotTokens, wantTokens) {
			t.Fatalf("tokens = %q, reference %q", gotTokens, wantTokens)
		}
	})
}

// withoutTokens is msg without the quoted names and terms a message may
// hold: what is left is fixed text and numbers, and must not hold the
// password (a password can be a quote plus a name: "\"0A0" with the display
// name 0A0).
func withoutTokens(msg, sam, display, term string) string {
	known := append([]string{sam, term, term + "x", strings.TrimSpace(term), strings.TrimSpace(term) + "x"}, refNameTokens(display)...)
	for _, k := range known {
		for _, q := range []string{`"`, "'"} {
			msg = strings.ReplaceAll(msg, q+k+q, "")
		}
	}
	return msg
}
