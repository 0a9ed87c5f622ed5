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
	e := p.Banned.scanBanned(password, p.BannedMode)
	if p.BannedMode != BannedEntra {
		if len(e.found) == 0 {
			return Violation{}, false
		}
		ms, more := e.matches(p.Banned, nil, nil)
		return Violation{Rule: RuleBanned, Token: ms[0].Term, Matches: ms, MoreMatches: more, Mode: BannedStrict,
			Message: "banned: contains " + quoteTerms(ms, more)}, true
	}
	names := nameTerms(p, u)
	nameHit := e.addNames(names)
	if len(e.found) == 0 {
		return Violation{}, false
	}
	score, cover := e.score()
	if score >= EntraScoreNeeded && !nameHit {
		return Violation{}, false
	}
	ms, more := e.matches(p.Banned, names, cover)
	msg := "banned: contains " + quoteTerms(ms, more)
	if score < EntraScoreNeeded {
		more := EntraScoreNeeded - score
		msg += fmt.Sprintf("; add %d more character%s", more, plural(more))
	} else {
		msg += "; a name may not be part of the password"
	}
	return Violation{Rule: RuleBanned, Token: ms[0].Term, Matches: ms, MoreMatches: more, Mode: BannedEntra,
		Score: score, ScoreNeeded: EntraScoreNeeded, Message: msg}, true
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
