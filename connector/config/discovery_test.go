package config

import (
	"errors"
	"strings"
	"testing"
)

// TestDiscoveryNeedsCAFile: with discover on, the DCs come from DNS, so
// their certificates must be checked against the domain's own CA, never
// the system roots: tls.ca_file is required, and the problem is listed
// with every other one.
func TestDiscoveryNeedsCAFile(t *testing.T) {
	dir := files(t)
	src := strings.Replace(minimal(dir), "    tls:\n      ca_file: "+dir+"/ca.pem\n", "    discover: true\n", 1)
	src = strings.Replace(src, "name: commands", `name: ""`, 1)
	_, err := Parse([]byte(src), nil)
	var probs Problems
	if !errors.As(err, &probs) {
		t.Fatalf("got %v, want problems", err)
	}
	msg := err.Error()
	for _, want := range []string{"domains[0].tls.ca_file: required with discover", "queue.name: required"} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in:\n%s", want, msg)
		}
	}
}
