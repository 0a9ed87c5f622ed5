//go:build !faultinject

package engine

// crashPoints is empty in the production build: the fault-injection hook
// (crashpoint_faultinject.go, built only with -tags faultinject) is not in
// the binary, and crashPoint compiles to nothing.
type crashPoints struct{}

func newCrashPoints() (crashPoints, error) { return crashPoints{}, nil }

// crashPoint marks a stage of the pipeline where the fault-injection build
// can kill the process; here it does nothing.
func (e *Engine) crashPoint(string) {}
