package policy

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestNormalizeBanned(t *testing.T) {
	for in, want := range map[string]string{
		"P@$$w0rd":  "password",
		"H3ll0":     "hello",
		"1337":      "leet",
		"W!nter+4":  "winterta",
		"ÄÖÜ":       "äöü",
		"Ω":         "ω",
		"|ame":      "lame",
		"plain":     "plain",
		"summer2":   "summer2", // 2 has no substitution
		"Summer_57": "summer_st",
	} {
		if got := NormalizeBanned(in); got != want {
			t.Errorf("NormalizeBanned(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestBannedMatch(t *testing.T) {
	bl, err := NewBannedList([]string{"password", "Contoso", "wint3r", "", "  ", "P@ssword"})
	if err != nil {
		t.Fatal(err)
	}
	if bl.Len() != 3 {
		t.Errorf("Len = %d, want 3 (blank skipped, P@ssword = password)", bl.Len())
	}
	for _, c := range []struct {
		pw   string
		term string // "" = no match
	}{
		{"password", "password"},
		{"P@ssw0rd", "password"},     // substitutions
		{"xxPASSWORDxx", "password"}, // inside, case
		{"passw0rdd", "password"},    // insertion at the end
		{"paXsword!", "password"},    // substitution
		{"pasword", "password"},      // deletion
		{"passXword", "password"},    // insertion in the middle
		{"psasword", ""},             // transposition is distance 2
		{"pa55XXword", ""},           // distance 2
		{"c0nt0s0-2024", "Contoso"},  // term reported as listed
		{"Winter2024", "wint3r"},     // term normalises too
		{"wnter", "wint3r"},          // deletion from the term
		{"Zq8!wR4%", ""},             // nothing close
		{"", ""},
	} {
		term, ok := bl.Match(c.pw)
		if ok != (c.term != "") || term != c.term {
			t.Errorf("Match(%q) = %q, %v; want %q", c.pw, term, ok, c.term)
		}
	}
}

func TestBannedTermBounds(t *testing.T) {
	if _, err := NewBannedList([]string{"abc"}); !errors.Is(err, ErrBannedTerm) {
		t.Errorf("3-char term: err = %v", err)
	}
	if _, err := NewBannedList([]string{strings.Repeat("a", MaxBannedTermLength+1)}); !errors.Is(err, ErrBannedTerm) {
		t.Errorf("long term: err = %v", err)
	}
	if _, err := NewBannedList([]string{"abcd", strings.Repeat("a", MaxBannedTermLength)}); err != nil {
		t.Errorf("bounds: %v", err)
	}
	_, err := ReadBannedList(strings.NewReader("# comment\n\npassword\nab\n"))
	if !errors.Is(err, ErrBannedTerm) || !strings.Contains(err.Error(), "line 4") {
		t.Errorf("ReadBannedList err = %v", err)
	}
	bl, err := ReadBannedList(strings.NewReader("# comment\r\n\r\npassword\r\n  contoso  \n"))
	if err != nil || bl.Len() != 2 {
		t.Fatalf("ReadBannedList: %v", err)
	}
	if _, ok := bl.Match("c0nt0so"); !ok {
		t.Error("trimmed term not matched")
	}
}

func TestBannedNilAndEmpty(t *testing.T) {
	var bl *BannedList
	if _, ok := bl.Match("password"); ok {
		t.Error("nil list matched")
	}
	empty, err := NewBannedList(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := empty.Match("password"); ok {
		t.Error("empty list matched")
	}
}

// TestBannedRandomAgainstReference compares the index with brute force on
// small random lists over a small alphabet, where near misses (one edit at
// every position, at either end of a term or of the password) are common.
func TestBannedRandomAgainstReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	word := func(alpha string, lo, hi int) string {
		b := make([]byte, lo+rng.IntN(hi-lo+1))
		for i := range b {
			b[i] = alpha[rng.IntN(len(alpha))]
		}
		return string(b)
	}
	hits := 0
	for round := range 300 {
		terms := make([]string, 1+rng.IntN(6))
		for i := range terms {
			terms[i] = word("abcd", 4, 4+round%9)
		}
		bl, err := NewBannedList(terms)
		if err != nil {
			t.Fatal(err)
		}
		for range 40 {
			pw := word("abcde", 0, 16)
			_, got := bl.Match(pw)
			want := refBanned(terms, pw) != ""
			if got != want {
				t.Fatalf("terms %q: Match(%q) = %v, reference %v", terms, pw, got, want)
			}
			if got {
				hits++
			}
		}
	}
	if hits == 0 || hits == 300*40 {
		t.Fatalf("hits = %d: the test does not exercise both outcomes", hits)
	}
}
