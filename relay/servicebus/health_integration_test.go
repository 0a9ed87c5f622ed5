//go:build integration

package servicebus

import (
	"context"
	"testing"
	"time"

	"github.com/adwriteback/adwriteback/integration/sbemu"
	"github.com/adwriteback/adwriteback/relay/transport"
)

// An idle Source's health turns up as soon as its link is attached again after an outage, not
// at the next idle receive's deadline: ReceiveTimeout is left at its 30 s default and every
// wait below is bounded far under it.
func TestSourceHealthUpSoonAfterOutage(t *testing.T) {
	e := setup(t, sbemu.QueueOptions{})
	cfg := fastConfig(e.queue)
	cfg.ReceiveTimeout, cfg.WatchdogGrace = 0, 0 // defaults: 30 s + 15 s
	s, err := NewSource(e.client, cfg, transport.HandlerFunc(func(ctx context.Context, d *transport.Delivery) transport.Disposition { return transport.Complete() }))
	if err != nil {
		t.Fatal(err)
	}
	if s.cfg.ReceiveTimeout != 30*time.Second {
		t.Fatalf("receive timeout %s", s.cfg.ReceiveTimeout)
	}
	run(t, s)
	const bound = 10 * time.Second
	up := func() bool { return s.Health().State == LinkUp }
	down := func() bool { return s.Health().State == LinkDown }
	waitFor(t, bound, "link up at start", up)

	ctx := context.Background()
	if err := e.emu.StopListener(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, bound, "link down while the emulator is stopped", down)
	if err := e.emu.StartListener(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, bound, "link up after the emulator restarted", up)

	// (after a detach the link is down only briefly: wait for the failure to be recorded)
	detached := time.Now()
	if _, err := e.emu.DetachLinks(ctx, e.queue); err != nil {
		t.Fatal(err)
	}
	waitFor(t, bound, "a failure recorded for the forced detach", func() bool { return s.Health().LastErrorAt.After(detached) })
	waitFor(t, bound, "link up after re-attaching", up)
	if h := s.Health(); !h.LastReceive.IsZero() {
		// no receive call has reached its deadline yet: up came from the re-attach
		t.Fatalf("health %+v", h)
	}
}
