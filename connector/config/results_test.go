package config

import (
	"errors"
	"strings"
	"testing"
)

// TestResultsAccountCodes: results.account_codes is distinct unless set,
// uniform when set so, and anything else is a problem at its path.
func TestResultsAccountCodes(t *testing.T) {
	dir := files(t)
	c, err := Parse([]byte(minimal(dir)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Results.AccountCodes != AccountCodesDistinct {
		t.Errorf("default %q, want %q", c.Results.AccountCodes, AccountCodesDistinct)
	}
	if c, err = Parse([]byte(minimal(dir)+"results: {account_codes: uniform}\n"), nil); err != nil {
		t.Fatal(err)
	}
	if c.Results.AccountCodes != AccountCodesUniform {
		t.Errorf("set %q, want %q", c.Results.AccountCodes, AccountCodesUniform)
	}
	_, err = Parse([]byte(minimal(dir)+"results: {account_codes: vague}\n"), nil)
	var probs Problems
	if !errors.As(err, &probs) || !strings.Contains(err.Error(), `results.account_codes: "vague": use distinct or uniform`) {
		t.Errorf("got %v", err)
	}
}
