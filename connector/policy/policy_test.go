package policy

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func rules(vs []Violation) []Rule {
	out := []Rule{}
	for _, v := range vs {
		out = append(out, v.Rule)
	}
	return out
}

func mustCheck(t *testing.T, p Policy, u User, pw string) []Violation {
	t.Helper()
	vs, err := Check(p, u, pw)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	return vs
}

func TestUTF16Len(t *testing.T) {
	for _, c := range []struct {
		s    string
		want int
	}{
		{"", 0},
		{"abc", 3},
		{"é", 1},        // U+00E9, 2 UTF-8 bytes
		{"€", 1},        // U+20AC, 3 UTF-8 bytes
		{"😀", 2},        // surrogate pair
		{"a😀b", 4},      // mixed
		{"𝄞", 2},        // U+1D11E
		{"\xff", 1},     // invalid byte: U+FFFD
		{"\xe2\x82", 2}, // truncated sequence: two U+FFFD
	} {
		if got := UTF16Len(c.s); got != c.want {
			t.Errorf("UTF16Len(%q) = %d, want %d", c.s, got, c.want)
		}
	}
}

func TestLength(t *testing.T) {
	a := func(n int) string { return strings.Repeat("a", n) }
	emoji := func(n int) string { return strings.Repeat("😀", n) }
	for _, c := range []struct {
		name string
		p    Policy
		pw   string
		want []Rule
	}{
		{"min ok", Policy{MinLength: 8}, a(8), []Rule{}},
		{"min short", Policy{MinLength: 8}, a(7), []Rule{RuleMinLength}},
		{"empty", Policy{MinLength: 1}, "", []Rule{RuleMinLength}},
		{"max 256 ok", Policy{}, a(256), []Rule{}},
		{"max 257", Policy{}, a(257), []Rule{RuleMaxLength}},
		{"128 emoji = 256 units", Policy{}, emoji(128), []Rule{}},
		{"128 emoji + 1 = 257 units", Policy{}, emoji(128) + "a", []Rule{RuleMaxLength}},
		{"4 emoji reach min 8", Policy{MinLength: 8}, emoji(4), []Rule{}},
		{"7 accented chars are 7, not 14", Policy{MinLength: 8}, strings.Repeat("é", 7), []Rule{RuleMinLength}},
		{"custom max", Policy{MaxLength: 10}, a(11), []Rule{RuleMaxLength}},
		{"org min above domain", Policy{MinLength: 8, OrgMinLength: 12}, a(10), []Rule{RuleMinLength}},
		{"org min below domain", Policy{MinLength: 12, OrgMinLength: 8}, a(10), []Rule{RuleMinLength}},
		{"min and max both", Policy{MinLength: 300}, a(257), []Rule{RuleMinLength, RuleMaxLength}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := rules(mustCheck(t, c.p, User{}, c.pw))
			if !slices.Equal(got, c.want) {
				t.Errorf("rules = %v, want %v", got, c.want)
			}
		})
	}
	vs := mustCheck(t, Policy{MinLength: 8, OrgMinLength: 12}, User{}, "abcdefghi")
	if vs[0].Required != 12 || vs[0].Got != 9 || vs[0].Message != "min_length: needs at least 12 characters, got 9" {
		t.Errorf("violation = %+v", vs[0])
	}
}

func TestCategories(t *testing.T) {
	for _, c := range []struct {
		name string
		r    rune
		want Category // "" = none
	}{
		{"A", 'A', CategoryUppercase},
		{"z", 'z', CategoryLowercase},
		{"accented upper", 'É', CategoryUppercase},
		{"accented lower", 'ñ', CategoryLowercase},
		{"sharp-s", 'ß', CategoryLowercase},
		{"Greek upper", 'Ω', CategoryUppercase},
		{"Greek lower", 'λ', CategoryLowercase},
		{"Cyrillic upper", 'Ж', CategoryUppercase},
		{"Cyrillic lower", 'ж', CategoryLowercase},
		{"digit", '7', CategoryDigit},
		{"Arabic-Indic digit", '٣', ""},
		{"fullwidth digit", '７', ""},
		{"CJK", '漢', CategoryOtherLetter},
		{"Hiragana", 'あ', CategoryOtherLetter},
		{"Hebrew", 'א', CategoryOtherLetter},
		{"Thai", 'ก', CategoryOtherLetter},
		{"titlecase digraph", 'ǅ', CategoryOtherLetter},
		{"euro", '€', ""},
		{"pound", '£', ""},
		{"yen", '¥', ""},
		{"section sign", '§', ""},
		{"inverted question", '¿', ""},
		{"emoji", '😀', ""},
		{"space", ' ', ""},
		{"tab", '\t', ""},
		{"NUL", 0, ""},
		{"DEL", 0x7f, ""},
		{"replacement char", '\uFFFD', ""},
	} {
		got, ok := CategoryOf(c.r)
		if !ok {
			got = ""
		}
		if got != c.want {
			t.Errorf("%s: CategoryOf(%U) = %q, want %q", c.name, c.r, got, c.want)
		}
	}
	for _, r := range asciiSymbols {
		if got, _ := CategoryOf(r); got != CategorySymbol {
			t.Errorf("CategoryOf(%q) = %q, want symbol", r, got)
		}
	}
	if len(asciiSymbols) != 32 {
		t.Errorf("asciiSymbols has %d characters, want 32", len(asciiSymbols))
	}
}

func TestComplexity(t *testing.T) {
	p := Policy{ComplexityEnabled: true}
	for _, c := range []struct {
		pw      string
		ok      bool
		found   []Category
		missing []Category
	}{
		{"Password1", true, nil, nil},
		{"password1!", true, nil, nil},
		{"PASSWORD!1", true, nil, nil},
		{"password", false, []Category{CategoryLowercase}, []Category{CategoryUppercase, CategoryDigit, CategorySymbol, CategoryOtherLetter}},
		{"Password", false, []Category{CategoryUppercase, CategoryLowercase}, []Category{CategoryDigit, CategorySymbol, CategoryOtherLetter}},
		{"password€€€", false, []Category{CategoryLowercase}, nil}, // currency symbols don't count
		{"Password££", false, nil, nil}, // pound doesn't count
		{"password😀😀", false, nil, nil}, // emoji don't count
		{"Пароль1", true, nil, nil},     // Cyrillic upper, lower, digit
		{"Ωμέγα123", true, nil, nil},    // Greek upper, lower, digit
		{"Ölçü-ölçü", true, nil, nil},   // accented upper, lower, symbol
		{"straße1!", true, nil, nil},    // sharp-s lower, digit, symbol
		{"密码密码1!", true, nil, nil},      // CJK, digit, symbol
		{"密码abc", false, []Category{CategoryLowercase, CategoryOtherLetter}, nil},
		{"パスワードabcD", true, nil, nil},
		{"abc ", false, nil, nil}, // space counts for nothing
		{"١٢٣abcDEF", false, nil, nil},
		{"", false, []Category{}, []Category{CategoryUppercase, CategoryLowercase, CategoryDigit, CategorySymbol, CategoryOtherLetter}},
	} {
		vs := mustCheck(t, p, User{}, c.pw)
		if c.ok {
			if len(vs) != 0 {
				t.Errorf("%q: violations %v, want none", c.pw, rules(vs))
			}
			continue
		}
		if len(vs) != 1 || vs[0].Rule != RuleComplexity {
			t.Fatalf("%q: violations %v, want [complexity]", c.pw, rules(vs))
		}
		v := vs[0]
		if v.Required != 3 || v.Got != len(v.Found) || len(v.Found)+len(v.Missing) != 5 {
			t.Errorf("%q: %+v", c.pw, v)
		}
		if c.found != nil && !slices.Equal(v.Found, c.found) {
			t.Errorf("%q: found %v, want %v", c.pw, v.Found, c.found)
		}
		if c.missing != nil && !slices.Equal(v.Missing, c.missing) {
			t.Errorf("%q: missing %v, want %v", c.pw, v.Missing, c.missing)
		}
	}
	if vs := mustCheck(t, Policy{}, User{}, "password"); len(vs) != 0 {
		t.Errorf("complexity off: %v", rules(vs))
	}
}

func TestNames(t *testing.T) {
	u := User{SAMAccountName: "ehagens", DisplayName: "Erin M. Hagens"}
	on := Policy{ComplexityEnabled: true}
	for _, c := range []struct {
		name   string
		u      User
		pw     string
		want   []Rule
		tokens []string
	}{
		{"clean", u, "Xy7!qwerty", []Rule{}, nil},
		{"account name", u, "Xy7!EHAGENS", []Rule{RuleContainsAccountName, RuleContainsDisplayName}, []string{"ehagens", "Hagens"}},
		{"first name, case-insensitive", u, "Xy7!eRiN", []Rule{RuleContainsDisplayName}, []string{"Erin"}},
		{"last name", u, "Xy7!hagens", []Rule{RuleContainsDisplayName}, []string{"Hagens"}},
		{"initial M is too short", u, "Xy7!MMMM", []Rule{}, nil},
		{"both tokens", u, "Erin!Hagens7", []Rule{RuleContainsDisplayName, RuleContainsDisplayName}, []string{"Erin", "Hagens"}},
		{"partial token is fine", u, "Xy7!Eri-Hagen", []Rule{}, nil},
		{"short account name skipped", User{SAMAccountName: "ab"}, "Xy7!ab", []Rule{}, nil},
		{"3-char account name checked", User{SAMAccountName: "abc"}, "Xy7!ABC", []Rule{RuleContainsAccountName}, []string{"abc"}},
		{"all delimiters", User{DisplayName: "one,two.three-four_five six\tseven#eight"}, "Xy7!SEVENeight",
			[]Rule{RuleContainsDisplayName, RuleContainsDisplayName}, []string{"seven", "eight"}},
		{"not split on other punctuation", User{DisplayName: "O'Brien"}, "Xy7!brien", []Rule{}, nil},
		{"whole token with apostrophe", User{DisplayName: "O'Brien"}, "Xy7!o'brien", []Rule{RuleContainsDisplayName}, []string{"O'Brien"}},
		{"Cyrillic name case-insensitive", User{DisplayName: "Иван Петров"}, "Xy7!ПЕТРОВ", []Rule{RuleContainsDisplayName}, []string{"Петров"}},
		{"Greek", User{SAMAccountName: "σοφία"}, "Xy7!ΣΟΦΊΑ", []Rule{RuleContainsAccountName}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			vs := mustCheck(t, on, c.u, c.pw)
			if got := rules(vs); !slices.Equal(got, c.want) {
				t.Fatalf("rules = %v, want %v", got, c.want)
			}
			if c.tokens != nil {
				var toks []string
				for _, v := range vs {
					toks = append(toks, v.Token)
				}
				if !slices.Equal(toks, c.tokens) {
					t.Errorf("tokens = %v, want %v", toks, c.tokens)
				}
			}
			off := mustCheck(t, Policy{}, c.u, c.pw)
			if len(off) != 0 {
				t.Errorf("complexity off: %v, want none", rules(off))
			}
		})
	}
	if got := DisplayNameTokens("Erin M. Hagens"); !slices.Equal(got, []string{"Erin", "Hagens"}) {
		t.Errorf("DisplayNameTokens = %v", got)
	}
}

func TestEveryViolation(t *testing.T) {
	bl, err := NewBannedList([]string{"hagens"})
	if err != nil {
		t.Fatal(err)
	}
	p := Policy{MinLength: 12, ComplexityEnabled: true, Banned: bl, Breached: fakeBreach{"hagens"}}
	u := User{SAMAccountName: "hagens", DisplayName: "Erin Hagens"}
	vs := mustCheck(t, p, u, "hagens")
	want := []Rule{RuleMinLength, RuleComplexity, RuleContainsAccountName, RuleContainsDisplayName, RuleBanned, RuleBreached}
	if got := rules(vs); !slices.Equal(got, want) {
		t.Errorf("rules = %v, want %v", got, want)
	}
	for _, v := range vs {
		if strings.Contains(strings.ToLower(v.Message), "secret") {
			t.Errorf("message leaks: %q", v.Message)
		}
		if !strings.HasPrefix(v.Message, string(v.Rule)+": ") {
			t.Errorf("message %q does not start with its rule", v.Message)
		}
	}
}

func TestBannedSkippedWhenTooLong(t *testing.T) {
	bl, _ := NewBannedList([]string{"password"})
	long := "password" + strings.Repeat("x", 300)
	if got := rules(mustCheck(t, Policy{Banned: bl}, User{}, long)); !slices.Equal(got, []Rule{RuleMaxLength}) {
		t.Errorf("rules = %v, want [max_length] only", got)
	}
	if got := rules(mustCheck(t, Policy{Banned: bl}, User{}, long[:256])); !slices.Equal(got, []Rule{RuleBanned}) {
		t.Errorf("rules = %v, want [banned]", got)
	}
}

func TestPasswordNeverInViolations(t *testing.T) {
	bl, _ := NewBannedList([]string{"sekrit"})
	p := Policy{MinLength: 40, ComplexityEnabled: true, Banned: bl, Breached: fakeBreach{"x"}}
	pw := "zzsekrit-zz"
	vs := mustCheck(t, p, User{SAMAccountName: "someone"}, pw)
	b, _ := json.Marshal(vs)
	if strings.Contains(string(b), pw) {
		t.Errorf("password in %s", b)
	}
}

type fakeBreach struct{ bad string }

func (f fakeBreach) Breached(pw string) (bool, error) { return pw == f.bad, nil }

type failingBreach struct{}

var errDisk = errors.New("disk on fire")

func (failingBreach) Breached(string) (bool, error) { return false, errDisk }

func TestBreachError(t *testing.T) {
	vs, err := Check(Policy{MinLength: 20, Breached: failingBreach{}}, User{}, "short")
	if !errors.Is(err, ErrBreachCheck) || !errors.Is(err, errDisk) {
		t.Fatalf("err = %v", err)
	}
	if got := rules(vs); !slices.Equal(got, []Rule{RuleMinLength}) {
		t.Errorf("other rules still reported: got %v", got)
	}
	if strings.Contains(err.Error(), "short") {
		t.Errorf("error leaks the password")
	}
}

func TestPredictMinAge(t *testing.T) {
	set := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	for _, c := range []struct {
		name   string
		last   time.Time
		minAge time.Duration
		now    time.Time
		want   bool
	}{
		{"too young", set, day, set.Add(23 * time.Hour), true},
		{"exactly at min age", set, day, set.Add(day), false},
		{"older", set, day, set.Add(2 * day), false},
		{"no min age", set, 0, set, false},
		{"never set", time.Time{}, day, set, false},
		{"clock behind pwdLastSet", set, day, set.Add(-time.Hour), true},
	} {
		v, got := PredictMinAge(c.last, c.minAge, c.now)
		if got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
			continue
		}
		if got {
			if v.Rule != RuleMinAge || !v.NotBefore.Equal(c.last.Add(c.minAge)) {
				t.Errorf("%s: %+v", c.name, v)
			}
		}
	}
	v, _ := PredictMinAge(set, day, set)
	if v.Message != "min_age: the password was changed less than 1 day ago; it can be changed again after 2025-03-02T12:00:00Z" {
		t.Errorf("message = %q", v.Message)
	}
}

func TestViolationJSON(t *testing.T) {
	vs := mustCheck(t, Policy{MinLength: 3, ComplexityEnabled: true}, User{}, "")
	b, err := json.Marshal(vs)
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"rule":"min_length","message":"min_length: needs at least 3 characters, got 0","required":3,"got":0},` +
		`{"rule":"complexity","message":"complexity: needs characters from 3 of 5 categories, got 0 (found: none; missing: uppercase, lowercase, digit, symbol, other_letter)","required":3,"got":0,"found":[],"missing":["uppercase","lowercase","digit","symbol","other_letter"]}]`
	if string(b) != want {
		t.Errorf("JSON\n got %s\nwant %s", b, want)
	}
}
