package testdc

import (
	"testing"
	"time"
)

func TestStatSession(t *testing.T) {
	// A command name with a space and a parenthesis, as the kernel prints it.
	line := "4242 (ldap(1) x) S 1 4240 4240 0 -1 4194624 1234 0 0 0 731 269 0 0 20 0 1 0 99 1 1 18446744073709551615"
	got, err := statSession(line)
	if err != nil {
		t.Fatal(err)
	}
	if got != 4240 {
		t.Fatalf("statSession = %d, want 4240", got)
	}
	for _, bad := range []string{"", "4242 (x) S 1 2", "4242 (x) S 1 4240 x 0"} {
		if _, err := statSession(bad); err == nil {
			t.Errorf("statSession(%q): no error", bad)
		}
	}
}

func TestParseSchedstat(t *testing.T) {
	got, err := parseSchedstat("360391466 334715384 136\n")
	if err != nil {
		t.Fatal(err)
	}
	if want := (Usage{CPU: 360391466 * time.Nanosecond, Waited: 334715384 * time.Nanosecond}); got != want {
		t.Fatalf("parseSchedstat = %+v, want %+v", got, want)
	}
	if d := got.Sub(Usage{CPU: time.Millisecond, Waited: time.Millisecond}); d.CPU != got.CPU-time.Millisecond || d.Waited != got.Waited-time.Millisecond {
		t.Fatalf("Sub = %+v", d)
	}
	for _, bad := range []string{"", "12", "a 1 1", "1 b 1"} {
		if _, err := parseSchedstat(bad); err == nil {
			t.Errorf("parseSchedstat(%q): no error", bad)
		}
	}
}
