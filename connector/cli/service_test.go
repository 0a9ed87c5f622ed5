package cli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/adwriteback/adwriteback/connector/winsvc"
)

type fakeSCM struct {
	calls     []string
	installed struct {
		name, exe string
		args      []string
		opts      winsvc.InstallOptions
	}
	isService bool
	stopErr   error
	logs      bytes.Buffer
}

func (f *fakeSCM) manager() serviceManager {
	return serviceManager{
		isService: func() (bool, error) { return f.isService, nil },
		run: func(name string, fn func(ctx context.Context) error) error {
			f.calls = append(f.calls, "run "+name)
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // the SCM asked to stop at once
			return fn(ctx)
		},
		install: func(name, exe string, args []string, o winsvc.InstallOptions) error {
			f.calls = append(f.calls, "install "+name)
			f.installed.name, f.installed.exe, f.installed.args, f.installed.opts = name, exe, args, o
			return nil
		},
		uninstall: func(name string) error { f.calls = append(f.calls, "uninstall "+name); return nil },
		start:     func(ctx context.Context, name string) error { f.calls = append(f.calls, "start "+name); return nil },
		stop: func(ctx context.Context, name string) error {
			if _, ok := ctx.Deadline(); !ok {
				return errors.New("stop without a deadline")
			}
			f.calls = append(f.calls, "stop "+name)
			return f.stopErr
		},
		logWriter: func(string) (io.Writer, func() error, error) { return &f.logs, func() error { return nil }, nil },
		logger: func(string, slog.Leveler) (slog.Handler, func() error, error) {
			return slog.NewTextHandler(&f.logs, nil), func() error { return nil }, nil
		},
		exe: func() (string, error) { return `C:\Program Files\adwriteback\adwriteback.exe`, nil },
	}
}

func runService(t *testing.T, tbl Table, f *fakeSCM, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &Env{Stdout: &out, Stderr: &errb, Log: slog.New(slog.DiscardHandler), Getenv: func(string) string { return "" }}
	err := serviceCommand(tbl, f.manager()).Run(context.Background(), env, args)
	return out.String(), errb.String(), err
}

func TestServiceInstall(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte("version: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	f := &fakeSCM{}
	out, _, err := runService(t, Table{}, f, "install", "--config", "config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	in := f.installed
	if in.name != "adwriteback" || in.exe != `C:\Program Files\adwriteback\adwriteback.exe` {
		t.Errorf("installed %+v", in)
	}
	if got := strings.Join(in.args, " "); got != "service run --name adwriteback --config "+cfg {
		t.Errorf("service args %q", got)
	}
	if in.opts.Account != `NT SERVICE\adwriteback` || in.opts.Manual || in.opts.DisplayName == "" {
		t.Errorf("options %+v", in.opts)
	}
	for _, want := range []string{"service adwriteback installed", `icacls "` + dir + `" /grant "NT SERVICE\adwriteback:(OI)(CI)RX"`, "adwriteback service start"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	f = &fakeSCM{}
	if _, _, err := runService(t, Table{}, f, "install", "--config", cfg, "--name", "adw2", "--account", "LocalSystem", "--manual"); err != nil {
		t.Fatal(err)
	}
	if f.installed.name != "adw2" || f.installed.opts.Account != "LocalSystem" || !f.installed.opts.Manual {
		t.Errorf("installed %+v", f.installed)
	}
}

func TestServiceInstallErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"install"}, "--config FILE is required"},
		{[]string{"install", "--config", filepath.Join(t.TempDir(), "missing.yaml")}, "configuration file"},
		{[]string{"install", "--config", "x", "--bogus"}, "argument 3 is not a flag"},
		{[]string{"install", "--config", "x", "--name", ""}, "--name must not be empty"},
		{[]string{"frobnicate"}, `service: unknown action (not repeated here)`},
		{[]string{"instal"}, `did you mean "install"?`},
		{[]string{"start", "extra"}, `unexpected argument (1 given`},
		{nil, "an action is required"},
	} {
		f := &fakeSCM{}
		_, _, err := runService(t, Table{}, f, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) || ExitCode(err) != 2 || strings.Contains(err.Error(), "extra") {
			t.Errorf("%v: err %v (exit %d), want usage error with %q", tc.args, err, ExitCode(err), tc.want)
		}
		if len(f.calls) != 0 {
			t.Errorf("%v: called the service manager: %v", tc.args, f.calls)
		}
	}
}

func TestServiceStartStopUninstall(t *testing.T) {
	f := &fakeSCM{}
	for _, a := range [][]string{{"start"}, {"stop", "--name", "adw2"}, {"uninstall"}} {
		if _, _, err := runService(t, Table{}, f, a...); err != nil {
			t.Fatalf("%v: %v", a, err)
		}
	}
	if got := strings.Join(f.calls, ", "); got != "start adwriteback, stop adw2, stop adwriteback, uninstall adwriteback" {
		t.Errorf("calls: %s", got)
	}
	// Uninstalling a service that is not installed reports it.
	f = &fakeSCM{stopErr: winsvc.ErrNotInstalled}
	if _, _, err := runService(t, Table{}, f, "uninstall"); err != nil {
		t.Errorf("uninstall after not-installed stop: %v", err)
	}
	f = &fakeSCM{stopErr: errors.New("access denied")}
	if _, _, err := runService(t, Table{}, f, "uninstall"); err == nil || ExitCode(err) != 1 {
		t.Errorf("uninstall when stop fails: %v", err)
	}
	if strings.Contains(strings.Join(f.calls, ","), "uninstall") {
		t.Error("uninstalled although stop failed")
	}
}

func TestServiceRun(t *testing.T) {
	var gotArgs []string
	var ctxDone bool
	tbl := Table{"run": {Name: "run", Run: func(ctx context.Context, env *Env, args []string) error {
		gotArgs = args
		ctxDone = ctx.Err() != nil
		env.Log.Info("from run")
		io.WriteString(env.Stderr, "stderr line\n")
		return nil
	}}}
	f := &fakeSCM{isService: true}
	if _, _, err := runService(t, tbl, f, "run", "--config", `C:\adw\config.yaml`); err != nil {
		t.Fatal(err)
	}
	if strings.Join(gotArgs, " ") != `--config C:\adw\config.yaml` || !ctxDone {
		t.Errorf("run got %v, ctx cancelled %v", gotArgs, ctxDone)
	}
	if !strings.Contains(f.logs.String(), "from run") || !strings.Contains(f.logs.String(), "stderr line") {
		t.Errorf("logs not sent to the event log: %q", f.logs.String())
	}

	// Not under the SCM: a usage error that says what to do instead.
	f = &fakeSCM{}
	if _, _, err := runService(t, tbl, f, "run", "--config", "c.yaml"); err == nil || ExitCode(err) != 2 ||
		!strings.Contains(err.Error(), "adwriteback run --config FILE") {
		t.Errorf("run outside the SCM: %v", err)
	}
	// A build without the run command.
	f = &fakeSCM{isService: true}
	if _, _, err := runService(t, Table{}, f, "run", "--config", "c.yaml"); err == nil {
		t.Error("run without a run command succeeded")
	}
}

func TestServiceOutsideWindows(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("would talk to the real Service Control Manager")
	}
	var out, errb bytes.Buffer
	env := &Env{Stdout: &out, Stderr: &errb, Log: slog.New(slog.DiscardHandler)}
	err := ServiceCommand(Table{}).Run(context.Background(), env, []string{"start"})
	if !errors.Is(err, winsvc.ErrNotWindows) || ExitCode(err) != 1 || !strings.Contains(err.Error(), "only available on Windows") {
		t.Errorf("service start outside Windows: %v", err)
	}
}
