package engine

import (
	"strings"
	"testing"

	"github.com/adwriteback/adwriteback/connector/policy"
)

func TestWireViolationBanned(t *testing.T) {
	bl, err := policy.NewBannedList([]string{"contoso", "blank"})
	if err != nil {
		t.Fatal(err)
	}
	pw := "C0ntos0-blamk"
	vs, _ := policy.Check(policy.Policy{Banned: bl, BannedMode: policy.BannedEntra}, policy.User{}, pw)
	if len(vs) != 1 {
		t.Fatalf("violations %+v", vs)
	}
	w := wireViolation(vs[0])
	want := map[string]any{"terms": "contoso,blank", "matched_by": "normalized,one_edit",
		"banned_mode": "entra", "score": 3, "score_needed": 5}
	for k, v := range want {
		if w.Fields[k] != v {
			t.Errorf("field %s = %v, want %v (%+v)", k, w.Fields[k], v, w.Fields)
		}
	}
	if w.Message != "banned: contains 'contoso' and 'blank'; add 2 more characters" {
		t.Errorf("message %q", w.Message)
	}
	vs, _ = policy.Check(policy.Policy{Banned: bl}, policy.User{}, pw)
	w = wireViolation(vs[0])
	if w.Fields["terms"] != "contoso,blank" || w.Fields["banned_mode"] != "strict" || w.Fields["score"] != nil {
		t.Errorf("strict fields %+v", w.Fields)
	}
}

func TestWireViolationBannedManyTerms(t *testing.T) {
	var terms []string
	for c := 'a'; c <= 'l'; c++ {
		terms = append(terms, strings.Repeat(string(c), 40))
	}
	bl, err := policy.NewBannedList(terms)
	if err != nil {
		t.Fatal(err)
	}
	vs, _ := policy.Check(policy.Policy{Banned: bl, MaxLength: 1000}, policy.User{}, strings.Join(terms, "-"))
	if len(vs) != 1 || len(vs[0].Matches) != policy.MaxNamedMatches || vs[0].MoreMatches != 1 {
		// Strict mode stops at the first term past those named: "at least 1 more".
		t.Fatalf("violations %+v", vs)
	}
	if len(vs[0].Message) > 1024 || !strings.HasSuffix(vs[0].Message, " and more") {
		t.Errorf("message %q", vs[0].Message)
	}
	w := wireViolation(vs[0])
	got, _ := w.Fields["terms"].(string)
	if len(got) > maxWireFieldBytes || strings.Count(got, ",")+1 != 6 || w.Fields["terms_more"] != 3 {
		t.Errorf("fields %+v", w.Fields)
	}
	if by, _ := w.Fields["matched_by"].(string); strings.Count(by, ",") != strings.Count(got, ",") {
		t.Errorf("matched_by %q for terms %q", by, got)
	}
}
