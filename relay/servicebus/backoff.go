package servicebus

import (
	"math/rand/v2"
	"time"
)

// Clock is the time source; tests inject a fake one.
type Clock interface {
	Now() time.Time
	// After returns a channel that receives once d has passed, and a stop function.
	After(d time.Duration) (<-chan time.Time, func() bool)
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }
func (realClock) After(d time.Duration) (<-chan time.Time, func() bool) {
	t := time.NewTimer(d)
	return t.C, t.Stop
}

// Backoff is exponential backoff with full jitter and a cap:
// delay(n) = Min + rand[0, min(Max, Min*Factor^n) - Min).
type Backoff struct {
	Min, Max time.Duration
	Factor   float64
	// Rand returns a float in [0,1); nil uses math/rand/v2.
	Rand func() float64
}

// Delay returns the wait before retry number n (0-based).
func (b Backoff) Delay(n int) time.Duration {
	minD, maxD, f := b.Min, b.Max, b.Factor
	if minD <= 0 {
		minD = 100 * time.Millisecond
	}
	if maxD < minD {
		maxD = minD
	}
	if f < 1 {
		f = 2
	}
	ceil := float64(minD)
	for i := 0; i < n && ceil < float64(maxD); i++ {
		ceil *= f
	}
	if ceil > float64(maxD) {
		ceil = float64(maxD)
	}
	r := b.Rand
	if r == nil {
		r = rand.Float64
	}
	return minD + time.Duration(r()*(ceil-float64(minD)))
}
