//go:build !windows

package winsvc

import (
	"context"
	"io"
	"log/slog"
)

// IsService reports whether the process was started by the Windows Service
// Control Manager: never, here.
func IsService() (bool, error) { return false, nil }

// Run is only available on Windows.
func Run(name string, run func(ctx context.Context) error) error { return ErrNotWindows }

// Install is only available on Windows.
func Install(name, exePath string, args []string, o InstallOptions) error { return ErrNotWindows }

// Uninstall is only available on Windows.
func Uninstall(name string) error { return ErrNotWindows }

// Start is only available on Windows.
func Start(ctx context.Context, name string) error { return ErrNotWindows }

// Stop is only available on Windows.
func Stop(ctx context.Context, name string) error { return ErrNotWindows }

// NewEventLogHandler is only available on Windows.
func NewEventLogHandler(source string, level slog.Leveler) (slog.Handler, func() error, error) {
	return nil, nil, ErrNotWindows
}

// NewEventLogWriter is only available on Windows.
func NewEventLogWriter(source string) (io.Writer, func() error, error) {
	return nil, nil, ErrNotWindows
}

// AccountSID is the SID of the account a service of this name runs as
// (KnownAccountSID); any other account can only be looked up on Windows.
func AccountSID(name, account string) (string, error) {
	if sid, ok := KnownAccountSID(name, account); ok {
		return sid, nil
	}
	return "", ErrNotWindows
}

// ProtectFolder is only available on Windows.
func ProtectFolder(dir, sddl string) error { return ErrNotWindows }
