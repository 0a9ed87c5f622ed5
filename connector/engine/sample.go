package engine

import (
	"sync"

	"github.com/jonboulle/clockwork"
	"golang.org/x/time/rate"
)

// sampler lets through at most a burst of perMinute events, refilled
// evenly over a minute, and counts the ones it holds back.
type sampler struct {
	clock clockwork.Clock
	lim   *rate.Limiter

	mu         sync.Mutex
	suppressed int
}

func newSampler(perMinute int, clock clockwork.Clock) *sampler {
	return &sampler{clock: clock, lim: rate.NewLimiter(rate.Limit(float64(perMinute)/60), perMinute)}
}

// take reports whether this event may be recorded and, if so, how many
// were held back since the last one that was.
func (s *sampler) take() (suppressed int, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.lim.AllowN(s.clock.Now(), 1) {
		s.suppressed++
		return 0, false
	}
	suppressed, s.suppressed = s.suppressed, 0
	return suppressed, true
}
