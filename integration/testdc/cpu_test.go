package testdc

import "testing"

func TestParseStat(t *testing.T) {
	// A command name with a space and a parenthesis, as the kernel prints it.
	line := "4242 (ldap(1) x) S 1 4240 4240 0 -1 4194624 1234 0 0 0 731 269 0 0 20 0 1 0 99 1 1 18446744073709551615"
	got, err := parseStat(line)
	if err != nil {
		t.Fatal(err)
	}
	if got != (procStat{session: 4240, ticks: 731 + 269}) {
		t.Fatalf("parseStat = %+v, want session 4240, 1000 ticks", got)
	}
	for _, bad := range []string{"", "4242 (x) S 1 2", "4242 (x) S 1 4240 4240 0 -1 4194624 1234 0 0 0 a 269"} {
		if _, err := parseStat(bad); err == nil {
			t.Errorf("parseStat(%q): no error", bad)
		}
	}
}
