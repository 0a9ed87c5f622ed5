package stack

import (
	"encoding/json"
	"io"
	"time"
)

// Readiness is the part of /readyz the tests read.
type Readiness struct {
	Ready  bool         `json:"ready"`
	Status string       `json:"status"`
	Checks []ReadyCheck `json:"checks"`
}

// ReadyCheck is one check of /readyz.
type ReadyCheck struct {
	Name     string `json:"name"`
	OK       bool   `json:"ok"`
	Severity string `json:"severity"`
	Detail   string `json:"detail"`
}

// Check is the check called name (nil if there is none).
func (r Readiness) Check(name string) *ReadyCheck {
	for i := range r.Checks {
		if r.Checks[i].Name == name {
			return &r.Checks[i]
		}
	}
	return nil
}

// Critical names the checks of critical severity.
func (r Readiness) Critical() []string {
	var out []string
	for _, c := range r.Checks {
		if c.Severity == "critical" {
			out = append(out, c.Name)
		}
	}
	return out
}

// Readyz fetches the connector's /readyz: status code, parsed report, raw
// body (code 0 and the error's text when the listener does not answer).
func (c *Connector) Readyz() (int, Readiness, string) {
	resp, err := c.pageClient().Get(c.URL("/readyz"))
	if err != nil {
		return 0, Readiness{}, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var r Readiness
	_ = json.Unmarshal(b, &r)
	return resp.StatusCode, r, string(b)
}

// WaitReady waits up to 90 s for /readyz to answer code and returns its
// report; the test fails if it does not.
func (c *Connector) WaitReady(code int) Readiness {
	tb := c.env.tb
	tb.Helper()
	var r Readiness
	var got int
	var body string
	ok := poll(90*time.Second, 100*time.Millisecond, func() bool {
		got, r, body = c.Readyz()
		return got == code
	})
	if !ok {
		tb.Fatalf("/readyz stayed %d (want %d): %s", got, code, body)
	}
	return r
}
