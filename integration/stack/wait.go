package stack

import (
	"io"
	"net/http"
	"time"
)

// WaitFor polls cond (every 50 ms) until it holds; the test fails when
// timeout passes first, naming what it waited for.
func WaitFor(tb TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	if !Eventually(timeout, cond) {
		tb.Fatalf("timed out after %s waiting for %s", timeout, what)
	}
}

// Eventually polls cond (every 50 ms) until it holds (true) or timeout
// passes (false), for a test that reports itself what did not happen.
func Eventually(timeout time.Duration, cond func() bool) bool {
	return poll(timeout, 50*time.Millisecond, cond)
}

// poll calls cond every tick until it holds (true) or timeout passes
// (false).
func poll(timeout, tick time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	t := time.NewTicker(tick)
	defer t.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		<-t.C
	}
	return true
}

// HTTPGet fetches url (10 s timeout) and returns up to 4 MiB of its body,
// whatever the status.
func HTTPGet(url string) ([]byte, error) {
	return httpGet(&http.Client{Timeout: 10 * time.Second}, url)
}

// httpGet is HTTPGet with client c.
func httpGet(c *http.Client, url string) ([]byte, error) {
	r, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer r.Body.Close()
	return io.ReadAll(io.LimitReader(r.Body, 4<<20))
}
