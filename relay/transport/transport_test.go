package transport

import (
	"errors"
	"fmt"
	"testing"
)

func TestSettlementString(t *testing.T) {
	for _, c := range []struct {
		s    Settlement
		want string
	}{
		{Settlement{Action: ActionComplete}, "completed"},
		{Settlement{Action: ActionAbandon}, "abandoned"},
		{Settlement{Action: ActionDeadLetter}, "dead_lettered"},
		{Settlement{Action: ActionComplete, Err: fmt.Errorf("renew: %w", ErrLockLost)}, "lock_lost"},
		{Settlement{Action: ActionAbandon, Err: errors.New("link detached")}, "settle_failed"},
		{Settlement{}, "unknown"},
	} {
		if got := c.s.String(); got != c.want {
			t.Errorf("%+v: %q, want %q", c.s, got, c.want)
		}
	}
}

func TestReportCallsTheHookOnce(t *testing.T) {
	var got []Settlement
	d := Complete()
	d.Report(Settlement{Action: ActionComplete}) // no hook: nothing happens
	d.Settled = func(s Settlement) { got = append(got, s) }
	d.Report(Settlement{Action: ActionComplete})
	if len(got) != 1 || got[0].Action != ActionComplete {
		t.Fatalf("hook saw %+v", got)
	}
}
