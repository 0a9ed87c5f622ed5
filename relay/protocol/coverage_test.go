package protocol_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/adwriteback/adwriteback/relay/protocol"
)

// ruleRow is a row of PROTOCOL.md §13's rule table: "| `name` | §x | ... |".
var ruleRow = regexp.MustCompile("(?m)^\\| `([a-z0-9-]+)` \\| §")

// documentedRules are the rule names of PROTOCOL.md §13.
func documentedRules(t *testing.T) []string {
	t.Helper()
	doc, err := os.ReadFile("PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(doc)
	start := strings.Index(s, "## 13. Golden vectors")
	if start < 0 {
		t.Fatal("PROTOCOL.md has no section 13. Golden vectors")
	}
	var out []string
	for _, m := range ruleRow.FindAllStringSubmatch(s[start:], -1) {
		out = append(out, m[1])
	}
	if len(out) < 20 {
		t.Fatalf("only %d rules in PROTOCOL.md §13", len(out))
	}
	return out
}

// TestVectorsCoverEveryRule: every rule of PROTOCOL.md §13 has at least
// one valid and one invalid vector, every vector names documented rules
// only, every error kind of the package is some vector's error, every
// result code some valid result's code, and every way §6 settles a
// refused command some vector's settlement.
func TestVectorsCoverEveryRule(t *testing.T) {
	vs := readVectors(t)
	rules := documentedRules(t)
	valid, invalid := map[string]int{}, map[string]int{}
	kinds, codes, settles := map[string]bool{}, map[string]bool{}, map[string]bool{}
	known := map[string]bool{}
	for _, r := range rules {
		known[r] = true
	}
	for _, v := range vs {
		if len(v.Rules) == 0 {
			t.Errorf("vector %s names no rule", v.Name)
		}
		for _, r := range v.Rules {
			if !known[r] {
				t.Errorf("vector %s names rule %q, which PROTOCOL.md §13 does not list", v.Name, r)
			}
			if v.Want.Error == "" {
				valid[r]++
			} else {
				invalid[r]++
			}
		}
		kinds[v.Want.Error] = true
		settles[v.Want.Settle] = true
		if v.Type == protocol.TypeResult && v.Want.Error == "" && !strings.HasPrefix(v.Name, "v1-") {
			codes[v.Want.ResultCode] = true
		}
	}
	for _, r := range rules {
		if valid[r] == 0 || invalid[r] == 0 {
			t.Errorf("rule %s: %d valid and %d invalid vectors; want at least one of each", r, valid[r], invalid[r])
		}
	}
	for _, k := range allKinds {
		if name := protocol.KindName(&protocol.Error{Kind: k}); !kinds[name] {
			t.Errorf("no vector fails with %s", name)
		}
	}
	for _, c := range protocol.ResultCodes() {
		if !codes[string(c)] {
			t.Errorf("no valid result vector with code %s", c)
		}
	}
	for _, s := range []string{"result", "first_result", "dead_letter", "retry"} {
		if !settles[s] {
			t.Errorf("no vector settled %s", s)
		}
	}
}

// allKinds are the package's error kinds.
var allKinds = []error{
	protocol.ErrTooLarge, protocol.ErrMalformed, protocol.ErrUnknownField, protocol.ErrUnsupportedVersion,
	protocol.ErrInvalidField, protocol.ErrUnsigned, protocol.ErrUnknownSigner, protocol.ErrBadSignature,
	protocol.ErrExpired, protocol.ErrNotYetValid, protocol.ErrReplayed, protocol.ErrIDConflict,
	protocol.ErrUnknownRecipient, protocol.ErrDecrypt, protocol.ErrBadSecret, protocol.ErrReplayCache,
	protocol.ErrMessageID,
}

// TestKindNamesDocumented: §13 lists every error kind's vector name.
func TestKindNamesDocumented(t *testing.T) {
	doc, err := os.ReadFile("PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range allKinds {
		if name := protocol.KindName(&protocol.Error{Kind: k}); !strings.Contains(string(doc), "`"+name+"`") {
			t.Errorf("PROTOCOL.md does not name the error %s", name)
		}
	}
}
