//go:build !windows

package cli

import (
	"os"
	"syscall"
)

// reloadSignals are the signals that make a running connector reload:
// SIGHUP (logrotate's postrotate, systemctl reload).
func reloadSignals() []os.Signal { return []os.Signal{syscall.SIGHUP} }
