//go:build integration

package ldapx_test

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	shared "github.com/adwriteback/adwriteback/integration/stack"
	"github.com/adwriteback/adwriteback/integration/testdc"
	"github.com/adwriteback/adwriteback/ldapx"
)

// countingDialer is the real dialer, counting its dials per address.
type countingDialer struct {
	d     net.Dialer
	dials atomic.Int32
}

func (c *countingDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c.dials.Add(1)
	return c.d.DialContext(ctx, network, addr)
}

// TestProbeStates: against the Samba DC and an address where nothing
// listens, both unknown before the first probe; the probe makes the DC up
// (on the idle connection work left, without dialling again) and the dead
// one down with the error; the DC's rootDSE is cached by the probe.
func TestProbeStates(t *testing.T) {
	info := testdc.Ensure(t)
	dead := shared.FreeAddr(t)
	dialer := &countingDialer{}
	cl := newClient(t, info, func(c *ldapx.Config) {
		c.Servers = []string{info.LDAPSURL, "ldaps://" + dead}
		c.ServerName = info.Addr
		c.Dialer = dialer
	})
	for _, st := range cl.Servers() {
		if st.State != ldapx.DCUnknown {
			t.Fatalf("%s before any probe or use: %s, want unknown", st.URL, st.State)
		}
	}
	ctx := ctxT(t)
	if _, err := cl.FindUser(ctx, ldapx.UserRef{Kind: ldapx.RefSAM, Value: "alice"}); err != nil {
		t.Fatal(err)
	}
	before := dialer.dials.Load()
	start := time.Now()
	cl.ProbeDCs(ctx)
	st := cl.Servers()
	if st[0].State != ldapx.DCUp || st[0].LastProbe.Before(start) || st[0].BindLatency <= 0 {
		t.Errorf("the DC after a probe: %+v, want up with its probe time and latency", st[0])
	}
	if st[1].State != ldapx.DCDown || st[1].LastError == "" || st[1].LastProbe.Before(start) {
		t.Errorf("the dead address after a probe: %+v, want down with the error", st[1])
	}
	if got := dialer.dials.Load() - before; got != 1 {
		t.Errorf("the probe dialled %d times, want once (the dead address; the DC's idle connection reused)", got)
	}
	if r := cl.CachedRootDSE(); r == nil || r.DefaultNamingContext != info.BaseDN {
		t.Errorf("rootDSE not cached by the probe: %+v", r)
	}
}
