package cli

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

type policyResult struct {
	OK         bool `json:"ok"`
	Violations []struct {
		Rule     string   `json:"rule"`
		Message  string   `json:"message"`
		Required *int     `json:"required"`
		Got      *int     `json:"got"`
		Found    []string `json:"found"`
		Missing  []string `json:"missing"`
		Token    string   `json:"token"`
	} `json:"violations"`
}

func runPolicy(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &Env{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
	err := PolicyCommand().Run(context.Background(), env, args)
	if err != nil {
		errb.WriteString(err.Error())
	}
	return ExitCode(err), out.String(), errb.String()
}

func TestPolicyCheckExitCodesAndJSON(t *testing.T) {
	for _, c := range []struct {
		name  string
		stdin string
		args  []string
		code  int
		rules []string
	}{
		{"ok", "Correct-Horse-9\n", nil, 0, []string{}},
		{"too short and simple", "abc\n", nil, 1, []string{"min_length", "complexity"}},
		{"crlf stripped", "Abcdef1\r\n", nil, 0, []string{}},
		{"only one newline stripped", "Abcdef\n\n", []string{"--complexity=false"}, 0, []string{}},
		{"second newline counts", "Abcdef\n\n", []string{"--min-length", "7", "--complexity=false"}, 0, []string{}},
		{"second newline counts (short)", "Abcde\n\n", []string{"--min-length", "7", "--complexity=false"}, 1, []string{"min_length"}},
		{"no trailing newline", "Abcdef1", nil, 0, []string{}},
		{"complexity off", "abcdefgh\n", []string{"--complexity=false"}, 0, []string{}},
		{"account name", "Xy7!ehagens\n", []string{"--sam", "ehagens", "--display-name", "Erin M. Hagens"}, 1,
			[]string{"contains_account_name", "contains_display_name"}},
		{"name rules off with complexity off", "xy7ehagens\n", []string{"--sam", "ehagens", "--complexity=false"}, 0, []string{}},
		{"org min length", "Abcdefgh1!\n", []string{"--min-length", "8", "--org-min-length", "14"}, 1, []string{"min_length"}},
		{"emoji count two", "Ab1😀😀\n", []string{"--min-length", "7"}, 0, []string{}},
		{"euro does not count", "abcdefg€€\n", []string{"--min-length", "1"}, 1, []string{"complexity"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, out, errs := runPolicy(t, c.stdin, append([]string{"check", "--json"}, c.args...)...)
			if code != c.code {
				t.Fatalf("exit %d, want %d (stderr %q)", code, c.code, errs)
			}
			var res policyResult
			if err := json.Unmarshal([]byte(out), &res); err != nil {
				t.Fatalf("stdout %q: %v", out, err)
			}
			got := []string{}
			for _, v := range res.Violations {
				got = append(got, v.Rule)
				if v.Message == "" {
					t.Errorf("violation %s without a message", v.Rule)
				}
			}
			if !slices.Equal(got, c.rules) || res.OK != (len(c.rules) == 0) {
				t.Errorf("ok=%v rules %v, want %v", res.OK, got, c.rules)
			}
			if res.Violations == nil {
				t.Errorf("violations is null, want a list: %s", out)
			}
			pw := strings.TrimRight(c.stdin, "\r\n")
			if len(pw) >= 3 && (strings.Contains(out, pw) || strings.Contains(errs, pw)) {
				t.Errorf("password printed: %q / %q", out, errs)
			}
		})
	}
}

func TestPolicyCheckJSONFields(t *testing.T) {
	code, out, _ := runPolicy(t, "abcdefghi\n", "check", "--json", "--min-length", "12")
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	var res policyResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	v := res.Violations[0]
	if v.Rule != "min_length" || *v.Required != 12 || *v.Got != 9 || v.Message != "min_length: needs at least 12 characters, got 9" {
		t.Errorf("min_length violation %+v", v)
	}
	c := res.Violations[1]
	if c.Rule != "complexity" || !slices.Equal(c.Found, []string{"lowercase"}) || len(c.Missing) != 4 {
		t.Errorf("complexity violation %+v", c)
	}
}

func TestPolicyCheckText(t *testing.T) {
	code, out, errs := runPolicy(t, "Correct-Horse-9\n", "check")
	if code != 0 || out != "ok: the password meets the policy\n" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errs)
	}
	code, out, _ = runPolicy(t, "hunter2\n", "check", "--min-length", "10")
	if code != 1 || !strings.Contains(out, "min_length: needs at least 10 characters, got 7\n") || strings.Contains(out, "hunter2") {
		t.Errorf("exit %d, stdout %q", code, out)
	}
}

func TestPolicyCheckLists(t *testing.T) {
	dir := t.TempDir()
	banned := filepath.Join(dir, "banned.txt")
	os.WriteFile(banned, []byte("# org terms\ncontoso\nwinter\n"), 0o600)
	h := sha1.Sum([]byte("Spring-2024!"))
	list := filepath.Join(dir, "pwned.txt")
	os.WriteFile(list, []byte(strings.ToUpper(hex.EncodeToString(h[:]))+":42\n"), 0o600)
	index := filepath.Join(dir, "pwned.idx")

	code, out, errs := runPolicy(t, "", "build-breached", "--in", list, "--out", index)
	if code != 0 || !strings.Contains(out, "1 sha1 hashes") {
		t.Fatalf("build: exit %d, %q %q", code, out, errs)
	}
	for _, c := range []struct {
		pw    string
		rules []string
	}{
		{"C0nt0so-Rocks-1", []string{"banned"}},
		{"Wintr-is-here-7", []string{"banned"}},
		{"Spring-2024!", []string{"breached"}},
		{"Sunny-Day-2031", []string{}},
	} {
		code, out, errs := runPolicy(t, c.pw+"\n", "check", "--json", "--banned", banned, "--breached", index)
		var res policyResult
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("%s: %q %q", c.pw, out, errs)
		}
		got := []string{}
		for _, v := range res.Violations {
			got = append(got, v.Rule)
		}
		if !slices.Equal(got, c.rules) || code != map[bool]int{true: 0, false: 1}[len(c.rules) == 0] {
			t.Errorf("%s: exit %d rules %v, want %v", c.pw, code, got, c.rules)
		}
	}
}

func TestPolicyUsageErrors(t *testing.T) {
	dir := t.TempDir()
	badBanned := filepath.Join(dir, "bad.txt")
	os.WriteFile(badBanned, []byte("ok-term\nab\n"), 0o600)
	for _, c := range []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		{"no subcommand", "", nil, "subcommand"},
		{"unknown subcommand", "", []string{"frobnicate"}, "unknown subcommand"},
		{"unknown flag", "x\n", []string{"check", "--nope"}, "argument 1 is not a flag of policy check"},
		{"password as a flag", "x\n", []string{"check", "--hunter2"}, "argument 1 is not a flag"},
		{"password as a value", "x\n", []string{"check", "--min-length", "hunter2"}, "invalid value for --min-length"},
		{"positional password refused", "", []string{"check", "hunter2"}, "standard input"},
		{"live mode: config missing", "x\n", []string{"check", "--config", "c.yaml", "--user", "bob"}, "read config"},
		{"user alone", "x\n", []string{"check", "--user", "bob"}, "go together"},
		{"missing banned file", "x\n", []string{"check", "--banned", filepath.Join(dir, "none")}, "--banned"},
		{"bad banned term", "x\n", []string{"check", "--banned", badBanned}, "line 2"},
		{"missing index", "x\n", []string{"check", "--breached", filepath.Join(dir, "none")}, "--breached"},
		{"not an index", "x\n", []string{"check", "--breached", badBanned}, "not a valid"},
		{"invalid UTF-8", "ab\xffcd\n", []string{"check"}, "UTF-8"},
		{"too much input", strings.Repeat("a", maxPasswordInput+1), []string{"check"}, "longer than"},
		{"negative length", "x\n", []string{"check", "--min-length", "-1"}, "negative"},
		{"build without flags", "", []string{"build-breached"}, "required"},
		{"build missing input", "", []string{"build-breached", "--in", filepath.Join(dir, "none"), "--out", filepath.Join(dir, "o")}, "--in"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, out, errs := runPolicy(t, c.stdin, c.args...)
			if code != 2 {
				t.Fatalf("exit %d, want 2 (stdout %q, stderr %q)", code, out, errs)
			}
			if !strings.Contains(errs, c.want) {
				t.Errorf("stderr %q does not mention %q", errs, c.want)
			}
			if strings.Contains(errs, "hunter2") || strings.Contains(errs, "ab\xffcd") {
				t.Errorf("password in the error: %q", errs)
			}
		})
	}
}

func TestPolicyHelp(t *testing.T) {
	code, out, _ := runPolicy(t, "", "-h")
	if code != 0 || !strings.Contains(out, "--min-length") && !strings.Contains(out, "-min-length") {
		t.Errorf("exit %d, help %q", code, out)
	}
}

func TestPolicyCheckBannedMode(t *testing.T) {
	dir := t.TempDir()
	banned := filepath.Join(dir, "banned.txt")
	os.WriteFile(banned, []byte("contoso\nblank\nblue\nxy\n"), 0o600)
	type out struct {
		OK         bool   `json:"ok"`
		BannedMode string `json:"banned_mode"`
		Banned     *struct {
			Mode        string `json:"mode"`
			Refused     bool   `json:"refused"`
			Score       *int   `json:"score"`
			ScoreNeeded *int   `json:"score_needed"`
			Matches     []struct {
				Term string `json:"term"`
			} `json:"matches"`
		} `json:"banned"`
		Violations []struct {
			Rule    string `json:"rule"`
			Message string `json:"message"`
			Mode    string `json:"mode"`
			Matches []struct {
				Term string `json:"term"`
				How  string `json:"how"`
			} `json:"matches"`
			Score       *int `json:"score"`
			ScoreNeeded *int `json:"score_needed"`
		} `json:"violations"`
	}
	run := func(pw string, args ...string) (int, out) {
		t.Helper()
		code, stdout, errs := runPolicy(t, pw+"\n", append([]string{"check", "--json", "--complexity=false", "--min-length", "0", "--banned", banned}, args...)...)
		var o out
		if err := json.Unmarshal([]byte(stdout), &o); err != nil {
			t.Fatalf("%q %q", stdout, errs)
		}
		return code, o
	}
	// Strict: a 2-character term is an error; entra ignores it.
	if code, _, errs := runPolicy(t, "x\n", "check", "--banned", banned); code != 2 || !strings.Contains(errs, "line 4") {
		t.Fatalf("strict with a short term: exit %d %q", code, errs)
	}
	code, o := run("Fable9!xq", "--banned-mode", "entra")
	if code != 0 || !o.OK || o.BannedMode != "entra" {
		t.Fatalf("entra Fable9!xq: exit %d %+v", code, o)
	}
	// Accepted, and still read: the term found and the score.
	code, o = run("Contoso-harbour-7", "--banned-mode", "entra")
	if b := o.Banned; code != 0 || b == nil || b.Mode != "entra" || b.Refused || *b.Score != 11 || *b.ScoreNeeded != 5 ||
		len(b.Matches) != 1 || b.Matches[0].Term != "contoso" {
		t.Fatalf("entra accepted: exit %d %+v", code, o.Banned)
	}
	code, stdout, _ := runPolicy(t, "Contoso-harbour-7\n", "check", "--complexity=false", "--min-length", "0", "--banned", banned, "--banned-mode", "entra")
	if code != 0 || stdout != "ok: the password meets the policy\nbanned (entra): 11 points, 5 needed\n" {
		t.Fatalf("entra accepted, text: exit %d %q", code, stdout)
	}
	strictList := filepath.Join(dir, "strict.txt")
	os.WriteFile(strictList, []byte("blank\n"), 0o600)
	code, stdout, _ = runPolicy(t, "Blank-harbour-7\n", "check", "--json", "--complexity=false", "--min-length", "0", "--banned", strictList)
	o = out{}
	if err := json.Unmarshal([]byte(stdout), &o); err != nil {
		t.Fatal(err)
	}
	if b := o.Banned; code != 1 || b == nil || b.Mode != "strict" || !b.Refused || b.Score != nil || len(b.Matches) != 1 {
		t.Fatalf("strict: exit %d %+v", code, o.Banned)
	}
	code, o = run("C0ntos0Blank12", "--banned-mode", "entra")
	if code != 1 || len(o.Violations) != 1 {
		t.Fatalf("entra: exit %d %+v", code, o)
	}
	v := o.Violations[0]
	if v.Mode != "entra" || *v.Score != 4 || *v.ScoreNeeded != 5 || len(v.Matches) != 2 ||
		v.Matches[0].Term != "contoso" || v.Matches[1].Term != "blank" ||
		v.Message != "banned: contains 'contoso' and 'blank'; add 1 more character" {
		t.Fatalf("entra violation %+v", v)
	}
	code, o = run("Harbour-P0int", "--banned-mode", "entra", "--first-name", "Point")
	if code != 1 || len(o.Violations) != 1 || o.Violations[0].Matches[0].Term != "Point" {
		t.Fatalf("entra first name: exit %d %+v", code, o)
	}
	if code, _, errs := runPolicy(t, "x\n", "check", "--banned-mode", "loose"); code != 2 || !strings.Contains(errs, "--banned-mode") {
		t.Fatalf("bad mode: exit %d %q", code, errs)
	}
}
