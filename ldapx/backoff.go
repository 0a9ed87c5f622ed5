package ldapx

import (
	"math/rand/v2"
	"time"
)

// Backoff is exponential backoff with full jitter and a cap, reset on
// success. Per DC: after a failure the DC is skipped until its retry time.
type Backoff struct {
	Initial time.Duration // default 500ms
	Max     time.Duration // default 30s
	// Jitter returns a value in [0,1); nil uses math/rand. Tests inject it.
	Jitter func() float64
}

func (b *Backoff) setDefaults() {
	if b.Initial <= 0 {
		b.Initial = 500 * time.Millisecond
	}
	if b.Max <= 0 {
		b.Max = 30 * time.Second
	}
	if b.Jitter == nil {
		b.Jitter = rand.Float64
	}
}

// Delay is the wait after the n-th consecutive failure (n >= 1): a random
// value between half and all of min(Max, Initial*2^(n-1)).
func (b *Backoff) Delay(n int) time.Duration {
	if n < 1 {
		return 0
	}
	d := b.Initial
	for i := 1; i < n && d < b.Max; i++ {
		d *= 2
	}
	if d > b.Max {
		d = b.Max
	}
	half := d / 2
	return half + time.Duration(b.Jitter()*float64(d-half))
}
