package policy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Banned-term length bounds, in runes after normalisation. Entra's custom
// banned list takes 4 to 16 characters; we allow longer terms, which only
// cost query time when present.
const (
	MinBannedTermLength = 4
	MaxBannedTermLength = 63
)

// ErrBannedTerm is returned for a term the list cannot hold.
var ErrBannedTerm = errors.New("policy: invalid banned term")

// BannedList is an immutable banned-word list with Entra-style matching: the
// password and the terms are normalised (NormalizeBanned), and the password
// is refused when any substring of it is within Levenshtein distance 1 of a
// term (one character inserted, deleted or substituted).
//
// Index: a symmetric-delete index. For every term t it stores the key t and
// each one-character deletion of t, as 64-bit hashes in one open-addressing
// table of uint64 slots (32-bit fingerprint, 32-bit term id). A substring s
// is within distance 1 of t only if {s} plus s's deletions meets t's keys, so
// a check hashes every password substring of a possible length (with rolling
// hashes, O(1) each) and its interior deletions (deletions at either end are
// shorter substrings, looked up anyway), probes the table, and verifies each
// fingerprint hit against the term itself. With terms of up to L runes and a
// password of n, that is O(n*L*L) probes and no allocation beyond two small
// buffers. Before probing the table, which is far too big for any cache, a
// key's first and last four runes are checked in a small bitmap of those of
// every key (the gate; see gateIndex): a substring far from every term
// usually fails there, without a memory miss. Substrings holding two runes
// that no term uses are skipped, and with one such rune only its deletion is
// probed (exact: no match is lost).
// A BannedList is safe for concurrent use.
//
// Matching inside the password is strict: a 4-character term also refuses
// every password containing one of its 3-character deletions. Entra softens
// this with a points score (a password passes with 5 points, each match
// counting 1); this list does not, so keep very short terms out of a large
// list.
type BannedList struct {
	slots  []uint64 // one per distinct key: see insert; 0 = empty
	gate   []uint64 // bitmap of the keys' first and last four runes: see gateIndex
	gshift uint
	mask   uint64
	groups []group  // keys shared by several terms, plus a sentinel
	gids   []uint32 // group g's term ids are gids[groups[g].start:groups[g+1].start]
	// The terms as given, each after a byte that holds its length. A
	// term's id is the offset of its length byte, so that verifying a
	// match reads one place in memory (see termBytes).
	blob   []byte
	n      int // how many terms
	minLen int // shortest and longest normalised term, in runes
	maxLen int
	// The runes that occur in some normalised term. A substring with two
	// runes outside this set is never within distance 1 of a term, and with
	// one, only its deletion can be: Match skips the rest (exact pruning).
	ascii [utf8.RuneSelf]bool
	other map[rune]struct{}
}

func (b *BannedList) known(r rune) bool {
	if r < utf8.RuneSelf {
		return b.ascii[r]
	}
	_, ok := b.other[r]
	return ok
}

// NormalizeBanned returns s as the banned-list matcher sees it: lower case,
// with common substitutions undone (0->o, 1->l, 3->e, 4->a, 5->s, 7->t,
// $->s, @->a, !->i, |->l, +->t). It maps rune to rune.
func NormalizeBanned(s string) string { return string(normalizeRunes(nil, s)) }

var substitutions = func() (t [utf8.RuneSelf]rune) {
	for i := range t {
		t[i] = rune(i)
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = c + 'a' - 'A'
	}
	for _, p := range []string{"0o", "1l", "3e", "4a", "5s", "7t", "$s", "@a", "!i", "|l", "+t"} {
		t[p[0]] = rune(p[1])
	}
	return t
}()

func normalizeRune(r rune) rune {
	if r < utf8.RuneSelf {
		return substitutions[r]
	}
	return unicode.ToLower(r)
}

func normalizeRunes(dst []rune, s string) []rune {
	for _, r := range s {
		dst = append(dst, normalizeRune(r))
	}
	return dst
}

// NewBannedList builds the index. Blank terms are skipped; terms that are
// shorter than MinBannedTermLength or longer than MaxBannedTermLength after
// normalisation are an error (wrapping ErrBannedTerm, naming the term's
// index). Terms that normalise alike are stored once.
func NewBannedList(terms []string) (*BannedList, error) {
	b := &BannedList{minLen: MaxBannedTermLength + 1}
	nKeys, err := b.addTerms(terms)
	if err != nil {
		return nil, err
	}
	b.fill(b.sortedKeys(nKeys))
	return b, nil
}

// addTerms stores the distinct terms and the runes they use, and returns
// how many keys they have (each term and each of its one-rune deletions).
func (b *BannedList) addTerms(terms []string) (nKeys int, err error) {
	seen := make(map[string]struct{}, len(terms))
	var norm []rune
	for i, t := range terms {
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}
		norm = normalizeRunes(norm[:0], t)
		if len(norm) < MinBannedTermLength || len(norm) > MaxBannedTermLength {
			return 0, fmt.Errorf("%w: term %d has %d characters, want %d to %d",
				ErrBannedTerm, i+1, len(norm), MinBannedTermLength, MaxBannedTermLength)
		}
		k := string(norm)
		if _, dup := seen[k]; dup {
			continue
		}
		seen[k] = struct{}{}
		if uint64(len(b.blob))+uint64(len(t))+1 > 1<<32-2 {
			return 0, fmt.Errorf("%w: list too large", ErrBannedTerm)
		}
		b.blob = append(b.blob, byte(len(t))) // at most 4*MaxBannedTermLength
		b.blob = append(b.blob, t...)
		b.n++
		b.addRunes(norm)
		b.minLen = min(b.minLen, len(norm))
		b.maxLen = max(b.maxLen, len(norm))
		nKeys += 1 + len(norm)
	}
	b.blob = slices.Clip(b.blob)
	return nKeys, nil
}

// addRunes records the runes of a normalised term (see known).
func (b *BannedList) addRunes(norm []rune) {
	for _, r := range norm {
		if r < utf8.RuneSelf {
			b.ascii[r] = true
		} else {
			if b.other == nil {
				b.other = map[rune]struct{}{}
			}
			b.other[r] = struct{}{}
		}
	}
}

// keyEntry is one (key, tag, term) of the index: see insert.
type keyEntry struct {
	key uint64
	tag uint32
	id  uint32
}

// sortedKeys returns every term's keys, sorted by key, so that a key shared
// by several terms becomes one slot (long runs of equal keys would
// otherwise make long probe sequences).
func (b *BannedList) sortedKeys(nKeys int) []keyEntry {
	entries := make([]keyEntry, 0, nKeys)
	var h hasher
	var norm []rune
	for id := 0; id < len(b.blob); id = b.next(id) {
		norm = normalizeRunes(norm[:0], b.term(id))
		h.reset(norm)
		m := len(norm)
		entries = append(entries, keyEntry{h.key(0, m, -1), 0, uint32(id)})
		for j := 0; j < m; j++ {
			entries = append(entries, keyEntry{h.key(0, m, j), uint32(j + 1), uint32(id)})
		}
	}
	slices.SortFunc(entries, func(x, y keyEntry) int {
		if x.key != y.key {
			if x.key < y.key {
				return -1
			}
			return 1
		}
		return int(x.id) - int(y.id)
	})
	return entries
}

// fill sizes the table for the sorted entries, builds the gate and inserts
// one slot per distinct key: a term's own slot, or a group's.
func (b *BannedList) fill(entries []keyEntry) {
	distinct := 0
	for i := range entries {
		if i == 0 || entries[i].key != entries[i-1].key {
			distinct++
		}
	}
	// Load factor at most 2/3.
	size := max(uint64(1)<<bits.Len64(uint64(distinct)*3/2+1), bucketSlots)
	b.slots = make([]uint64, size)
	b.mask = size - 1
	b.buildGate()
	for i := 0; i < len(entries); {
		j := i + 1
		for j < len(entries) && entries[j].key == entries[i].key {
			j++
		}
		if run := entries[i:j]; len(run) == 1 {
			b.insert(run[0].key, int(run[0].tag), run[0].id+1)
		} else {
			b.insertGroup(run)
		}
		i = j
	}
	b.groups = append(b.groups, group{start: uint32(len(b.gids))})
	b.groups = slices.Clip(b.groups)
	b.gids = slices.Clip(b.gids)
}

// insertGroup stores a run of entries that share one key as a group, and
// inserts the key's slot pointing at it. The terms whose whole key it is
// come first, so that a probe that wants only those reads no other.
func (b *BannedList) insertGroup(run []keyEntry) {
	g := group{start: uint32(len(b.gids))}
	for _, e := range run {
		if e.tag == 0 {
			b.gids = append(b.gids, e.id)
			g.nexact++
		}
	}
	for _, e := range run {
		if e.tag == 0 {
			continue
		}
		g.mask |= 1 << (e.tag - 1)
		// A term can have the key at several deletions ("aaaa"): once.
		if n := len(b.gids); n == int(g.start+g.nexact) || b.gids[n-1] != e.id {
			b.gids = append(b.gids, e.id)
		}
	}
	b.groups = append(b.groups, g)
	b.insert(run[0].key, tagGroup, uint32(len(b.groups)))
}

// ReadBannedList reads one term per line; blank lines and lines starting
// with '#' are skipped. Errors name the line number, never the content.
func ReadBannedList(r io.Reader) (*BannedList, error) {
	return ReadBannedListMode(r, BannedStrict)
}

// ReadBannedListMode is ReadBannedList for a banned mode. In BannedEntra a
// list is read as Entra's custom banned list: terms under
// EntraMinTermLength characters are ignored (Entra does not match them),
// terms over EntraMaxTermLength are refused, and so is a list of more than
// EntraMaxCustomTerms terms.
func ReadBannedListMode(r io.Reader, mode BannedMode) (*BannedList, error) {
	var terms []string
	lines := []int{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		t := strings.TrimSpace(sc.Text())
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		terms = append(terms, t)
		lines = append(lines, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("policy: reading banned list: %w", err)
	}
	if mode == BannedEntra {
		return entraTerms(terms, lines)
	}
	for i, t := range terms {
		if n := utf8.RuneCountInString(t); n < MinBannedTermLength || n > MaxBannedTermLength {
			return nil, fmt.Errorf("%w: line %d has %d characters, want %d to %d",
				ErrBannedTerm, lines[i], n, MinBannedTermLength, MaxBannedTermLength)
		}
	}
	return NewBannedList(terms)
}

// Len is the number of distinct terms.
func (b *BannedList) Len() int { return b.n }

// MemoryBytes is the memory the index holds (slots, gate, groups and
// terms).
func (b *BannedList) MemoryBytes() int {
	return cap(b.slots)*8 + cap(b.gate)*8 + cap(b.groups)*16 + cap(b.gids)*4 + cap(b.blob)
}

// termBytes is term id as given; term is the same as a string.
func (b *BannedList) termBytes(id int) []byte { return b.blob[id+1 : id+1+int(b.blob[id])] }
func (b *BannedList) term(id int) string      { return string(b.termBytes(id)) }

// next is the id of the term after term id in blob.
func (b *BannedList) next(id int) int { return id + 1 + int(b.blob[id]) }

// A slot holds fp<<39 | tag<<32 | payload: fp is the key's top 25 bits; tag
// is 0 for a whole term and i+1 for the term without its rune i, with payload
// the term id + 1; or tag is tagGroup, for a key several terms share, with
// payload the group index + 1.
const (
	fpShift  = 39
	tagShift = 32
	tagMask  = 0x7f
	tagGroup = tagMask
	// Probing starts at the first slot of the key's 64-byte bucket (8
	// slots), so that a probe almost always stays inside one cache line.
	bucketSlots = 8
)

// group is a key shared by several terms: how many of them have it as the
// whole term (the first nexact of its ids) and at which deletion positions
// the others do (mask bit i: without rune i).
type group struct {
	mask   uint64
	start  uint32
	nexact uint32
}

// The gate is a one-bit-per-gram hashed bitmap of the first four and the
// last four runes of every key (of the whole key when it has three). A key
// whose first or last four runes are not in it is not in the table, and the
// gate is small enough (gateBitsPerTerm bits a term) to stay in cache, where
// the table is not: Match checks the gate before probing the table, which
// rules out most substrings and deletions that are far from every term
// without a memory miss.
const (
	gateBitsPerTerm = 8
	gateMinBits     = 1 << 12
	gateMaxBits     = 1 << 26
	gateSuffix      = 0xA0761D6478BD642F // decorrelates suffix grams from prefix grams
)

// gateIndex is the bitmap bit of gram hash g (from hasher.key), as a prefix
// or a suffix.
func (b *BannedList) gateIndex(g uint64, suffix bool) uint64 {
	if suffix {
		g = (g ^ gateSuffix) * 0x9E3779B97F4A7C15
	}
	return g >> b.gshift
}

func (b *BannedList) gateSet(g uint64, suffix bool) {
	i := b.gateIndex(g, suffix)
	b.gate[i>>6] |= 1 << (i & 63)
}

func (b *BannedList) gateHas(g uint64, suffix bool) bool {
	i := b.gateIndex(g, suffix)
	return b.gate[i>>6]&(1<<(i&63)) != 0
}

// buildGate fills the gate with the grams of every key of every term.
func (b *BannedList) buildGate() {
	size := uint64(gateMinBits)
	for size < uint64(b.n)*gateBitsPerTerm && size < gateMaxBits {
		size <<= 1
	}
	b.gate = make([]uint64, size/64)
	b.gshift = uint(64 - bits.TrailingZeros64(size))
	var h hasher
	var norm []rune
	for id := 0; id < len(b.blob); id = b.next(id) {
		norm = normalizeRunes(norm[:0], b.term(id))
		h.reset(norm)
		m := len(norm)
		for j := -1; j < m; j++ {
			if m == 4 && j >= 0 { // a three-rune key: its own gram
				b.gateSet(h.key(0, 4, j), false)
				b.gateSet(h.key(0, 4, j), true)
				continue
			}
			if j < 0 || j >= 4 {
				b.gateSet(h.key(0, 4, -1), false)
			} else {
				b.gateSet(h.key(0, 5, j), false)
			}
			if j < 0 || m-1-j >= 4 {
				b.gateSet(h.key(m-4, m, -1), true)
			} else {
				b.gateSet(h.key(m-5, m, j), true)
			}
		}
	}
}

func (b *BannedList) insert(k uint64, tag int, payload uint32) {
	e := (k>>fpShift)<<fpShift | uint64(tag)<<tagShift | uint64(payload)
	for i := k & b.mask &^ (bucketSlots - 1); ; i = (i + 1) & b.mask {
		if b.slots[i] == 0 {
			b.slots[i] = e
			return
		}
	}
}

// Match reports whether password contains a substring within edit distance 1
// of a banned term, after normalisation, and returns that term as listed.
// Longer matching substrings are preferred; among equals, the leftmost.
func (b *BannedList) Match(password string) (string, bool) {
	if b == nil || b.Len() == 0 {
		return "", false
	}
	var buf [64]rune
	return b.scanWith(normalizeRunes(buf[:0], password), scanOpts{
		stop: func(int, int, int, []rune) bool { return true },
	})
}

// scanOpts are a scan's callbacks and modes: see matcher.
type scanOpts struct {
	want       func(id, a, m int, whole bool) bool
	stop       func(id, a, m int, t []rune) bool
	exhaustive bool
}

// scanWith runs one scan of the normalised password p and returns the
// match that stop ended it on, if any.
func (b *BannedList) scanWith(p []rune, o scanOpts) (string, bool) {
	// The buffers live here, on the stack, for passwords of up to 64 runes;
	// the matcher only holds slices of them.
	var fbuf [2 * 65]int32
	var gbuf [8 * 65]bool
	var h hasher
	mr := matcher{b: b, h: &h, p: p, want: o.want, stop: o.stop, exhaustive: o.exhaustive}
	h.reset(p)
	mr.foreign, mr.last = b.foreignRunes(p, fbuf[:])
	mr.pre, mr.suf = b.gateGrams(&h, len(p), gbuf[:])
	return mr.scan()
}

// MatchHow is how a term matched: exact (case aside), after normalisation,
// or within one edit after normalisation.
type MatchHow string

// The MatchHow values, part of the public API (result field matched_by).
const (
	MatchExact      MatchHow = "exact"
	MatchNormalized MatchHow = "normalized"
	MatchOneEdit    MatchHow = "one_edit"
)

// normTerm appends term id, normalised, to dst, without allocating.
func (b *BannedList) normTerm(id int, dst []rune) []rune {
	for _, r := range string(b.termBytes(id)) {
		dst = append(dst, normalizeRune(r))
	}
	return dst
}

// foldEqual is strings.EqualFold of runes and UTF-8 bytes.
func foldEqual(rs []rune, t []byte) bool {
	i := 0
	for _, r := range string(t) {
		if i >= len(rs) || unicode.ToLower(rs[i]) != unicode.ToLower(r) {
			return false
		}
		i++
	}
	return i == len(rs)
}

// matcher is one Match call's state: the normalised password, its hashes,
// what the gate and the known runes say about its substrings, and the batch
// of probes not yet run.
type matcher struct {
	b *BannedList
	p []rune
	h *hasher
	// foreign[i] counts the runes before i that no term has; last[i] is the
	// index of the last such rune before i.
	foreign, last []int32
	// pre[d][a] is whether the gate has the first four runes of a key that
	// starts at a and lacks rune a+d (d = 0: lacks none of the four);
	// suf[d][e] the same for the last four runes of a key that ends at e and
	// lacks rune e-1-d.
	pre, suf [4][]bool
	q        probes
	// want, when set, is asked before a candidate term is verified (term
	// id, substring start and length, whether the probe was of the whole
	// substring) and says whether its match would tell the caller anything
	// new: verifying costs a read of the term, a cache miss. It is asked
	// first with id -1, before the probe's entries are read: whether any
	// term's match there could.
	want func(id, a, m int, whole bool) bool
	// stop is told of each verified match (term id, substring start and
	// length, the term normalised, valid only during the call) and says
	// whether to end the scan.
	stop func(id, a, m int, t []rune) bool
	// exhaustive is set when stop never ends the scan: probes are then
	// batched across substring lengths.
	exhaustive bool
}

// foreignRunes fills matcher.foreign and matcher.last for p, in fbuf when it
// is large enough.
func (b *BannedList) foreignRunes(p []rune, fbuf []int32) (foreign, last []int32) {
	n := len(p)
	if n+1 <= len(fbuf)/2 {
		foreign, last = fbuf[:n+1], fbuf[n+1:2*(n+1)]
	} else {
		foreign, last = make([]int32, n+1), make([]int32, n+1)
	}
	last[0] = -1
	for i, r := range p {
		foreign[i+1], last[i+1] = foreign[i], last[i]
		if !b.known(r) {
			foreign[i+1]++
			last[i+1] = int32(i)
		}
	}
	return foreign, last
}

// gateGrams fills matcher.pre and matcher.suf for a password of n runes
// hashed by h, in gbuf when it is large enough.
func (b *BannedList) gateGrams(h *hasher, n int, gbuf []bool) (pre, suf [4][]bool) {
	var gs []bool
	if 8*(n+1) <= len(gbuf) {
		gs = gbuf[:8*(n+1)]
	} else {
		gs = make([]bool, 8*(n+1))
	}
	for d := range 4 {
		pre[d] = gs[2*d*(n+1) : (2*d+1)*(n+1)]
		suf[d] = gs[(2*d+1)*(n+1) : (2*d+2)*(n+1)]
	}
	for a := 0; a+4 <= n; a++ {
		pre[0][a] = b.gateHas(h.key(a, a+4, -1), false)
		suf[0][a+4] = b.gateHas(h.key(a, a+4, -1), true)
		if a+5 <= n {
			for d := 1; d < 4; d++ {
				pre[d][a] = b.gateHas(h.key(a, a+5, a+d), false)
				suf[d][a+5] = b.gateHas(h.key(a, a+5, a+4-d), true)
			}
		}
	}
	return pre, suf
}

// scan probes every substring of a possible length, longest first, and
// within a length from the left; the first verified match ends it.
func (mr *matcher) scan() (string, bool) {
	b, n := mr.b, len(mr.p)
	for m := min(n, b.maxLen+1); m >= b.minLen-1 && m >= 1; m-- {
		for a := 0; a+m <= n; a++ {
			switch mr.foreign[a+m] - mr.foreign[a] {
			case 0:
			case 1:
				// Only deleting the foreign rune can match; at either end,
				// that is a shorter substring, probed on its own.
				if j := int(mr.last[a+m]); m >= b.minLen && j > a && j < a+m-1 {
					if t, ok := mr.add(a, m, j); ok {
						return t, true
					}
				}
				continue
			default:
				continue
			}
			if m <= b.maxLen {
				if t, ok := mr.add(a, m, -1); ok {
					return t, true
				}
			}
			if m < b.minLen {
				continue // its deletions are shorter than every key
			}
			// A deletion more than four runes from both ends leaves the
			// key's first and last four runes as they are: when the gate has
			// not both, skip to the last four.
			skipMiddle := !mr.pre[0][a] || !mr.suf[0][a+m]
			for j := a + 1; j < a+m-1; j++ {
				if skipMiddle && j-a >= 4 && a+m-1-j >= 4 {
					j = a + m - 5
					continue
				}
				if t, ok := mr.add(a, m, j); ok {
					return t, true
				}
			}
		}
		if mr.exhaustive {
			continue // batch across lengths: nothing ends the scan early
		}
		if t, ok := mr.flush(); ok {
			return t, true
		}
	}
	return mr.flush()
}

// pass is false when the key of runes [a,a+m) without rune j (j >= 0) is
// certainly not in the table.
func (mr *matcher) pass(a, m, j int) bool {
	l, e := m, a+m
	if j >= 0 {
		l--
	}
	if l == 3 {
		g := mr.h.key(a, e, j)
		return mr.b.gateHas(g, false) && mr.b.gateHas(g, true)
	}
	dp, ds := 0, 0
	if j >= 0 && j-a < 4 {
		dp = j - a
	}
	if j >= 0 && e-1-j < 4 {
		ds = e - 1 - j
	}
	return mr.pre[dp][a] && mr.suf[ds][e]
}

// add queues the probe of the key of runes [a,a+m) without rune j (j >= 0)
// unless the gate rules it out; a full batch is run first, and its match, if
// any, returned.
func (mr *matcher) add(a, m, j int) (string, bool) {
	if !mr.pass(a, m, j) {
		return "", false
	}
	k, del := mr.h.key(a, a+m, j), -1
	if j >= 0 {
		del = j - a
	}
	if mr.q.add(k, a, m, del) {
		return "", false
	}
	if t, ok := mr.flush(); ok {
		return t, true
	}
	mr.q.add(k, a, m, del)
	return "", false
}

// flush runs the queued probes and returns the first verified match.
func (mr *matcher) flush() (string, bool) {
	if id, ok := mr.run(); ok {
		return mr.b.term(id), true
	}
	return "", false
}

// probes is a batch of table lookups. Loading all their first slots in one
// tight loop lets the CPU overlap the cache misses, which dominate a check
// against a large list.
type probes struct {
	n     int
	key   [256]uint64
	first [256]uint64
	pos   [256][3]int32 // substring start, length, deleted rune (relative) or -1
}

func (q *probes) add(k uint64, a, m, del int) bool {
	if q.n == len(q.key) {
		return false
	}
	q.key[q.n] = k
	q.pos[q.n] = [3]int32{int32(a), int32(m), int32(del)}
	q.n++
	return true
}

// run probes the batch in order and empties it; it returns the first
// verified match that stop accepts. A check against a large list is bound
// by memory reads: the first slots of all the batch's probes are read in one
// tight loop, which lets the CPU overlap those cache misses.
func (mr *matcher) run() (int, bool) {
	b, q := mr.b, &mr.q
	n := q.n
	q.n = 0
	for i := range n {
		q.first[i] = b.slots[q.key[i]&b.mask&^(bucketSlots-1)]
	}
	var tbuf [MaxBannedTermLength + 1]rune
	for i := range n {
		if q.first[i] == 0 || mr.want != nil && !mr.want(-1, int(q.pos[i][0]), int(q.pos[i][1]), q.pos[i][2] < 0) {
			continue
		}
		if id, ok := mr.lookup(q.key[i], q.pos[i], tbuf[:0]); ok {
			return id, true
		}
	}
	return 0, false
}

// lookup probes key, the hash of the substring at pos (start, length, and
// the deleted rune relative to the start, or -1), and verifies the entries
// that can mean distance 1. An entry for s
// without rune j on a term without its rune i is distance 1 only when i == j
// (one substitution); when i != j, any true match is also found by another
// probe (see Match), so such entries are skipped unverified.
func (mr *matcher) lookup(k uint64, pos [3]int32, tbuf []rune) (int, bool) {
	b, del := mr.b, int(pos[2])
	fp := k >> fpShift
	for i := k & b.mask &^ (bucketSlots - 1); ; i = (i + 1) & b.mask {
		e := b.slots[i]
		if e == 0 {
			return 0, false
		}
		if e>>fpShift != fp {
			continue
		}
		tag := int(e>>tagShift) & tagMask
		if tag == tagGroup {
			g := &b.groups[uint32(e)-1]
			end := b.groups[uint32(e)].start
			if del >= 0 && g.mask&(1<<del) == 0 {
				end = g.start + g.nexact // only the terms whose whole key it is
			}
			for _, id := range b.gids[g.start:end] {
				if mr.candidate(int(id), pos, tbuf) {
					return int(id), true
				}
			}
			continue
		}
		if tag != 0 && del >= 0 && tag != del+1 {
			continue
		}
		if id := int(uint32(e)) - 1; mr.candidate(id, pos, tbuf) {
			return id, true
		}
	}
}

// candidate handles term id, found by the probe at pos: unless want rules
// it out, it verifies that the substring is within one edit of the term
// and tells stop, whose answer it returns.
func (mr *matcher) candidate(id int, pos [3]int32, tbuf []rune) bool {
	a, m := int(pos[0]), int(pos[1])
	if mr.want != nil && !mr.want(id, a, m, pos[2] < 0) {
		return false
	}
	t := mr.b.normTerm(id, tbuf)
	if !withinOne(mr.p[a:a+m], t) {
		return false
	}
	return mr.stop(id, a, m, t)
}

// withinOne reports whether the Levenshtein distance of a and b is at most 1.
func withinOne(a, b []rune) bool {
	if len(a) > len(b) {
		a, b = b, a
	}
	if len(b)-len(a) > 1 {
		return false
	}
	i := 0
	for i < len(a) && a[i] == b[i] {
		i++
	}
	if i == len(a) {
		return true // equal, or b is a plus one trailing rune
	}
	if len(a) == len(b) {
		return slices.Equal(a[i+1:], b[i+1:]) // one substitution
	}
	return slices.Equal(a[i:], b[i+1:]) // one insertion into a
}

// hasher gives O(1) polynomial hashes (mod 2^64) of any substring of the
// runes it was reset with, optionally with one rune deleted.
type hasher struct {
	pre [65]uint64 // pre[i] = hash of the first i runes
	pow [65]uint64
	big []uint64 // pre and pow for inputs longer than 64 runes
	p   []uint64
	w   []uint64
}

const hashBase = 0x9E3779B97F4A7C15 | 1

func (h *hasher) reset(r []rune) {
	n := len(r)
	if n+1 <= len(h.pre) {
		h.p, h.w = h.pre[:n+1], h.pow[:n+1]
	} else {
		if cap(h.big) < 2*(n+1) {
			h.big = make([]uint64, 2*(n+1))
		}
		h.p, h.w = h.big[:n+1], h.big[n+1:2*(n+1)]
	}
	h.p[0], h.w[0] = 0, 1
	for i, c := range r {
		h.p[i+1] = h.p[i]*hashBase + uint64(uint32(c)) + 1
		h.w[i+1] = h.w[i] * hashBase
	}
}

func (h *hasher) sub(a, b int) uint64 { return h.p[b] - h.p[a]*h.w[b-a] }

// key is the table key of runes [a,b), without rune del when del >= 0.
func (h *hasher) key(a, b, del int) uint64 {
	var v uint64
	n := b - a
	if del < 0 {
		v = h.sub(a, b)
	} else {
		v = h.sub(a, del)*h.w[b-del-1] + h.sub(del+1, b)
		n--
	}
	return mix(v ^ uint64(n)*0xD6E8FEB86659FD93)
}

// mix is the murmur3 64-bit finaliser.
func mix(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

// entraTerms builds an entra-mode list from terms read at lines.
func entraTerms(terms []string, lines []int) (*BannedList, error) {
	kept := terms[:0]
	for i, t := range terms {
		n := utf8.RuneCountInString(t)
		if n < EntraMinTermLength {
			continue
		}
		if n > EntraMaxTermLength {
			return nil, fmt.Errorf("%w: line %d has %d characters; in entra mode a term has %d to %d (shorter ones are ignored)",
				ErrBannedTerm, lines[i], n, EntraMinTermLength, EntraMaxTermLength)
		}
		kept = append(kept, t)
	}
	if len(kept) > EntraMaxCustomTerms {
		return nil, fmt.Errorf("%w: %d terms; in entra mode the list holds at most %d, as Entra's custom banned list does",
			ErrBannedTerm, len(kept), EntraMaxCustomTerms)
	}
	return NewBannedList(kept)
}
