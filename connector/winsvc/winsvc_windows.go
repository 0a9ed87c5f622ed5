//go:build windows

package winsvc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/eventlog"
	"golang.org/x/sys/windows/svc/mgr"
)

// IsService reports whether the process was started by the Windows Service
// Control Manager.
func IsService() (bool, error) { return svc.IsWindowsService() }

// Run runs fn as the service name until fn returns. fn's context is
// cancelled when the SCM asks the service to stop or the system shuts down.
// A non-nil error from fn is returned and reported to the SCM as a
// service-specific exit code 1, so the recovery actions set by Install
// restart the service.
func Run(name string, fn func(ctx context.Context) error) error {
	h := &handler{run: fn}
	if err := svc.Run(name, h); err != nil {
		return errors.Join(fmt.Errorf("winsvc: run service %s: %w", name, err), h.err)
	}
	return h.err
}

type handler struct {
	run func(ctx context.Context) error
	err error
}

func (h *handler) Execute(_ []string, req <-chan svc.ChangeRequest, status chan<- svc.Status) (bool, uint32) {
	const accepts = svc.AcceptStop | svc.AcceptShutdown
	status <- svc.Status{State: svc.StartPending}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- h.run(ctx) }()
	status <- svc.Status{State: svc.Running, Accepts: accepts}

	var checkpoint uint32
	for {
		select {
		case err := <-done:
			h.err = err
			status <- svc.Status{State: svc.StopPending}
			if err != nil {
				return true, 1
			}
			return false, 0
		case c := <-req:
			switch c.Cmd {
			case svc.Interrogate:
				status <- c.CurrentStatus
			case svc.Stop, svc.Shutdown:
				checkpoint++
				status <- svc.Status{State: svc.StopPending, CheckPoint: checkpoint,
					WaitHint: uint32(StopWaitHint / time.Millisecond)}
				cancel()
			}
		}
	}
}

func connect() (*mgr.Mgr, error) {
	m, err := mgr.Connect()
	if err != nil {
		return nil, fmt.Errorf("winsvc: connect to the service manager (run as Administrator): %w", err)
	}
	return m, nil
}

// withService runs fn on the installed service name, with the service
// manager connected and the service open for the call.
func withService(name string, fn func(*mgr.Service) error) error {
	m, err := connect()
	if err != nil {
		return err
	}
	defer m.Disconnect()
	s, err := m.OpenService(name)
	if errors.Is(err, windows.ERROR_SERVICE_DOES_NOT_EXIST) {
		return fmt.Errorf("%w: %s", ErrNotInstalled, name)
	}
	if err != nil {
		return fmt.Errorf("winsvc: open service %s: %w", name, err)
	}
	defer s.Close()
	return fn(s)
}

// Install creates the service name running exePath with args, starting
// automatically (delayed) at boot unless o.Manual, restarting on failure,
// and registers name as an event log source.
func Install(name, exePath string, args []string, o InstallOptions) error {
	m, err := connect()
	if err != nil {
		return err
	}
	defer m.Disconnect()
	if s, err := m.OpenService(name); err == nil {
		s.Close()
		return fmt.Errorf("%w: %s", ErrAlreadyInstalled, name)
	}
	set, err := Settings(name, o)
	if err != nil {
		return err
	}
	cfg := mgr.Config{
		DisplayName:      set.DisplayName,
		Description:      set.Description,
		StartType:        mgr.StartAutomatic,
		DelayedAutoStart: true,
		ServiceStartName: set.ServiceStartName,
		Password:         "", // no account Settings accepts has a stored password
		Dependencies:     set.Dependencies,
		SidType:          windows.SERVICE_SID_TYPE_UNRESTRICTED,
	}
	if set.Start == StartManual {
		cfg.StartType, cfg.DelayedAutoStart = mgr.StartManual, false
	}
	s, err := m.CreateService(name, exePath, cfg, args...)
	if err != nil {
		return fmt.Errorf("winsvc: create service %s: %w", name, err)
	}
	defer s.Close()
	restart := []mgr.RecoveryAction{
		{Type: mgr.ServiceRestart, Delay: 5 * time.Second},
		{Type: mgr.ServiceRestart, Delay: 30 * time.Second},
		{Type: mgr.ServiceRestart, Delay: 2 * time.Minute},
	}
	if err := s.SetRecoveryActions(restart, uint32((24 * time.Hour).Seconds())); err != nil {
		return fmt.Errorf("winsvc: set recovery actions of %s: %w", name, err)
	}
	if err := s.SetRecoveryActionsOnNonCrashFailures(true); err != nil {
		return fmt.Errorf("winsvc: set recovery on failure exit of %s: %w", name, err)
	}
	_ = eventlog.Remove(name) // a stale source from an earlier install
	if err := eventlog.InstallAsEventCreate(name, eventlog.Error|eventlog.Warning|eventlog.Info); err != nil {
		return fmt.Errorf("winsvc: register event log source %s: %w", name, err)
	}
	return nil
}

// Uninstall marks the service for deletion (it goes once stopped) and
// removes its event log source.
func Uninstall(name string) error {
	return withService(name, func(s *mgr.Service) error {
		if err := s.Delete(); err != nil {
			return fmt.Errorf("winsvc: delete service %s: %w", name, err)
		}
		_ = eventlog.Remove(name) // absent when installed by other means
		return nil
	})
}

// Start starts the service and waits until it runs, stops (failed to
// start) or ctx ends.
func Start(ctx context.Context, name string) error {
	return withService(name, func(s *mgr.Service) error {
		if err := s.Start(); err != nil {
			if errors.Is(err, windows.ERROR_SERVICE_ALREADY_RUNNING) {
				return nil
			}
			return fmt.Errorf("winsvc: start service %s: %w", name, err)
		}
		st, err := waitFor(ctx, s, svc.Running, svc.Stopped)
		if err != nil {
			return err
		}
		if st.State == svc.Stopped {
			return fmt.Errorf("winsvc: service %s stopped while starting (exit code %d, service exit code %d): see the Application event log",
				name, st.Win32ExitCode, st.ServiceSpecificExitCode)
		}
		return nil
	})
}

// Stop asks the service to stop and waits until it has, or ctx ends.
func Stop(ctx context.Context, name string) error {
	return withService(name, func(s *mgr.Service) error {
		if _, err := s.Control(svc.Stop); err != nil {
			if errors.Is(err, windows.ERROR_SERVICE_NOT_ACTIVE) {
				return nil
			}
			return fmt.Errorf("winsvc: stop service %s: %w", name, err)
		}
		_, err := waitFor(ctx, s, svc.Stopped)
		return err
	})
}

// waitFor polls the service's state until it is one of states or ctx ends.
func waitFor(ctx context.Context, s *mgr.Service, states ...svc.State) (svc.Status, error) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		st, err := s.Query()
		if err != nil {
			return st, fmt.Errorf("winsvc: query service %s: %w", s.Name, err)
		}
		for _, want := range states {
			if st.State == want {
				return st, nil
			}
		}
		select {
		case <-ctx.Done():
			return st, fmt.Errorf("winsvc: waiting for service %s: %w", s.Name, ctx.Err())
		case <-tick.C:
		}
	}
}

// NewEventLogHandler returns a slog.Handler writing records at or above
// level to the Windows event log under source (registered by Install), and
// a function that closes the log.
func NewEventLogHandler(source string, level slog.Leveler) (slog.Handler, func() error, error) {
	el, err := eventlog.Open(source)
	if err != nil {
		return nil, nil, fmt.Errorf("winsvc: open event log source %s: %w", source, err)
	}
	return newEventHandler(el, level), el.Close, nil
}

// NewEventLogWriter returns a writer that sends each line written to it to
// the event log under source as an information event, and its close function.
func NewEventLogWriter(source string) (io.Writer, func() error, error) {
	el, err := eventlog.Open(source)
	if err != nil {
		return nil, nil, fmt.Errorf("winsvc: open event log source %s: %w", source, err)
	}
	return &lineWriter{w: el}, el.Close, nil
}

// AccountSID is the SID of the account a service of this name runs as:
// KnownAccountSID, else what Windows finds for the account's name.
func AccountSID(name, account string) (string, error) {
	if sid, ok := KnownAccountSID(name, account); ok {
		return sid, nil
	}
	sid, _, _, err := windows.LookupSID("", account)
	if err != nil {
		return "", fmt.Errorf("winsvc: look up account %s: %w", account, err)
	}
	return sid.String(), nil
}

// ProtectFolder creates dir if needed and sets its owner and DACL to the
// security descriptor sddl (FolderSDDL), protected from inheritance;
// Windows passes the DACL's inheritable ACEs on to the files and folders
// already inside.
func ProtectFolder(dir, sddl string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("winsvc: create %s: %w", dir, err)
	}
	sd, err := windows.SecurityDescriptorFromString(sddl)
	if err != nil {
		return fmt.Errorf("winsvc: security descriptor %q: %w", sddl, err)
	}
	owner, _, err := sd.Owner()
	if err != nil {
		return fmt.Errorf("winsvc: security descriptor %q: owner: %w", sddl, err)
	}
	dacl, _, err := sd.DACL()
	if err != nil {
		return fmt.Errorf("winsvc: security descriptor %q: DACL: %w", sddl, err)
	}
	info := windows.SECURITY_INFORMATION(windows.OWNER_SECURITY_INFORMATION | windows.DACL_SECURITY_INFORMATION | windows.PROTECTED_DACL_SECURITY_INFORMATION)
	if err := windows.SetNamedSecurityInfo(dir, windows.SE_FILE_OBJECT, info, owner, nil, dacl, nil); err != nil {
		return fmt.Errorf("winsvc: set the DACL of %s (run as Administrator): %w", dir, err)
	}
	return nil
}
