package ldapx

import (
	"strings"
	"testing"
)

// TestDiscoveryNeedsCA: a discovering client never trusts the system
// roots for a DC DNS named: without a CA it is a configuration error.
func TestDiscoveryNeedsCA(t *testing.T) {
	_, err := New(Config{Domain: "adw.test", Discover: true, BindDN: "svc", BindPassword: "x"})
	if err == nil || !strings.Contains(err.Error(), "CA") {
		t.Fatalf("New without a CA and with discovery: %v, want a configuration error naming the CA", err)
	}
}
