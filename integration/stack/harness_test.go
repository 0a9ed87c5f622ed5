package stack

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// TestProgramFatalEndsDo: Fatalf ends the function Do runs and is
// returned; Close runs the cleanups last first and removes TempDir.
func TestProgramFatalEndsDo(t *testing.T) {
	p := NewProgram("unit", t.Logf)
	var order []int
	var dir string
	reached := false
	err := p.Do(func() {
		dir = p.TempDir()
		p.Cleanup(func() { order = append(order, 1) })
		p.Cleanup(func() { order = append(order, 2) })
		p.Fatalf("stop here")
		reached = true
	})
	if err == nil || !p.Failed() || reached {
		t.Fatalf("Do: err %v, failed %v, ran past Fatalf %v", err, p.Failed(), reached)
	}
	if err := p.Close(); err == nil {
		t.Error("Close forgot the failure")
	}
	if len(order) != 2 || order[0] != 2 || order[1] != 1 {
		t.Errorf("cleanups ran in order %v, want [2 1]", order)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("TempDir %s not removed: %v", dir, err)
	}
}

// TestProgramPanicPassesThrough: a panic that is not Fatalf's is not
// swallowed by Do.
func TestProgramPanicPassesThrough(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("the panic was swallowed")
		}
	}()
	_ = NewProgram("unit", nil).Do(func() { panic("boom") })
}

// TestWaitForFailsAfterTimeout: the TB fails naming what was awaited.
func TestWaitForFailsAfterTimeout(t *testing.T) {
	p := NewProgram("unit", nil)
	start := time.Now()
	if err := p.Do(func() { WaitFor(p, 100*time.Millisecond, "never", func() bool { return false }) }); err == nil {
		t.Fatal("WaitFor did not fail")
	}
	if time.Since(start) < 100*time.Millisecond {
		t.Error("WaitFor gave up before its timeout")
	}
	if !Eventually(time.Second, func() bool { return true }) {
		t.Error("Eventually of a true condition")
	}
}

// echo serves one line back on every connection.
func echo(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	return l.Addr().String()
}

func roundTrip(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err == nil && line != "ping\n" {
		err = errors.New("echo mismatch")
	}
	return err
}

// TestProxyDownUp: passing, then gone (nothing listens), then back on the
// same address.
func TestProxyDownUp(t *testing.T) {
	p := NewProxy(t, echo(t))
	if err := roundTrip(p.Addr()); err != nil {
		t.Fatalf("through the proxy: %v", err)
	}
	p.Down()
	if err := roundTrip(p.Addr()); err == nil {
		t.Fatal("the proxy still answers while down")
	}
	p.Up()
	if err := roundTrip(p.Addr()); err != nil {
		t.Fatalf("after Up: %v", err)
	}
}

// TestProxyUntrusted: a verifying client refuses the certificate and
// sends nothing; the proxy counts the attempt and no completed handshake.
func TestProxyUntrusted(t *testing.T) {
	p := NewProxy(t, echo(t), UntrustedCert([]string{"dc.test"}, []net.IP{net.IPv4(127, 0, 0, 1)}))
	p.SetUntrusted(true)
	_, err := tls.Dial("tcp", p.Addr(), &tls.Config{ServerName: "dc.test"})
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Fatalf("dial: %v, want an unknown authority", err)
	}
	WaitFor(t, 5*time.Second, "the attempt counted", func() bool { a, _, _ := p.Untrusted(); return a == 1 })
	if _, c, n := p.Untrusted(); c != 0 || n != 0 {
		t.Errorf("%d handshakes completed, %d bytes read; want none", c, n)
	}
	p.SetUntrusted(false)
	if err := roundTrip(p.Addr()); err != nil {
		t.Fatalf("passing again: %v", err)
	}
}

// TestScan: a registered secret on any surface fails the test, so does a
// surface that cannot be read; nothing registered, nothing to look for.
func TestScan(t *testing.T) {
	for _, tc := range []struct {
		name    string
		secret  string
		surface []byte
		readErr error
		fail    bool
	}{
		{"leak", "Pass!Word.1", []byte("log line Pass!Word.1 here"), nil, true},
		{"clean", "Pass!Word.1", []byte("log line"), nil, false},
		{"unreadable", "Pass!Word.1", []byte("log line"), errors.New("gone"), true},
		{"nothing produced", "Pass!Word.1", nil, nil, true},
		{"nothing registered", "", nil, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := NewProgram("unit", nil)
			e := &Env{tb: p}
			if tc.secret != "" {
				e.SecretBytes([]byte(tc.secret))
			}
			e.AddSurface("s", func() ([]byte, error) { return tc.surface, tc.readErr })
			e.scan()
			if p.Failed() != tc.fail {
				t.Errorf("failed %v, want %v: %v", p.Failed(), tc.fail, p.Err())
			}
		})
	}
}

// TestReadiness: checks by name, the critical ones listed.
func TestReadiness(t *testing.T) {
	r := Readiness{Checks: []ReadyCheck{{Name: "dc:x", Severity: "critical"}, {Name: "keys", OK: true, Severity: "info"}}}
	if c := r.Check("keys"); c == nil || !c.OK {
		t.Errorf("Check(keys) = %+v", c)
	}
	if r.Check("none") != nil {
		t.Error("Check of an unknown name")
	}
	if got := r.Critical(); len(got) != 1 || got[0] != "dc:x" {
		t.Errorf("Critical() = %v", got)
	}
}
