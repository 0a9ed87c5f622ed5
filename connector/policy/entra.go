package policy

import (
	"fmt"
	"slices"
	"strings"
)

// BannedMode is how the banned list decides.
type BannedMode string

// The banned-list modes.
const (
	// BannedStrict refuses a password when any substring of it is within
	// one edit of a term (the default).
	BannedStrict BannedMode = "strict"
	// BannedEntra decides as Microsoft Entra Password Protection documents:
	// normalise, fuzzy-match terms at edit distance 1, substring-match the
	// user's first and last names and the tenant name, then score (each
	// term found 1 point, each other character 1 point, EntraScoreNeeded to
	// pass). See docs/operating.md for the choices made where Microsoft's
	// text is ambiguous.
	BannedEntra BannedMode = "entra"
)

// Entra's documented limits and threshold.
const (
	EntraScoreNeeded     = 5
	EntraMinTermLength   = 4
	EntraMaxTermLength   = 16
	EntraMaxCustomTerms  = 1000
	entraMinNameTermRune = 4
)

// ParseBannedMode parses "strict" or "entra"; "" is strict.
func ParseBannedMode(s string) (BannedMode, error) {
	switch BannedMode(s) {
	case "", BannedStrict:
		return BannedStrict, nil
	case BannedEntra:
		return BannedEntra, nil
	}
	return "", fmt.Errorf("policy: banned mode %q: want strict or entra", s)
}

// BannedMatch is one matched term, named in a banned violation.
type BannedMatch struct {
	Term string   `json:"term"`
	How  MatchHow `json:"how"`
	// Name is true for the user's first or last name or the tenant name
	// (entra mode), matched as a substring after normalisation.
	Name bool `json:"name,omitempty"`
}

// nameTerms are the entra-mode substring terms: the first and last names
// and the tenant name, normalised, of at least four characters.
func nameTerms(p Policy, u User) []string {
	var out []string
	for _, t := range []string{u.FirstName, u.LastName, p.TenantName} {
		t = strings.TrimSpace(t)
		if len([]rune(t)) < entraMinNameTermRune || slices.Contains(out, t) {
			continue
		}
		out = append(out, t)
	}
	return out
}

// checkBanned applies the banned list in p's mode. It returns the violation
// and whether there is one.
func checkBanned(p Policy, u User, password string) (Violation, bool) {
	hits := p.Banned.MatchAll(password)
	if p.BannedMode != BannedEntra {
		if len(hits) == 0 {
			return Violation{}, false
		}
		ms := distinctMatches(hits)
		return Violation{Rule: RuleBanned, Token: ms[0].Term, Matches: ms, Mode: BannedStrict,
			Message: "banned: contains " + quoteTerms(ms)}, true
	}
	norm := normalizeRunes(nil, password)
	nameHit := false
	for _, t := range nameTerms(p, u) {
		tn := normalizeRunes(nil, t)
		for a := 0; a+len(tn) <= len(norm); a++ {
			if slices.Equal(norm[a:a+len(tn)], tn) {
				how := MatchNormalized
				if strings.EqualFold(string([]rune(password)[a:a+len(tn)]), t) {
					how = MatchExact
				}
				hits = append(hits, BannedHit{Term: t, Start: a, End: a + len(tn), How: how, name: true})
				nameHit = true
			}
		}
	}
	if len(hits) == 0 {
		return Violation{}, false
	}
	score := entraScore(len(norm), hits)
	if score >= EntraScoreNeeded && !nameHit {
		return Violation{}, false
	}
	ms := distinctMatches(hits)
	msg := "banned: contains " + quoteTerms(ms)
	if score < EntraScoreNeeded {
		more := EntraScoreNeeded - score
		msg += fmt.Sprintf("; add %d more character%s", more, plural(more))
	} else {
		msg += "; a name may not be part of the password"
	}
	return Violation{Rule: RuleBanned, Token: ms[0].Term, Matches: ms, Mode: BannedEntra,
		Score: score, ScoreNeeded: EntraScoreNeeded, Message: msg}, true
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// entraScore is the lowest score of any reading of a normalised password of
// n runes as matches and other characters: each match 1 point, each other
// character 1 point. Matches may not overlap. A term's one-edit matches are
// not used where the same term matches at distance 0 over any of the same
// characters (so "blank1" is [blank] + [1], as in Microsoft's examples, not
// one fuzzy "blank").
func entraScore(n int, hits []BannedHit) int {
	var exact map[string][]int // term -> indexes of its distance-0 hits
	for i, h := range hits {
		if h.How != MatchOneEdit {
			if exact == nil {
				exact = map[string][]int{}
			}
			exact[h.Term] = append(exact[h.Term], i)
		}
	}
	best := make([]int, n+1) // best[i]: the lowest score of runes [0,i)
	for i := 1; i <= n; i++ {
		best[i] = best[i-1] + 1
	}
	byEnd := make([][]int32, n+1) // hits by end
	for i, h := range hits {
		byEnd[h.End] = append(byEnd[h.End], int32(i))
	}
	for i := 1; i <= n; i++ {
		best[i] = min(best[i], best[i-1]+1)
		for _, k := range byEnd[i] {
			h := hits[k]
			if h.How == MatchOneEdit && slices.ContainsFunc(exact[h.Term], func(j int) bool {
				return hits[j].Start < h.End && h.Start < hits[j].End
			}) {
				continue
			}
			best[i] = min(best[i], best[h.Start]+1)
		}
	}
	return best[n]
}

// distinctMatches names each term once, in order of its first match, with
// the closest way it matched (exact before normalized before one_edit).
func distinctMatches(hits []BannedHit) []BannedMatch {
	rank := map[MatchHow]int{MatchExact: 0, MatchNormalized: 1, MatchOneEdit: 2}
	type tk struct {
		id   int
		name string // the term, for a name term
	}
	at := make(map[tk]int, len(hits))
	var ms []BannedMatch
	for _, h := range hits {
		k := tk{id: h.id}
		if h.name {
			k = tk{id: -1, name: h.Term}
		}
		i, ok := at[k]
		if !ok {
			at[k] = len(ms)
			ms = append(ms, BannedMatch{Term: h.Term, How: h.How, Name: h.name})
			continue
		}
		if rank[h.How] < rank[ms[i].How] {
			ms[i].How = h.How
		}
	}
	return ms
}

// quoteTerms is "'a'", "'a' and 'b'" or "'a', 'b' and 'c'".
func quoteTerms(ms []BannedMatch) string {
	q := make([]string, len(ms))
	for i, m := range ms {
		q[i] = "'" + m.Term + "'"
	}
	if len(q) == 1 {
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " and " + q[len(q)-1]
}
