package doctor

import (
	"context"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/adwriteback/adwriteback/connector/config"
)

type srvAnswer []*net.SRV

func (a srvAnswer) LookupSRV(context.Context, string, string, string) (string, []*net.SRV, error) {
	return "", a, nil
}

// TestDiscoverDCsShowsDropped: the doctor's discovery check lists the SRV
// targets the connector drops (outside the domain, not allowed) as a
// warning, and checks only the others.
func TestDiscoverDCsShowsDropped(t *testing.T) {
	opts := Options{Timeout: time.Second, Resolver: srvAnswer{{Target: "dc1.adw.test."}, {Target: "dc9.evil-adw.test."},
		{Target: "dc2.branch.other.test."}}}
	d := &config.Domain{Name: "adw.test", Discover: true, DiscoverAllow: []string{"branch.other.test"}}
	checks, urls := discoverDCs(context.Background(), opts, d)
	if want := []string{"ldaps://dc1.adw.test:636", "ldaps://dc2.branch.other.test:636"}; !slices.Equal(urls, want) {
		t.Errorf("checked %v, want %v", urls, want)
	}
	var warned bool
	for _, c := range checks {
		if c.Status == Warn && strings.Contains(c.Detail, "dc9.evil-adw.test") && strings.Contains(c.Fix, "discover_allow") {
			warned = true
		}
	}
	if !warned {
		t.Errorf("no warning naming the dropped target: %+v", checks)
	}
}
