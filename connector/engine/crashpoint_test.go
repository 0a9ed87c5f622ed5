//go:build !faultinject

package engine

import "testing"

// TestCrashPointOffInProductionBuild: without -tags faultinject the hook
// ignores its environment (a crash here would end the test binary).
func TestCrashPointOffInProductionBuild(t *testing.T) {
	t.Setenv("ADW_FAULT_CRASH_AT", "after_receive")
	t.Setenv("ADW_FAULT_CRASH_AFTER", "1")
	c, err := newCrashPoints()
	if err != nil {
		t.Fatal(err)
	}
	e := &Engine{crash: c}
	e.crashPoint("after_receive")
}
