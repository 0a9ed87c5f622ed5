package policy

import (
	"slices"
)

// bannedScan is what a banned-list check needs to know of one password:
// which terms were found and, in entra mode, which spans of the normalised
// password a term matches, with one term for each. It is not every place
// every term matches: a large list matches thousands of (term, place) pairs
// in a long password, and verifying each costs a read of the term from
// memory. The scan verifies a candidate only when it can change the answer
// (see want):
//   - a term not yet found, while fewer than MaxNamedMatches+1 are (the
//     names; past that, Violation.MoreMatches is a lower bound, and strict
//     mode ends the scan);
//   - in entra mode, a span no term has matched yet (the score).
//
// In entra mode a one-edit match is not used where the same term is at
// distance 0 over any of the same characters ("blank1" is [blank] + [1], as
// in Microsoft's examples): once a term is read to verify it, that is a
// comparison of runes in the password (see counts), with no further read.
type bannedScan struct {
	entra bool
	p     []rune
	raw   []rune
	valid []uint64    // valid[a] bit m-1: runes [a,a+m) are matched
	spans []spanTerm  // one per valid span: the first term that matched it
	found []foundTerm // the distinct terms verified, in the order found
}

// spanTerm is a term (a list term id, or with name, an index into the name
// terms) matched at runes [a,a+m).
type spanTerm struct {
	a, m int32
	id   uint32
	name bool
}

// foundTerm is a term found, and the first rune of its leftmost match seen.
type foundTerm struct {
	id    uint32
	name  bool
	start int32
}

// scanBanned runs the scan of password for mode (see bannedScan).
func (b *BannedList) scanBanned(password string, mode BannedMode) *bannedScan {
	e := &bannedScan{entra: mode == BannedEntra, p: normalizeRunes(nil, password), raw: []rune(password)}
	e.valid = make([]uint64, len(e.p)+1)
	if b == nil || b.Len() == 0 {
		return e
	}
	// Strict mode ends the scan at the first term past those it names; so
	// it probes longer substrings first, one length at a time.
	b.scanWith(e.p, scanOpts{want: e.want, stop: e.verified, exhaustive: e.entra})
	return e
}

// want reports whether a match of term id (-1: any term) at runes [a,a+m)
// (and, for a whole-substring probe, one rune longer at either end: see
// verified) could add a span or a term to name.
func (e *bannedScan) want(id, a, m int, whole bool) bool {
	if len(e.found) <= MaxNamedMatches && (id < 0 || !e.isFound(id, false)) {
		return true
	}
	if !e.entra {
		return false
	}
	if e.open(a, m) {
		return true
	}
	return whole && (a > 0 && e.open(a-1, m+1) || a+m < len(e.p) && e.open(a, m+1))
}

// open reports whether no term has matched runes [a,a+m) yet.
func (e *bannedScan) open(a, m int) bool { return e.valid[a]&(1<<(m-1)) == 0 }

// verified records a match of term id (normalised: t) at runes [a,a+m),
// verified within one edit, and reports whether to end the scan. In entra
// mode the scan finds a substring whose edit is at one
// end of it as the substring without that end rune (see lookup), so the
// substrings one rune longer are checked here.
func (e *bannedScan) verified(id, a, m int, t []rune) bool {
	e.addFound(id, false, a)
	if !e.entra {
		return len(e.found) > MaxNamedMatches
	}
	for _, s := range [3][2]int{{a, m}, {a - 1, m + 1}, {a, m + 1}} {
		if s[0] >= 0 && s[0]+s[1] <= len(e.p) && e.open(s[0], s[1]) && e.counts(t, s[0], s[1]) {
			e.mark(spanTerm{a: int32(s[0]), m: int32(s[1]), id: uint32(id)})
		}
	}
	return false
}

// counts reports whether term t's match of runes [a,a+m) counts: they are
// t, or within one edit of it and t is not at distance 0 over any of them.
func (e *bannedScan) counts(t []rune, a, m int) bool {
	s := e.p[a : a+m]
	if slices.Equal(s, t) {
		return true
	}
	if !withinOne(s, t) {
		return false
	}
	for x := max(0, a-len(t)+1); x < a+m && x+len(t) <= len(e.p); x++ {
		if slices.Equal(e.p[x:x+len(t)], t) {
			return false
		}
	}
	return true
}

// mark makes s's span valid, unless it is already.
func (e *bannedScan) mark(s spanTerm) {
	if e.valid[s.a]&(1<<(s.m-1)) != 0 {
		return
	}
	e.valid[s.a] |= 1 << (s.m - 1)
	e.spans = append(e.spans, s)
}

// foundIndex is the index in found of the term (id, name), or -1.
func foundIndex(found []foundTerm, id uint32, name bool) int {
	return slices.IndexFunc(found, func(f foundTerm) bool { return f.id == id && f.name == name })
}

func (e *bannedScan) isFound(id int, name bool) bool {
	return foundIndex(e.found, uint32(id), name) >= 0
}

func (e *bannedScan) addFound(id int, name bool, a int) {
	i := foundIndex(e.found, uint32(id), name)
	if i < 0 {
		e.found = append(e.found, foundTerm{id: uint32(id), name: name, start: int32(a)})
		return
	}
	e.found[i].start = min(e.found[i].start, int32(a))
}

// addNames matches the name terms (normalised, as substrings) and reports
// whether any matched.
func (e *bannedScan) addNames(names []string) bool {
	hit := false
	for k, t := range names {
		tn := normalizeRunes(nil, t)
		for a := 0; a+len(tn) <= len(e.p); a++ {
			if slices.Equal(e.p[a:a+len(tn)], tn) {
				e.addFound(k, true, a)
				e.mark(spanTerm{a: int32(a), m: int32(len(tn)), id: uint32(k), name: true})
				hit = true
			}
		}
	}
	return hit
}

// score is the lowest score of any reading of the password as matched
// spans and other characters (each 1 point), and the spans of one such
// reading.
func (e *bannedScan) score() (int, []spanTerm) {
	n := len(e.p)
	best := make([]int, n+1) // best[i]: the lowest score of runes [0,i)
	from := make([]int, n+1) // the start of the last span in that reading, or i-1
	for i := 1; i <= n; i++ {
		best[i], from[i] = best[i-1]+1, i-1
		for a := max(0, i-64); a < i-1; a++ {
			if e.valid[a]&(1<<(i-a-1)) != 0 && best[a]+1 < best[i] {
				best[i], from[i] = best[a]+1, a
			}
		}
	}
	var cover []spanTerm
	for i := n; i > 0; i = from[i] {
		if a := from[i]; i-a > 1 {
			if k := slices.IndexFunc(e.spans, func(s spanTerm) bool { return int(s.a) == a && int(s.m) == i-a }); k >= 0 {
				cover = append(cover, e.spans[k])
			}
		}
	}
	return best[n], cover
}

// matches names up to MaxNamedMatches terms: those of the lowest-scoring
// reading first, then the others found; listed in order of their leftmost
// match seen. It returns how many other terms were found (a lower bound on
// the terms matched: see bannedScan).
func (e *bannedScan) matches(b *BannedList, names []string, cover []spanTerm) ([]BannedMatch, int) {
	var chosen []foundTerm
	pick := func(id uint32, name bool) {
		if len(chosen) == MaxNamedMatches || foundIndex(chosen, id, name) >= 0 {
			return
		}
		chosen = append(chosen, e.found[foundIndex(e.found, id, name)])
	}
	for _, s := range cover {
		pick(s.id, s.name)
	}
	for _, f := range e.found {
		pick(f.id, f.name)
	}
	slices.SortStableFunc(chosen, func(x, y foundTerm) int { return int(x.start - y.start) })
	ms := make([]BannedMatch, len(chosen))
	for i, f := range chosen {
		if f.name {
			ms[i] = BannedMatch{Term: names[f.id], How: e.nameHow(names[f.id]), Name: true}
		} else {
			ms[i] = BannedMatch{Term: b.term(int(f.id)), How: e.listHow(b, int(f.id))}
		}
	}
	return ms, len(e.found) - len(chosen)
}

// listHow is how list term id matched at its closest: exact (case aside)
// somewhere, after normalisation, or only within one edit.
func (e *bannedScan) listHow(b *BannedList, id int) MatchHow {
	var tbuf [MaxBannedTermLength + 1]rune
	t := b.normTerm(id, tbuf[:0])
	how := MatchOneEdit
	for x := 0; x+len(t) <= len(e.p); x++ {
		if !slices.Equal(e.p[x:x+len(t)], t) {
			continue
		}
		how = MatchNormalized
		if foldEqual(e.raw[x:x+len(t)], b.termBytes(id)) {
			return MatchExact
		}
	}
	return how
}

// nameHow is how a name term matched: exact (case aside) somewhere, or
// after normalisation.
func (e *bannedScan) nameHow(t string) MatchHow {
	n, tb := len([]rune(t)), []byte(t)
	for a := 0; a+n <= len(e.raw); a++ {
		if foldEqual(e.raw[a:a+n], tb) {
			return MatchExact
		}
	}
	return MatchNormalized
}
