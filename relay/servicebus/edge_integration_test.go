//go:build integration

package servicebus

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"github.com/adwriteback/adwriteback/integration/sbemu"
	"github.com/adwriteback/adwriteback/relay/proxy"
	"github.com/adwriteback/adwriteback/relay/proxy/proxytest"
	"github.com/adwriteback/adwriteback/relay/servicebus/wstest"
	"github.com/adwriteback/adwriteback/relay/transport"
)

// TestWebSocketProxyIdleCutsLoseNothing: the real SDK and the production dialer speak AMQP
// to the emulator over WSS (TLS verified for the namespace name, custom endpoint on
// loopback) through a real CONNECT proxy with basic authentication that cuts every tunnel
// idle for 300 ms, as corporate proxies do. Between commands the proxy cuts the connection;
// the Source reconnects through the proxy each time and every command is handled and
// completed: none lost, none dead-lettered.
func TestWebSocketProxyIdleCutsLoseNothing(t *testing.T) {
	noEnvProxy(t)
	e := setup(t, sbemu.QueueOptions{LockDuration: 5 * time.Second})
	ws := wstest.Start(t, testNamespace, wstest.PipeTo(e.emu.Endpoint()))
	px := proxytest.Start(t, proxytest.Options{Username: "svc-adw", Password: "right-proxy-pw", IdleTimeout: 300 * time.Millisecond})
	dials := NewDialTracker()
	c, err := NewClient(Config{
		Auth: AuthConnectionString,
		ConnectionString: fmt.Sprintf("Endpoint=sb://%s/;SharedAccessKeyName=%s;SharedAccessKey=%s",
			testNamespace, e.emu.KeyName(), e.emu.Key()),
		Transport: TransportWebSockets, CAFile: ws.CAFile, CustomEndpoint: ws.Addr(),
		Proxy:        proxy.Config{URL: px.URL(), Username: "svc-adw", Password: "right-proxy-pw"},
		Dials:        dials,
		RetryOptions: azservicebus.RetryOptions{MaxRetries: 3, RetryDelay: 50 * time.Millisecond, MaxRetryDelay: 500 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })

	var mu sync.Mutex
	handled := map[string]int{}
	cfg := fastConfig(e.queue)
	cfg.Dials = dials
	s, err := NewSource(c, cfg, transport.HandlerFunc(func(_ context.Context, d *transport.Delivery) transport.Disposition {
		mu.Lock()
		handled[d.MessageID]++
		mu.Unlock()
		return transport.Complete()
	}))
	if err != nil {
		t.Fatal(err)
	}
	run(t, s)

	const n = 4
	for i := range n {
		cuts := px.IdleCuts()
		id := fmt.Sprintf("idle-%d", i)
		e.send(t, id, "x", "", "")
		waitFor(t, 30*time.Second, id+" handled", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return handled[id] > 0
		})
		// the proxy cuts the quiet connection before the next command is sent
		waitFor(t, 30*time.Second, "an idle cut", func() bool { return px.IdleCuts() > cuts })
	}
	waitFor(t, 30*time.Second, "every command completed", func() bool {
		qs := e.state(t)
		return qs.Stats.Completed == n && qs.Active == 0 && qs.Locked == 0
	})
	if qs := e.state(t); qs.DeadLettered != 0 {
		t.Fatalf("dead-lettered %d", qs.DeadLettered)
	}
	if ws.Accepted() < n {
		t.Fatalf("%d WebSockets for %d idle cuts: the source did not reconnect through the proxy", ws.Accepted(), px.IdleCuts())
	}
	for _, target := range px.Targets() {
		if target != ws.Addr() {
			t.Fatalf("CONNECT to %s, want only the custom endpoint %s", target, ws.Addr())
		}
	}
	t.Logf("idle cuts %d, WebSockets %d, reconnects %d, handled %v", px.IdleCuts(), ws.Accepted(), s.Health().Reconnects, handled)
}

// TestWebSocketProxyCutMidCommandLosesNothing: the proxy cuts the connection while a
// command is being handled, so its settlement cannot go through; the command comes back
// (lock expiry, redelivery) and is completed: not lost, not dead-lettered.
func TestWebSocketProxyCutMidCommandLosesNothing(t *testing.T) {
	noEnvProxy(t)
	e := setup(t, sbemu.QueueOptions{LockDuration: 2 * time.Second})
	ws := wstest.Start(t, testNamespace, wstest.PipeTo(e.emu.Endpoint()))
	px := proxytest.Start(t, proxytest.Options{})
	c, err := NewClient(Config{
		Auth: AuthConnectionString,
		ConnectionString: fmt.Sprintf("Endpoint=sb://%s/;SharedAccessKeyName=%s;SharedAccessKey=%s",
			testNamespace, e.emu.KeyName(), e.emu.Key()),
		Transport: TransportWebSockets, CAFile: ws.CAFile, CustomEndpoint: ws.Addr(),
		Proxy:        proxy.Config{URL: px.URL()},
		RetryOptions: azservicebus.RetryOptions{MaxRetries: 3, RetryDelay: 50 * time.Millisecond, MaxRetryDelay: 500 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	var mu sync.Mutex
	deliveries := 0
	s, err := NewSource(c, fastConfig(e.queue), transport.HandlerFunc(func(_ context.Context, d *transport.Delivery) transport.Disposition {
		mu.Lock()
		deliveries++
		first := deliveries == 1
		mu.Unlock()
		if first {
			px.CutAll() // the settlement below has no connection to go over
		}
		return transport.Complete()
	}))
	if err != nil {
		t.Fatal(err)
	}
	run(t, s)
	e.send(t, "cut-1", "x", "", "")
	waitFor(t, 60*time.Second, "the command completed", func() bool {
		qs := e.state(t)
		return qs.Stats.Completed == 1 && qs.Active == 0 && qs.Locked == 0
	})
	if qs := e.state(t); qs.DeadLettered != 0 {
		t.Fatalf("dead-lettered %d", qs.DeadLettered)
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("deliveries %d, WebSockets %d, CONNECTs %d", deliveries, ws.Accepted(), len(px.Targets()))
	if ws.Accepted() < 2 {
		t.Fatalf("%d WebSockets: the source never reconnected through the proxy", ws.Accepted())
	}
}
