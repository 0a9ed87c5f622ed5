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
	if c, err = Parse([]byte(strings.Replace(minimal(dir), "results:\n", "results:\n  account_codes: uniform\n", 1)), nil); err != nil {
		t.Fatal(err)
	}
	if c.Results.AccountCodes != AccountCodesUniform {
		t.Errorf("set %q, want %q", c.Results.AccountCodes, AccountCodesUniform)
	}
	_, err = Parse([]byte(strings.Replace(minimal(dir), "results:\n", "results:\n  account_codes: vague\n", 1)), nil)
	var probs Problems
	if !errors.As(err, &probs) || !strings.Contains(err.Error(), `results.account_codes: "vague": use distinct or uniform`) {
		t.Errorf("got %v", err)
	}
}

// TestResultsReplyQueue: reply_queue mode needs a reply queue with a
// Service Bus name; https mode does not.
func TestResultsReplyQueue(t *testing.T) {
	dir := files(t)
	for _, tc := range []struct{ results, want string }{
		{"results:\n  reply_queue: results\n", ""},
		{"results: {}\n", "results.reply_queue: required in reply_queue mode"},
		{"results:\n  reply_queue: bad*name\n", `results.reply_queue: "bad*name" is not a Service Bus queue name`},
		{"results:\n  reply_queue: -results\n", "is not a Service Bus queue name"},
		{"results:\n  mode: https\n  https: {url: https://sspr.example.com/r}\n", ""},
	} {
		doc := strings.Replace(minimal(dir), "results:\n  reply_queue: results\n", tc.results, 1)
		_, err := Parse([]byte(doc), nil)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v", tc.results, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q: got %v, want %q", tc.results, err, tc.want)
		}
	}
}
