package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/adwriteback/adwriteback/connector/config"
	"github.com/adwriteback/adwriteback/connector/winsvc"
)

// serviceManager is what the service command needs from winsvc; tests
// replace it with a fake.
type serviceManager struct {
	isService func() (bool, error)
	run       func(name string, fn func(ctx context.Context) error) error
	install   func(name, exePath string, args []string, o winsvc.InstallOptions) error
	uninstall func(name string) error
	start     func(ctx context.Context, name string) error
	stop      func(ctx context.Context, name string) error
	logWriter func(source string) (io.Writer, func() error, error)
	logger    func(source string, level slog.Leveler) (slog.Handler, func() error, error)
	exe       func() (string, error)
	// copyBinary, accountSID and protect install the program and set the
	// folders' DACLs (winsvc.CopyBinary, AccountSID, ProtectFolder).
	copyBinary func(src, dst string) (bool, error)
	accountSID func(name, account string) (string, error)
	protect    func(dir, sddl string) error
}

func windowsManager() serviceManager {
	return serviceManager{
		isService: winsvc.IsService, run: winsvc.Run, install: winsvc.Install, uninstall: winsvc.Uninstall,
		start: winsvc.Start, stop: winsvc.Stop, logWriter: winsvc.NewEventLogWriter,
		logger: winsvc.NewEventLogHandler, exe: os.Executable,
		copyBinary: winsvc.CopyBinary, accountSID: winsvc.AccountSID, protect: winsvc.ProtectFolder,
	}
}

// ServiceCommand returns `adwriteback service install|uninstall|start|stop|run`,
// which manages the connector as a Windows service. "run" is what the Service
// Control Manager starts: it runs t's "run" command with the installed
// --config, stopping it when the service is stopped.
func ServiceCommand(t Table) Command {
	return serviceCommand(t, windowsManager())
}

const serviceUsage = `Usage: adwriteback service <action> [flags]   (Windows only)

Actions:
  install --config FILE [--name NAME] [--account ACCOUNT] [--manual]
            copy this program to %ProgramFiles%\adwriteback, give the configuration,
            key and journal folders a protected DACL, and register the service;
            it starts at boot and runs "adwriteback run --config FILE";
            --account: "NT SERVICE\NAME" (default), a gMSA 'DOMAIN\name$',
            LocalSystem, "NT AUTHORITY\NetworkService" (none needs a password)
  uninstall [--name NAME]   stop and remove the service
  start [--name NAME]       start the service and wait until it runs
  stop [--name NAME]        stop the service and wait until it has stopped
  run --config FILE [--name NAME]
            run as the service (used by the Service Control Manager, not by hand)
`

func serviceCommand(t Table, m serviceManager) Command {
	return Command{
		Name:    "service",
		Summary: "install, remove, start or stop the Windows service",
		Run: func(ctx context.Context, env *Env, args []string) error {
			if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
				fmt.Fprint(env.Stderr, serviceUsage)
				if len(args) == 0 {
					return Usage("service: an action is required")
				}
				return nil
			}
			action, rest := args[0], args[1:]
			fs := flag.NewFlagSet("service "+action, flag.ContinueOnError)
			name := fs.String("name", winsvc.DefaultName, "service name")
			var config, account *string
			var manual *bool
			timeout := fs.Duration("timeout", 2*time.Minute, "how long start and stop wait")
			switch action {
			case "install":
				config = fs.String("config", "", "configuration file (YAML), stored as an absolute path")
				account = fs.String("account", "", `account running the service: the virtual account "NT SERVICE\NAME" (default), a group managed service account "DOMAIN\name$", LocalSystem or "NT AUTHORITY\NetworkService"; never one with a password`)
				manual = fs.Bool("manual", false, "start manually instead of at boot")
			case "run":
				config = fs.String("config", "", "configuration file (YAML)")
			case "uninstall", "start", "stop":
			default:
				fmt.Fprint(env.Stderr, serviceUsage)
				return unknownWord("service: unknown action", action, "install", "uninstall", "start", "stop", "run")
			}
			if help, err := parseFlags(fs, env, rest); help || err != nil {
				return err
			}
			if *name == "" {
				return Usage("service %s: --name must not be empty", action)
			}
			switch action {
			case "install":
				return serviceInstall(env, m, *name, *config, *account, *manual)
			case "uninstall":
				sctx, cancel := context.WithTimeout(ctx, *timeout)
				defer cancel()
				if err := m.stop(sctx, *name); err != nil && !errors.Is(err, winsvc.ErrNotInstalled) {
					return fmt.Errorf("service uninstall: %w", err)
				}
				if err := m.uninstall(*name); err != nil {
					return fmt.Errorf("service uninstall: %w", err)
				}
				fmt.Fprintf(env.Stdout, "service %s removed\n", *name)
				return nil
			case "start", "stop":
				sctx, cancel := context.WithTimeout(ctx, *timeout)
				defer cancel()
				f, done := m.start, "running"
				if action == "stop" {
					f, done = m.stop, "stopped"
				}
				if err := f(sctx, *name); err != nil {
					return fmt.Errorf("service %s: %w", action, err)
				}
				fmt.Fprintf(env.Stdout, "service %s %s\n", *name, done)
				return nil
			default: // run
				return serviceRun(env, t, m, *name, *config)
			}
		},
	}
}

func serviceInstall(env *Env, m serviceManager, name, cfgPath, account string, manual bool) error {
	if cfgPath == "" {
		return Usage("service install: --config FILE is required")
	}
	abs, err := filepath.Abs(cfgPath)
	if err != nil {
		return fmt.Errorf("service install: %w", err)
	}
	acct, err := winsvc.ParseAccount(name, account)
	if err != nil {
		return &ExitError{Code: 2, Err: fmt.Errorf("service install: --account: %w", err)}
	}
	account = acct.Name
	plan, err := protectionPlan(env, m, name, account, abs)
	if err != nil {
		return err
	}
	exe, copied, err := installBinary(env, m)
	if err != nil {
		return fmt.Errorf("service install: %w", err)
	}
	for _, f := range plan {
		if err := m.protect(f.dir, f.sddl); err != nil {
			return fmt.Errorf("service install: protect %s: %w", f.dir, err)
		}
	}
	args := []string{"service", "run", "--name", name, "--config", abs}
	err = m.install(name, exe, args, winsvc.InstallOptions{
		DisplayName: "adwriteback password writeback",
		Description: "Applies password resets from the cloud SSPR service to Active Directory over LDAPS.",
		Account:     account,
		Manual:      manual,
	})
	if err != nil {
		return fmt.Errorf("service install: %w", err)
	}
	printInstalled(env, name, exe, abs, account, copied, plan)
	if acct.Kind == winsvc.ManagedService {
		printManagedAccountSteps(env, account)
	}
	return nil
}

// printManagedAccountSteps says what a group managed service account
// needs on this host before the service can start as it.
func printManagedAccountSteps(env *Env, account string) {
	_, sam, _ := strings.Cut(account, `\`)
	fmt.Fprintf(env.Stdout, `%s is a group managed service account: Windows fetches its password (the service stores none) and the service starts after Netlogon. Before starting it:
  - this computer must be allowed to retrieve its password (New-ADServiceAccount or Set-ADServiceAccount -PrincipalsAllowedToRetrieveManagedPassword), and
    Install-ADServiceAccount %s then Test-ADServiceAccount %s must say True here;
  - it needs "Log on as a service" here (secpol.msc, Local Policies, User Rights Assignment, or a GPO);
  - the connector binds as it with Kerberos: domains[].bind.method negotiate (see docs/operating.md, "Bind without a stored password").
`, account, strings.TrimSuffix(sam, "$"), strings.TrimSuffix(sam, "$"))
}

// protectedFolder is a folder service install sets a DACL on.
type protectedFolder struct {
	dir    string
	access winsvc.FolderAccess
	sddl   string
}

// protectionPlan reads the folders of the configuration at path (the
// configuration's and the keys' for reading, the journal's for
// modifying) and the security descriptor each gets for account, refusing
// a folder others share; nothing is changed yet.
func protectionPlan(env *Env, m serviceManager, name, account, path string) ([]protectedFolder, error) {
	folders, err := config.FoldersOf(path)
	if err != nil {
		return nil, &ExitError{Code: 2, Err: fmt.Errorf("service install: configuration file: %w", err)}
	}
	sid, err := m.accountSID(name, account)
	if err != nil {
		return nil, fmt.Errorf("service install: %w", err)
	}
	plan := []protectedFolder{{dir: folders.Config}}
	for _, d := range folders.Keys {
		plan = append(plan, protectedFolder{dir: d})
	}
	plan = append(plan, protectedFolder{dir: folders.Journal, access: winsvc.ModifyAccess})
	for i := range plan {
		if err := winsvc.CheckFolder(plan[i].dir, env.Getenv); err != nil {
			return nil, &ExitError{Code: 2, Err: fmt.Errorf("service install: %w", err)}
		}
		if plan[i].sddl, err = winsvc.FolderSDDL(sid, plan[i].access); err != nil {
			return nil, fmt.Errorf("service install: account %s: %w", account, err)
		}
	}
	return plan, nil
}

// installBinary copies this program to %ProgramFiles%\adwriteback (unless
// it runs from there) and returns the path the service is to run.
func installBinary(env *Env, m serviceManager) (string, bool, error) {
	pf := env.Getenv("ProgramFiles")
	if pf == "" {
		return "", false, errors.New("%ProgramFiles% is not set (service install is for Windows)")
	}
	exe, err := m.exe()
	if err != nil {
		return "", false, fmt.Errorf("locate this program: %w", err)
	}
	dst := winsvc.BinaryPath(pf)
	copied, err := m.copyBinary(exe, dst)
	return dst, copied, err
}

func printInstalled(env *Env, name, exe, cfgPath, account string, copied bool, plan []protectedFolder) {
	where := "already there"
	if copied {
		where = "copied there"
	}
	fmt.Fprintf(env.Stdout, "service %s installed: runs %q service run --name %s --config %q as %s\n", name, exe, name, cfgPath, account)
	fmt.Fprintf(env.Stdout, "program: %s (%s)\n", exe, where)
	fmt.Fprintf(env.Stdout, "folders given a protected DACL (nothing inherited; SYSTEM and Administrators full control):\n")
	for _, f := range plan {
		fmt.Fprintf(env.Stdout, "  %s  %s: %s  %s\n", f.dir, account, f.access, f.sddl)
	}
	fmt.Fprintf(env.Stdout, `Files already in them keep their owner and explicit entries: "adwriteback check-config --config %q" names any the connector refuses, with the icacls command that fixes it.
If audit.path is a file outside these folders, give %s modify access to its folder.
Then start it with: adwriteback service start --name %s
`, cfgPath, account, name)
}

func serviceRun(env *Env, t Table, m serviceManager, name, config string) error {
	if config == "" {
		return Usage("service run: --config FILE is required")
	}
	ok, err := m.isService()
	if err != nil {
		return fmt.Errorf("service run: %w", err)
	}
	if !ok {
		return Usage("service run is started by the Windows Service Control Manager; in a console use: adwriteback run --config FILE")
	}
	runCmd, found := t["run"]
	if !found {
		return errors.New("service run: this build has no run command")
	}
	// Under the SCM there is no console: logs go to the event log.
	senv := *env
	if w, closeW, err := m.logWriter(name); err == nil {
		defer closeW()
		senv.Stderr, senv.Stdout = w, w
	}
	if h, closeH, err := m.logger(name, slog.LevelInfo); err == nil {
		defer closeH()
		senv.Log = slog.New(h)
	}
	return m.run(name, func(ctx context.Context) error {
		return runCmd.Run(ctx, &senv, []string{"--config", config})
	})
}
