package app

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/adwriteback/adwriteback/connector/health"
	"github.com/adwriteback/adwriteback/connector/logevent"
)

// readinessInterval is how often the readiness watcher evaluates what
// /readyz evaluates.
const readinessInterval = 5 * time.Second

// readinessTimeout bounds one evaluation's snapshot.
const readinessTimeout = 5 * time.Second

// readinessWatch logs the connector's readiness changes, judged as /readyz
// judges them (health.Evaluate of a snapshot): "connector ready" (kind
// Ready) on the first ready evaluation and on each not-ready→ready
// transition, "connector not ready" (kind NotReady, naming the critical
// checks) on each ready→not-ready transition. A not-ready start is not
// logged: the connector has not been ready yet, and /readyz says why.
type readinessWatch struct {
	snapshot func(context.Context) health.Snapshot
	clock    clockwork.Clock
	log      *slog.Logger
	interval time.Duration
	ready    bool // at the last evaluation
}

// watchReadiness runs the readiness watcher until ctx ends.
func (a *App) watchReadiness(ctx context.Context) {
	w := &readinessWatch{snapshot: a.Snapshot, clock: a.clock, log: a.Log, interval: readinessInterval}
	w.run(ctx)
}

// run evaluates now and every interval until ctx ends.
func (w *readinessWatch) run(ctx context.Context) {
	t := w.clock.NewTicker(w.interval)
	defer t.Stop()
	w.evaluate(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.Chan():
			w.evaluate(ctx)
		}
	}
}

// evaluate takes one snapshot and logs a change of readiness. A snapshot
// cut short by the end of ctx (shutdown) is not judged: it would report
// a failure that is only the shutdown.
func (w *readinessWatch) evaluate(ctx context.Context) {
	sctx, cancel := context.WithTimeout(ctx, readinessTimeout)
	r := health.Evaluate(w.snapshot(sctx))
	cancel()
	if ctx.Err() != nil || r.Ready == w.ready {
		return
	}
	w.ready = r.Ready
	if r.Ready {
		logevent.Log(ctx, w.log, slog.LevelInfo, logevent.Ready, "connector ready", "status", r.Status)
		return
	}
	var critical []string
	for _, c := range r.Checks {
		if c.Severity == health.SeverityCritical {
			critical = append(critical, c.Name+": "+c.Detail)
		}
	}
	logevent.Log(ctx, w.log, slog.LevelWarn, logevent.NotReady, "connector not ready", "critical", strings.Join(critical, "; "))
}
