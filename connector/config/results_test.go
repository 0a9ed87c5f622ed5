package config

import (
	"errors"
	"strings"
	"testing"
	"time"
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

// TestStatusSection: off by default with a 60s interval; a queue, an
// interval and an instance are checked, every problem at its key.
func TestStatusSection(t *testing.T) {
	dir := files(t)
	c, err := Parse([]byte(minimal(dir)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Status.Queue != "" || c.Status.Interval != time.Minute || c.Status.Instance != "" {
		t.Errorf("defaults: %+v", c.Status)
	}
	c, err = Parse([]byte(minimal(dir)+"status: {queue: writeback-status, interval: 1s, instance: dc-site-1}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Status.Queue != "writeback-status" || c.Status.Interval != time.Second || c.Status.Instance != "dc-site-1" {
		t.Errorf("set: %+v", c.Status)
	}
	_, err = Parse([]byte(minimal(dir)+"status: {queue: \"bad queue\", interval: 1500ms, instance: \"a b\"}\n"), nil)
	for _, want := range []string{"status.queue", "status.interval", "status.instance"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want a problem at %s, got %v", want, err)
		}
	}
	if _, err := Parse([]byte(minimal(dir)+"status: {interval: 2h}\n"), nil); err == nil || !strings.Contains(err.Error(), "status.interval") {
		t.Errorf("2h accepted: %v", err)
	}
	if _, err := Parse([]byte(minimal(dir)+"status: {queu: x}\n"), nil); err == nil {
		t.Error("unknown key accepted")
	}
}

// TestUndeliverableAfter: 2m by default; 1s to 24h.
func TestUndeliverableAfter(t *testing.T) {
	dir := files(t)
	c, err := Parse([]byte(minimal(dir)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Results.UndeliverableAfter != 2*time.Minute {
		t.Errorf("default %s, want 2m", c.Results.UndeliverableAfter)
	}
	set := func(v string) string {
		return strings.Replace(minimal(dir), "  reply_queue: results\n", "  reply_queue: results\n  undeliverable_after: "+v+"\n", 1)
	}
	c, err = Parse([]byte(set("5s")), nil)
	if err != nil || c.Results.UndeliverableAfter != 5*time.Second {
		t.Fatalf("5s: %v, %v", c, err)
	}
	for _, bad := range []string{"500ms", "25h", "-1s"} {
		if _, err := Parse([]byte(set(bad)), nil); err == nil || !strings.Contains(err.Error(), "results.undeliverable_after") {
			t.Errorf("%s accepted: %v", bad, err)
		}
	}
}
