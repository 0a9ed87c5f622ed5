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

// BannedReading is how the banned-list check reads a password, whether it
// refuses it or not: the mode, the terms found (up to MaxNamedMatches, and
// a lower bound on the others) and, in entra mode, the score.
type BannedReading struct {
	Mode        BannedMode
	Refused     bool
	Matches     []BannedMatch
	MoreMatches int
	// Entra mode: the password's points, the points it needs
	// (EntraScoreNeeded), and whether a name term matched (which refuses
	// whatever the score).
	Score, ScoreNeeded int
	NameMatched        bool
}

// ReadBanned reads password with p's banned list (in entra mode with the
// user's names and the tenant name too), as Check does.
func ReadBanned(p Policy, u User, password string) BannedReading {
	mode := p.BannedMode
	if mode != BannedEntra {
		mode = BannedStrict
	}
	e := p.Banned.scanBanned(password, mode)
	r := BannedReading{Mode: mode}
	if mode == BannedStrict {
		r.Refused = len(e.found) > 0
		r.Matches, r.MoreMatches = e.matches(p.Banned, nil, nil)
		return r
	}
	names := nameTerms(p, u)
	r.NameMatched = e.addNames(names)
	var cover []spanTerm
	r.Score, cover = e.score()
	r.ScoreNeeded = EntraScoreNeeded
	r.Refused = len(e.found) > 0 && (r.Score < EntraScoreNeeded || r.NameMatched)
	r.Matches, r.MoreMatches = e.matches(p.Banned, names, cover)
	return r
}

// checkBanned applies the banned list in p's mode. It returns the violation
// and whether there is one.
func checkBanned(p Policy, u User, password string) (Violation, bool) {
	r := ReadBanned(p, u, password)
	if !r.Refused {
		return Violation{}, false
	}
	v := Violation{Rule: RuleBanned, Token: r.Matches[0].Term, Matches: r.Matches, MoreMatches: r.MoreMatches,
		Mode: r.Mode, Message: "banned: contains " + quoteTerms(r.Matches, r.MoreMatches)}
	if r.Mode != BannedEntra {
		return v, true
	}
	v.Score, v.ScoreNeeded = r.Score, r.ScoreNeeded
	if r.Score < r.ScoreNeeded {
		more := r.ScoreNeeded - r.Score
		v.Message += fmt.Sprintf("; add %d more character%s", more, plural(more))
	} else {
		v.Message += "; a name may not be part of the password"
	}
	return v, true
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// MaxNamedMatches is the most terms a banned violation names; the others
// are counted in Violation.MoreMatches, as a lower bound. A large list can
// match hundreds of terms in one password, and a result's message and
// fields are bounded: strict mode stops looking at the first term past
// MaxNamedMatches, and entra mode looks past it only for the score.
const MaxNamedMatches = 8

// quoteTerms is "'a'", "'a' and 'b'", "'a', 'b' and 'c'", or with more
// terms not named, "'a', 'b' and more" (how many more is not known: strict
// mode stops looking).
func quoteTerms(ms []BannedMatch, more int) string {
	q := make([]string, len(ms))
	for i, m := range ms {
		q[i] = "'" + m.Term + "'"
	}
	if more > 0 {
		q = append(q, "more")
	}
	if len(q) == 1 {
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " and " + q[len(q)-1]
}
