// Package winsvc owns running the connector as a Windows service: Run hands a
// function to the Service Control Manager and cancels its context on Stop or
// Shutdown; Install, Uninstall, Start and Stop manage the service entry
// (golang.org/x/sys/windows/svc/mgr); NewEventLogHandler sends log/slog
// records to the Windows event log; ProtectFolder sets the protected DACL
// FolderSDDL builds on a folder the service keeps files in, and
// CopyBinary puts the program where BinaryPath says. On other systems
// every function that needs Windows returns ErrNotWindows, so callers
// compile everywhere; the SDDL, the service SID, the folder checks and the
// copy are platform-neutral and tested everywhere.
package winsvc

import (
	"errors"
	"time"
)

// ErrNotWindows is returned by every operation on a system other than Windows.
var ErrNotWindows = errors.New("winsvc: Windows services are only available on Windows")

// ErrNotInstalled is returned when the named service does not exist.
var ErrNotInstalled = errors.New("winsvc: service is not installed")

// ErrAlreadyInstalled is returned by Install when the service exists.
var ErrAlreadyInstalled = errors.New("winsvc: service is already installed")

// DefaultName is the service name used when none is given.
const DefaultName = "adwriteback"

// StopWaitHint is what the service tells the SCM a stop may take; it must
// exceed the connector's shutdown grace.
const StopWaitHint = 60 * time.Second

// InstallOptions describes the service entry.
type InstallOptions struct {
	// DisplayName and Description are shown in services.msc.
	DisplayName string
	Description string
	// Account runs the service (ParseAccount): empty means the
	// per-service virtual account "NT SERVICE\<name>" (no password, least
	// privilege); also a group managed service account "DOMAIN\name$"
	// (no password: Windows fetches it), LocalSystem,
	// NT AUTHORITY\LocalService or NT AUTHORITY\NetworkService. A user
	// account, which would need a stored password, is refused.
	Account string
	// Manual start instead of automatic (delayed) start at boot.
	Manual bool
}

// VirtualAccount is the per-service virtual account of a service name.
func VirtualAccount(name string) string { return `NT SERVICE\` + name }
