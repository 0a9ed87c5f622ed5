//go:build faultinject

package engine

import (
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

// This file is only in a binary built with -tags faultinject (the fault
// tests in integration/faults build one): crashPoint kills the process
// with SIGKILL at a named stage of the pipeline, so a test can stop the
// connector deterministically between two durable steps. The production
// build has the no-op in crashpoint.go instead.
//
// The environment, read once when the engine is built:
//
//	ADW_FAULT_CRASH_AT      the stage to crash at (after_receive, after_apply,
//	                        after_journal, after_report, before_settle);
//	                        empty: never crash
//	ADW_FAULT_CRASH_AFTER   crash on the Nth call at that stage (default 1)
//	ADW_FAULT_CRASH_MARKER  a file created just before the kill; while it
//	                        exists the process does not crash, so a restart
//	                        on the same directory runs to the end
const (
	envCrashAt     = "ADW_FAULT_CRASH_AT"
	envCrashAfter  = "ADW_FAULT_CRASH_AFTER"
	envCrashMarker = "ADW_FAULT_CRASH_MARKER"
)

// isCrashStage reports whether s is a point the stages mark (receive.go,
// apply.go, finish.go): a typo in ADW_FAULT_CRASH_AT would otherwise
// silently never crash.
func isCrashStage(s string) bool {
	switch s {
	case "after_receive", "after_apply", "after_journal", "after_report", "before_settle":
		return true
	}
	return false
}

type crashPoints struct {
	stage  string
	after  int64
	marker string
	calls  *atomic.Int64 // calls at stage so far
}

func newCrashPoints() (crashPoints, error) {
	c := crashPoints{stage: os.Getenv(envCrashAt), after: 1, marker: os.Getenv(envCrashMarker), calls: new(atomic.Int64)}
	if c.stage != "" && !isCrashStage(c.stage) {
		return crashPoints{}, fmt.Errorf("engine: %s=%q is not a crash stage", envCrashAt, c.stage)
	}
	if s := os.Getenv(envCrashAfter); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 1 {
			return crashPoints{}, fmt.Errorf("engine: %s=%q: want a count of 1 or more", envCrashAfter, s)
		}
		c.after = n
	}
	return c, nil
}

// crashPoint kills the process when stage is the configured one, on its
// Nth call, unless the marker file exists.
func (e *Engine) crashPoint(stage string) {
	c := e.crash
	if c.stage == "" || stage != c.stage || c.calls.Add(1) != c.after {
		return
	}
	if c.marker != "" {
		f, err := os.OpenFile(c.marker, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			// Crashed here once already (or the marker cannot be made):
			// carry on, so a restart on the same journal can finish.
			return
		}
		fmt.Fprintf(f, "%s %d\n", stage, c.after)
		f.Sync()
		f.Close()
	}
	fmt.Fprintf(os.Stderr, "faultinject: SIGKILL at stage %s (call %d)\n", stage, c.after)
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	for {
		// The signal is on its way; this goroutine must not go on.
		time.Sleep(time.Second)
	}
}
