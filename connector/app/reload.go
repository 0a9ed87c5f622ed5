package app

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// reloaders are what App.Reload runs, in the order registered.
type reloaders struct {
	mu   sync.Mutex
	list []reloader
}

type reloader struct {
	name string
	fn   func(ctx context.Context) error
}

// OnReload registers fn to run on each Reload (SIGHUP on Unix), after the
// ones registered before it. name says what it reloads in the log and in
// Reload's error.
func (a *App) OnReload(name string, fn func(ctx context.Context) error) {
	a.reload.mu.Lock()
	defer a.reload.mu.Unlock()
	a.reload.list = append(a.reload.list, reloader{name: name, fn: fn})
}

// Reload runs every registered reloader in order. They are independent:
// one failing does not skip the next; every failure is logged and the
// joined errors returned. Concurrent Reloads run one after the other.
func (a *App) Reload(ctx context.Context) error {
	a.reload.mu.Lock()
	defer a.reload.mu.Unlock()
	var errs []error
	for _, r := range a.reload.list {
		if err := r.fn(ctx); err != nil {
			a.Log.Error("reload failed; the previous state is kept", "what", r.name, "err", err)
			errs = append(errs, fmt.Errorf("reload %s: %w", r.name, err))
			continue
		}
		a.Log.Info("reloaded", "what", r.name)
	}
	return errors.Join(errs...)
}
