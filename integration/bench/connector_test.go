package bench

import (
	"context"
	"testing"
	"time"
)

// TestConnectorBoundCompletes checks the benchmark itself: every command
// of a small burst goes through the real engine and succeeds in the
// journal (no timing is asserted).
func TestConnectorBoundCompletes(t *testing.T) {
	res, err := ConnectorBound(context.Background(), ConnectorOptions{N: 300, Workers: 8, Users: 20, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if res.Succeeded != 300 || res.CryptoN == 0 || res.PerSec <= 0 {
		t.Fatalf("%+v", res)
	}
}

// BenchmarkConnectorHandle: b.N commands through the engine on one core
// with durable journal writes.
func BenchmarkConnectorHandle(b *testing.B) {
	n := max(b.N, 100)
	b.StopTimer()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	res, err := ConnectorBound(ctx, ConnectorOptions{N: n, Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(res.Wall.Nanoseconds())/float64(n), "ns/cmd")
	b.ReportMetric(res.PerSec, "cmds/s")
	b.ReportMetric(float64(res.Latency.P99.Microseconds()), "p99-µs")
	b.ReportMetric(float64(res.CryptoPerCmd.Nanoseconds()), "crypto-ns/cmd")
}
