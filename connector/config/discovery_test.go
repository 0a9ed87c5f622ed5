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

// TestDiscoveryAllowAndVerification: discover_allow takes DNS names only
// (and only with discover), and verification cannot be turned off.
func TestDiscoveryAllowAndVerification(t *testing.T) {
	dir := files(t)
	src := strings.Replace(minimal(dir), "    tls:\n", "    discover: true\n    discover_allow: [dcs.other.test, 10.1.2.3]\n    tls:\n      insecure_skip_verify: true\n", 1)
	_, err := Parse([]byte(src), nil)
	if err == nil {
		t.Fatal("accepted")
	}
	msg := err.Error()
	for _, want := range []string{"domains[0].tls.insecure_skip_verify: not allowed with discover", `domains[0].discover_allow[1]: "10.1.2.3"`} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "discover_allow[0]") || strings.Contains(msg, "ca_file") {
		t.Errorf("a valid entry or the CA file reported:\n%s", msg)
	}
	src = strings.Replace(minimal(dir), "    tls:\n", "    discover_allow: [dcs.other.test]\n    tls:\n", 1)
	if _, err := Parse([]byte(src), nil); err == nil || !strings.Contains(err.Error(), "applies only with discover") {
		t.Errorf("discover_allow without discover: %v", err)
	}
}
