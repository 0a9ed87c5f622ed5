package ldapx

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// TestConcurrentFailuresCountOnce: callers that dial a failing DC at the
// same moment see one outage; it backs off one step, not one per caller
// (which would reach the 30 s cap after two rounds of a busy connector).
func TestConcurrentFailuresCountOnce(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var held sync.WaitGroup
	release := make(chan struct{})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			held.Done()
			go func() { <-release; c.Close() }() // fail every handshake together
		}
	}()
	cl, err := New(Config{Servers: []string{"ldaps://" + l.Addr().String()}, BindDN: "x", BindPassword: "y",
		Backoff: &backoff.ExponentialBackOff{InitialInterval: time.Hour, Multiplier: 2, MaxInterval: 4 * time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const callers = 4
	held.Add(callers)
	var wg sync.WaitGroup
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := cl.dial(ctx); err == nil {
				t.Error("dial to a failing DC succeeded")
			}
		}()
	}
	held.Wait() // all four handshakes are in progress
	close(release)
	wg.Wait()
	st := cl.Servers()
	if len(st) != 1 || st[0].Failures != 1 {
		t.Fatalf("status %+v: want 1 failure for one outage", st)
	}
	if d := time.Until(st[0].RetryAt); d > time.Hour || d < 55*time.Minute {
		t.Fatalf("retry in %v, want the first step (1h, not 2h)", d)
	}
}
