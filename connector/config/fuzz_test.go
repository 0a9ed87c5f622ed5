package config

import (
	"errors"
	"testing"
)

// FuzzParse: any input is either a valid configuration or a Problems list;
// never a panic, never an empty list of problems.
func FuzzParse(f *testing.F) {
	f.Add([]byte(minimal("/nonexistent")))
	f.Add([]byte("version: 1\ndomains: [{name: x, servers: [ldaps://a], scope: {ous: [a=b]}}]\n"))
	f.Add([]byte("{version: 1, queue: {name: q, auth: default, namespace: n}}"))
	f.Add([]byte("version: !!binary AAAA\n"))
	f.Add([]byte("- a\n- b\n"))
	f.Add([]byte("domains:\n  - &a {name: x}\n  - *a\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, func(string) string { return "" })
		if err == nil {
			if c == nil || c.Version != Version {
				t.Fatal("accepted without a valid version")
			}
			return
		}
		var probs Problems
		if errors.As(err, &probs) && len(probs) == 0 {
			t.Fatal("empty problem list")
		}
		_ = err.Error()
	})
}
