package policy

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// Microsoft's worked examples are from "Eliminate bad passwords using
// Microsoft Entra Password Protection", section "How are passwords
// evaluated" (MicrosoftDocs/entra-docs,
// docs/identity/authentication/concept-password-ban-bad.md, commit
// 04af4fe4e1d2f5466e46228184469ac0789e567f).
func TestEntraMicrosoftExamples(t *testing.T) {
	tests := []struct {
		name      string
		terms     []string
		first     string
		tenant    string
		pw        string
		refused   bool
		score     int // checked when refused and > 0
		wantTerms []string
		wantHow   []MatchHow
	}{
		// Step 1, Normalization: "blank" banned, "Bl@nK" is rejected.
		{name: "normalization Bl@nK", terms: []string{"blank"}, pw: "Bl@nK", refused: true, score: 1,
			wantTerms: []string{"blank"}, wantHow: []MatchHow{MatchNormalized}},
		// Fuzzy matching: "abcdef" banned; abcdeg, abcdefg, abcde rejected.
		{name: "fuzzy abcdeg", terms: []string{"abcdef"}, pw: "abcdeg", refused: true, score: 1,
			wantTerms: []string{"abcdef"}, wantHow: []MatchHow{MatchOneEdit}},
		{name: "fuzzy abcdefg", terms: []string{"abcdef"}, pw: "abcdefg", refused: true, score: 2,
			wantTerms: []string{"abcdef"}, wantHow: []MatchHow{MatchExact}},
		{name: "fuzzy abcde", terms: []string{"abcdef"}, pw: "abcde", refused: true, score: 1,
			wantTerms: []string{"abcdef"}, wantHow: []MatchHow{MatchOneEdit}},
		// Substring matching: user Poll, "p0LL23fb" is rejected.
		{name: "substring Poll", first: "Poll", pw: "p0LL23fb", refused: true, score: 5,
			wantTerms: []string{"Poll"}, wantHow: []MatchHow{MatchNormalized}},
		// Score calculation: "contoso" and "blank" banned.
		{name: "score C0ntos0Blank12", terms: []string{"contoso", "blank"}, pw: "C0ntos0Blank12", refused: true, score: 4,
			wantTerms: []string{"contoso", "blank"}, wantHow: []MatchHow{MatchNormalized, MatchExact}},
		{name: "score ContoS0Bl@nkf9!", terms: []string{"contoso", "blank"}, pw: "ContoS0Bl@nkf9!", refused: false},
		// Issue 18's ordinary passwords, refused by strict mode.
		{name: "issue Fable9!xq", terms: []string{"blue"}, pw: "Fable9!xq", refused: false},
		{name: "issue mondon", terms: []string{"london"}, pw: "Amondon-2024", refused: false},
		// Our choices (docs/operating.md): a term found twice scores twice.
		{name: "twice short", terms: []string{"contoso"}, pw: "ContosoContoso", refused: true, score: 2,
			wantTerms: []string{"contoso"}, wantHow: []MatchHow{MatchExact}},
		{name: "twice long enough", terms: []string{"contoso"}, pw: "ContosoContoso123", refused: false},
		// Overlapping matches: the lowest-scoring reading counts.
		{name: "overlap", terms: []string{"blank", "lanky"}, pw: "blanky99", refused: true, score: 4,
			wantTerms: []string{"blank", "lanky"}, wantHow: []MatchHow{MatchExact, MatchExact}},
		// The expanded substitution table: 4->a.
		{name: "expanded table", terms: []string{"password"}, pw: "P4ssw0rd", refused: true, score: 1,
			wantTerms: []string{"password"}, wantHow: []MatchHow{MatchNormalized}},
		// The tenant name, when set, refuses like a user's name.
		{name: "tenant", tenant: "Contoso", pw: "xyzContoso2024!", refused: true, score: 9,
			wantTerms: []string{"Contoso"}, wantHow: []MatchHow{MatchExact}},
		{name: "long password one term", terms: []string{"contoso"}, pw: "Contoso-harbour-lights-7", refused: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bl, err := NewBannedList(tt.terms)
			if err != nil {
				t.Fatal(err)
			}
			p := Policy{Banned: bl, BannedMode: BannedEntra, TenantName: tt.tenant}
			vs, err := Check(p, User{FirstName: tt.first}, tt.pw)
			if err != nil {
				t.Fatal(err)
			}
			if (len(vs) > 0) != tt.refused {
				t.Fatalf("violations %+v, want refused=%v", vs, tt.refused)
			}
			if !tt.refused {
				return
			}
			v := vs[0]
			if v.Rule != RuleBanned || v.Mode != BannedEntra || v.ScoreNeeded != EntraScoreNeeded {
				t.Fatalf("violation %+v", v)
			}
			if tt.score > 0 && v.Score != tt.score {
				t.Errorf("score %d, want %d", v.Score, tt.score)
			}
			var terms []string
			var hows []MatchHow
			for _, m := range v.Matches {
				terms, hows = append(terms, m.Term), append(hows, m.How)
			}
			if !slices.Equal(terms, tt.wantTerms) || !slices.Equal(hows, tt.wantHow) {
				t.Errorf("matches %v %v, want %v %v", terms, hows, tt.wantTerms, tt.wantHow)
			}
			if strings.Contains(v.Message, tt.pw) && !strings.Contains(strings.Join(tt.wantTerms, " "), tt.pw) {
				t.Errorf("message %q holds the password", v.Message)
			}
		})
	}
}

func TestEntraMessage(t *testing.T) {
	bl, _ := NewBannedList([]string{"contoso", "blank"})
	vs, _ := Check(Policy{Banned: bl, BannedMode: BannedEntra}, User{}, "contosoblank")
	if len(vs) != 1 || vs[0].Message != "banned: contains 'contoso' and 'blank'; add 3 more characters" {
		t.Fatalf("got %+v", vs)
	}
	b, err := json.Marshal(vs[0])
	if err != nil {
		t.Fatal(err)
	}
	want := `{"rule":"banned","message":"banned: contains 'contoso' and 'blank'; add 3 more characters","token":"contoso","mode":"entra","matches":[{"term":"contoso","how":"exact"},{"term":"blank","how":"exact"}],"score":2,"score_needed":5}`
	if string(b) != want {
		t.Fatalf("json\n%s\nwant\n%s", b, want)
	}
}

func TestStrictNamesEveryTerm(t *testing.T) {
	bl, _ := NewBannedList([]string{"contoso", "blank", "london", "widget"})
	vs, _ := Check(Policy{Banned: bl}, User{}, "C0ntoso-blamk-Widget!")
	if len(vs) != 1 {
		t.Fatalf("got %+v", vs)
	}
	v := vs[0]
	want := []BannedMatch{{Term: "contoso", How: MatchNormalized}, {Term: "blank", How: MatchOneEdit}, {Term: "widget", How: MatchExact}}
	if v.Mode != BannedStrict || !slices.Equal(v.Matches, want) || v.Token != "contoso" {
		t.Fatalf("got %+v", v)
	}
	if v.Message != "banned: contains 'contoso', 'blank' and 'widget'" {
		t.Fatalf("message %q", v.Message)
	}
	// Strict refuses what entra accepts (issue 18).
	bl, _ = NewBannedList([]string{"blue"})
	if vs, _ := Check(Policy{Banned: bl}, User{}, "Fable9!xq"); len(vs) != 1 {
		t.Fatalf("strict accepted: %+v", vs)
	}
}

func TestReadBannedListEntra(t *testing.T) {
	bl, err := ReadBannedListMode(strings.NewReader("abc\ncontoso\n# c\nxy\n"), BannedEntra)
	if err != nil || bl.Len() != 1 {
		t.Fatalf("short terms not ignored: %v %v", bl, err)
	}
	if _, err := ReadBannedListMode(strings.NewReader("abc\n"), BannedStrict); err == nil {
		t.Fatal("strict accepted a 3-character term")
	}
	_, err = ReadBannedListMode(strings.NewReader("ok12\nabcdefghijklmnopq\n"), BannedEntra)
	if err == nil || !strings.Contains(err.Error(), "line 2 has 17 characters") || strings.Contains(err.Error(), "abcdefghijklmnopq") {
		t.Fatalf("long term: %v", err)
	}
	var sb strings.Builder
	for i := range EntraMaxCustomTerms + 1 {
		sb.WriteString("term" + strings.Repeat("x", i%10) + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + "\n")
	}
	_, err = ReadBannedListMode(strings.NewReader(sb.String()), BannedEntra)
	if err == nil || !strings.Contains(err.Error(), "at most 1000") {
		t.Fatalf("1001 terms: %v", err)
	}
	if _, err := ParseBannedMode("loose"); err == nil {
		t.Fatal("ParseBannedMode accepted loose")
	}
}

// refEntra is the slow reference for entra mode, from Microsoft's text: the
// distinct terms matched (list terms at distance <= 1 of any substring, name
// terms as substrings), whether a name matched, and the lowest score.
func refEntra(terms, names []string, pw string) (found []string, name bool, score int) {
	p := refNormalize(pw)
	type span struct {
		a, b int
		term string
		dist int
	}
	var spans []span
	for _, t := range terms {
		tn := refNormalize(t)
		for i := 0; i <= len(p); i++ {
			for j := i + 1; j <= len(p); j++ {
				if d := refLevenshtein(p[i:j], tn); d <= 1 {
					spans = append(spans, span{i, j, t, d})
				}
			}
		}
	}
	for _, t := range names {
		tn := refNormalize(t)
		if len(tn) < 4 {
			continue
		}
		for i := 0; i+len(tn) <= len(p); i++ {
			if string(p[i:i+len(tn)]) == string(tn) {
				spans = append(spans, span{i, i + len(tn), "name:" + t, 0})
				name = true
			}
		}
	}
	for _, s := range spans {
		if !slices.Contains(found, s.term) {
			found = append(found, s.term)
		}
	}
	// A one-edit span is not used where its term is at distance 0 over any
	// of the same characters.
	var use []span
	for _, s := range spans {
		ok := true
		for _, e := range spans {
			if s.dist == 1 && e.dist == 0 && e.term == s.term && e.a < s.b && s.a < e.b {
				ok = false
			}
		}
		if ok {
			use = append(use, s)
		}
	}
	memo := map[int]int{}
	var low func(i int) int // the lowest score of p[i:]
	low = func(i int) int {
		if i == len(p) {
			return 0
		}
		if v, ok := memo[i]; ok {
			return v
		}
		v := 1 + low(i+1)
		for _, s := range use {
			if s.a == i {
				v = min(v, 1+low(s.b))
			}
		}
		memo[i] = v
		return v
	}
	return found, name, low(0)
}

func FuzzBannedModes(f *testing.F) {
	f.Add("C0ntos0Blank12", "contoso", "blank", "Poll", "")
	f.Add("ContoS0Bl@nkf9!", "contoso", "blank", "", "Contoso")
	f.Add("p0LL23fb", "abcdef", "london", "Poll", "Tenant")
	f.Add("Fable9!xq", "blue", "mondon", "", "")
	f.Add("blanky99blank", "blank", "lanky", "anky", "blan")
	f.Fuzz(func(t *testing.T, pw, t1, t2, first, tenant string) {
		if len([]rune(pw)) > 40 {
			return
		}
		var terms []string
		for _, x := range []string{t1, t2} {
			x = strings.TrimSpace(x)
			if n := len(normalizeRunes(nil, x)); n >= 4 && n <= 16 && !slices.ContainsFunc(terms, func(y string) bool {
				return string(refNormalize(y)) == string(refNormalize(x))
			}) {
				terms = append(terms, x)
			}
		}
		bl, err := NewBannedList(terms)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, x := range []string{first, tenant} {
			x = strings.TrimSpace(x)
			if len([]rune(x)) >= 4 && !slices.Contains(names, x) {
				names = append(names, x)
			}
		}
		found, name, score := refEntra(terms, names, pw)
		var listFound []string
		for _, f := range found {
			if !strings.HasPrefix(f, "name:") {
				listFound = append(listFound, f)
			}
		}
		termsOf := func(v Violation) (list, named []string) {
			for _, m := range v.Matches {
				if m.Name {
					named = append(named, "name:"+m.Term)
				} else {
					list = append(list, m.Term)
				}
			}
			return
		}
		// Strict: every term found, refused when any is.
		vs, _ := Check(Policy{Banned: bl}, User{}, pw)
		if (len(vs) > 0) != (len(listFound) > 0) {
			t.Fatalf("strict: %+v, reference terms %q", vs, listFound)
		}
		if len(vs) > 0 {
			got, _ := termsOf(vs[0])
			slices.Sort(got)
			want := slices.Clone(listFound)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("strict terms %q, reference %q", got, want)
			}
		}
		// Entra: refused when a name matched or the score is under 5.
		p := Policy{Banned: bl, BannedMode: BannedEntra, TenantName: tenant}
		vs, _ = Check(p, User{FirstName: first}, pw)
		refused := len(found) > 0 && (name || score < EntraScoreNeeded)
		if (len(vs) > 0) != refused {
			t.Fatalf("entra: %+v, reference found %q name %v score %d", vs, found, name, score)
		}
		if refused {
			if vs[0].Score != score {
				t.Fatalf("entra score %d, reference %d (%q)", vs[0].Score, score, found)
			}
			l, n := termsOf(vs[0])
			got := append(l, n...)
			slices.Sort(got)
			want := slices.Clone(found)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("entra terms %q, reference %q", got, want)
			}
		}
	})
}

func TestReadBannedAccepted(t *testing.T) {
	bl, _ := NewBannedList([]string{"contoso"})
	r := ReadBanned(Policy{Banned: bl, BannedMode: BannedEntra}, User{}, "Contoso-harbour-lights-7")
	want := []BannedMatch{{Term: "contoso", How: MatchExact}}
	if r.Refused || r.Mode != BannedEntra || r.Score != 18 || r.ScoreNeeded != EntraScoreNeeded || !slices.Equal(r.Matches, want) {
		t.Fatalf("got %+v", r)
	}
	r = ReadBanned(Policy{Banned: bl}, User{}, "Contoso-harbour-lights-7")
	if !r.Refused || r.Mode != BannedStrict || r.Score != 0 || !slices.Equal(r.Matches, want) {
		t.Fatalf("strict: got %+v", r)
	}
}

// With more terms found than a violation names, entra mode names the terms
// of the lowest-scoring reading first, and says there are more.
func TestBannedNamesTheScoringTermsFirst(t *testing.T) {
	terms := []string{"bcde", "cdef", "defg", "fghi", "ghij", "hijk", "jklm", "klmn", "abcd", "efgh", "ijkl"}
	bl, err := NewBannedList(terms)
	if err != nil {
		t.Fatal(err)
	}
	vs, _ := Check(Policy{Banned: bl, BannedMode: BannedEntra}, User{}, "abcdefghijkl")
	if len(vs) != 1 || vs[0].Score != 3 || len(vs[0].Matches) != MaxNamedMatches || vs[0].MoreMatches < 1 {
		t.Fatalf("got %+v", vs)
	}
	var named []string
	for _, m := range vs[0].Matches {
		named = append(named, m.Term)
	}
	for _, c := range []string{"abcd", "efgh", "ijkl"} {
		if !slices.Contains(named, c) {
			t.Errorf("%q not named: %q", c, named)
		}
	}
	if !strings.HasSuffix(vs[0].Message, " and more; add 2 more characters") {
		t.Errorf("message %q", vs[0].Message)
	}
	// Strict mode names as many, and stops looking at the next.
	vs, _ = Check(Policy{Banned: bl}, User{}, "abcdefghijkl")
	if len(vs) != 1 || len(vs[0].Matches) != MaxNamedMatches || vs[0].MoreMatches != 1 {
		t.Fatalf("strict: got %+v", vs)
	}
}
