//go:build windows

package cli

import "os"

// reloadSignals is empty on Windows: there is no SIGHUP, and the event log
// has nothing to reopen (restart the service to reload).
func reloadSignals() []os.Signal { return nil }
