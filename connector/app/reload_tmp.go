// TEMPORARY until wip-logs merges: delete this file when merging

package app

import (
	"context"
	"errors"
	"fmt"
)

// reloader is one registered reload step.
type reloader struct {
	name string
	fn   func(ctx context.Context) error
}

// OnReload registers fn to run, under name, on each Reload.
func (a *App) OnReload(name string, fn func(ctx context.Context) error) {
	a.reloadersTmp = append(a.reloadersTmp, reloader{name, fn})
}

// Reload runs every registered reloader in order, each independent of
// the others, and returns their errors joined.
func (a *App) Reload(ctx context.Context) error {
	var errs []error
	for _, r := range a.reloadersTmp {
		if err := r.fn(ctx); err != nil {
			errs = append(errs, fmt.Errorf("reload %s: %w", r.name, err))
		}
	}
	return errors.Join(errs...)
}
