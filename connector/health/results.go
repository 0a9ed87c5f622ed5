package health

import (
	"fmt"
	"sync"
	"time"
)

// DefaultUndeliverableAfter is how long results may fail to be delivered
// before the connector is not ready, when Results.UndeliverableAfter is 0.
const DefaultUndeliverableAfter = 2 * time.Minute

// Results is the result delivery channel as the connector last used it:
// a dependency like the queue it reads commands from.
type Results struct {
	// Channel is where results go: reply_queue or https.
	Channel string
	// UndeliverableAfter is how long deliveries may fail, with none
	// succeeding, before the check is critical (0: the default).
	UndeliverableAfter time.Duration
	// LastDelivered is the last successful delivery (zero before one).
	LastDelivered time.Time
	// FailingSince is the first failed delivery since LastDelivered (zero
	// when none failed since); Failures counts them and LastError is the
	// last one's error.
	FailingSince time.Time
	Failures     int
	LastError    string
}

// Deliveries keeps the state of result delivery for Results: the wiring
// code tells it of every attempt. It is safe for concurrent use.
type Deliveries struct {
	mu sync.Mutex
	r  Results
}

// NewDeliveries returns the delivery state of a channel whose deliveries
// may fail for after before results are reported undeliverable.
func NewDeliveries(channel string, after time.Duration) *Deliveries {
	return &Deliveries{r: Results{Channel: channel, UndeliverableAfter: after}}
}

// Delivered records an attempt at at: err nil when the result was
// delivered, which clears the failures.
func (d *Deliveries) Delivered(at time.Time, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err == nil {
		d.r.LastDelivered, d.r.FailingSince, d.r.Failures, d.r.LastError = at, time.Time{}, 0, ""
		return
	}
	if d.r.Failures == 0 {
		d.r.FailingSince = at
	}
	d.r.Failures++
	d.r.LastError = err.Error()
}

// Results returns the current state.
func (d *Deliveries) Results() Results {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.r
}

// resultsCheck: OK while no delivery failed since the last success; a
// warning once one failed; critical when none succeeded for
// UndeliverableAfter since the first failure, however long ago the last
// success was (a quiet connector is not a failing one).
func resultsCheck(now time.Time, r Results) Check {
	after := r.UndeliverableAfter
	if after <= 0 {
		after = DefaultUndeliverableAfter
	}
	channel := r.Channel
	if channel == "" {
		channel = "results"
	}
	var c Check
	switch {
	case r.Failures == 0:
		detail := "delivering over " + channel
		if !r.LastDelivered.IsZero() {
			detail += ", last delivered " + r.LastDelivered.UTC().Format(time.RFC3339)
		} else {
			detail += ", none sent yet"
		}
		c = ok("results", "results", detail)
	default:
		failing := now.Sub(r.FailingSince)
		plural := "deliveries"
		if r.Failures == 1 {
			plural = "delivery"
		}
		detail := fmt.Sprintf("%d failed %s over %s since %s", r.Failures, plural, channel,
			r.FailingSince.UTC().Format(time.RFC3339))
		if r.LastError != "" {
			detail += ", last: " + r.LastError
		}
		if failing >= after {
			c = bad("results", "results", SeverityCritical, fmt.Sprintf(
				"no result delivered for %s (results.undeliverable_after %s): %s", roundDuration(failing), after, detail))
		} else {
			c = bad("results", "results", SeverityWarning, detail)
		}
	}
	c.LastOK = r.LastDelivered
	return c
}
