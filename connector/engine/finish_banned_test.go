package engine

import (
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
