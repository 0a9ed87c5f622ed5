package bench

import (
	"slices"
	"time"
)

// Latencies summarises durations.
type Latencies struct {
	P50, P99, Max time.Duration
}

func summarise(d []time.Duration) Latencies {
	if len(d) == 0 {
		return Latencies{}
	}
	s := slices.Clone(d)
	slices.Sort(s)
	at := func(q float64) time.Duration {
		i := int(q*float64(len(s))+0.5) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	return Latencies{P50: at(0.50), P99: at(0.99), Max: s[len(s)-1]}
}
