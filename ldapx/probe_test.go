package ldapx

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/jonboulle/clockwork"
)

func testServer() *server {
	return &server{url: serverURL{raw: "ldaps://dc1.test"}, state: DCUnknown,
		backoff: backoff.ExponentialBackOff{InitialInterval: time.Second, Multiplier: 2, MaxInterval: time.Minute}}
}

func status(s *server) (DCState, int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state, s.failures, s.lastErr
}

// TestDCStateMachine: unknown until the first probe or use; up after a
// success, down after a failure; a failure of an attempt that began
// before the last success does not undo it; concurrent failures of one
// outage count once; a probe stamps its time, a use does not.
func TestDCStateMachine(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	boom := errors.New("connection refused")
	s := testServer()
	if st, _, _ := status(s); st != DCUnknown {
		t.Fatalf("new DC is %s, want unknown", st)
	}

	s.failed(t0, t0.Add(time.Second), boom, true)
	st, fails, err := status(s)
	if st != DCDown || fails != 1 || err != boom || !s.lastProbe.Equal(t0.Add(time.Second)) {
		t.Fatalf("after a failed probe: %s %d %v probe %v", st, fails, err, s.lastProbe)
	}
	if !s.retryAt.Equal(t0.Add(2 * time.Second)) {
		t.Errorf("retry at %v, want the first backoff step after the failure", s.retryAt)
	}
	s.failed(t0, t0.Add(2*time.Second), errors.New("the same outage"), false)
	if _, fails, err = status(s); fails != 1 || err != boom {
		t.Errorf("a concurrent failure of the same outage counted: %d %v", fails, err)
	}

	s.succeeded(t0.Add(3*time.Second), 5*time.Millisecond, false)
	st, fails, err = status(s)
	if st != DCUp || fails != 0 || err != nil || !s.retryAt.IsZero() || s.lastDelay != 5*time.Millisecond {
		t.Fatalf("after a success: %s %d %v retry %v latency %v", st, fails, err, s.retryAt, s.lastDelay)
	}
	if !s.lastProbe.Equal(t0.Add(time.Second)) {
		t.Errorf("a use moved the probe time to %v", s.lastProbe)
	}

	s.failed(t0.Add(2*time.Second), t0.Add(4*time.Second), boom, false)
	if st, _, _ := status(s); st != DCUp {
		t.Errorf("a failure of an attempt begun before the last success made the DC %s", st)
	}

	s.lost(boom)
	if st, fails, err := status(s); st != DCDown || err != boom || fails != 0 {
		t.Errorf("after a lost connection: %s %d %v", st, fails, err)
	}
	s.succeeded(t0.Add(5*time.Second), 0, true)
	if st, _, _ := status(s); st != DCUp || s.lastDelay != 5*time.Millisecond || !s.lastProbe.Equal(t0.Add(5*time.Second)) {
		t.Errorf("after a probe: %s latency %v probe %v", st, s.lastDelay, s.lastProbe)
	}
}

// TestProbeMarksDeadDCDown: a probe of a DC where nothing listens makes
// it down with the error, without any work asking for it; the DC after
// it in the list, equally dead, too (each DC is probed, not the first
// that answers); Servers reports both, with the probe's time.
func TestProbeMarksDeadDCDown(t *testing.T) {
	dead1, dead2 := closedAddr(t), closedAddr(t)
	clock := clockwork.NewFakeClockAt(time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC))
	cl, err := New(Config{Servers: []string{"ldaps://" + dead1, "ldaps://" + dead2}, BindDN: "x", BindPassword: "y",
		Clock: clock, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, st := range cl.Servers() {
		if st.State != DCUnknown {
			t.Fatalf("%s is %s before any probe, want unknown", st.URL, st.State)
		}
	}
	cl.ProbeDCs(context.Background())
	for _, st := range cl.Servers() {
		if st.State != DCDown || st.LastError == "" || !st.LastProbe.Equal(clock.Now()) || st.Failures != 1 {
			t.Errorf("%s after a probe: %+v, want down with the error", st.URL, st)
		}
	}
}

// TestProbeDoesNotWaitForThePool: with every slot of the pool in use
// (work in progress), a probe still runs, and takes no slot: a slow DC's
// probe never holds up work.
func TestProbeDoesNotWaitForThePool(t *testing.T) {
	dead := closedAddr(t)
	cl, err := New(Config{Servers: []string{"ldaps://" + dead}, BindDN: "x", BindPassword: "y", PoolSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	cl.pool.sem <- struct{}{} // the one slot, busy
	cl.ProbeDCs(context.Background())
	if st := cl.Servers()[0]; st.State != DCDown || st.LastProbe.IsZero() {
		t.Errorf("after a probe with the pool busy: %+v, want down", st)
	}
	if n := len(cl.pool.sem); n != 1 {
		t.Errorf("%d slots in use, want the one work holds", n)
	}
	<-cl.pool.sem
}

// closedAddr is a loopback address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
