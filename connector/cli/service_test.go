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
	env       map[string]string // the environment (ProgramFiles, ...)
	exePath   string            // this program ("": /build/adwriteback.exe)
	protected map[string]string // folder: SDDL set
	protErr   error
	sidErr    error
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
		exe: func() (string, error) {
			if f.exePath != "" {
				return f.exePath, nil
			}
			return "/build/adwriteback.exe", nil
		},
		copyBinary: func(src, dst string) (bool, error) {
			f.calls = append(f.calls, "copy "+src+" "+dst)
			return src != dst, nil
		},
		accountSID: func(name, account string) (string, error) {
			if f.sidErr != nil {
				return "", f.sidErr
			}
			if sid, ok := winsvc.KnownAccountSID(name, account); ok {
				return sid, nil
			}
			return "S-1-5-21-1-2-3-1104", nil
		},
		protect: func(dir, sddl string) error {
			f.calls = append(f.calls, "protect "+dir)
			if f.protected == nil {
				f.protected = map[string]string{}
			}
			f.protected[dir] = sddl
			return f.protErr
		},
	}
}

func runService(t *testing.T, tbl Table, f *fakeSCM, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &Env{Stdout: &out, Stderr: &errb, Log: slog.New(slog.DiscardHandler), Getenv: func(k string) string { return f.env[k] }}
	err := serviceCommand(tbl, f.manager()).Run(context.Background(), env, args)
	return out.String(), errb.String(), err
}

// installLayout writes a configuration whose keys and journal have
// folders of their own under dir and returns its path and a fake SCM
// whose %ProgramFiles% is dir/pf.
func installLayout(t *testing.T, dir string) (string, *fakeSCM) {
	t.Helper()
	cfg := filepath.Join(dir, "config.yaml")
	text := strings.ReplaceAll("version: 1\nkeys:\n  connector: [DIR/keys/connector.key.json]\n  senders: [DIR/sender.pub.json]\njournal:\n  path: DIR/journal/journal.db\n", "DIR", dir)
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg, &fakeSCM{env: map[string]string{"ProgramFiles": filepath.Join(dir, "pf"), "ProgramData": "/programdata"}}
}

// TestServiceInstall: install copies the program under %ProgramFiles%
// and registers that copy, gives the configuration and key folders a
// protected DACL with read for the service's virtual account and the
// journal folder one with modify, then registers the service: in that
// order, so a failure leaves no service that runs unprotected.
func TestServiceInstall(t *testing.T) {
	dir := t.TempDir()
	cfg, f := installLayout(t, dir)
	t.Chdir(dir)
	out, _, err := runService(t, Table{}, f, "install", "--config", "config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "pf", "adwriteback", "adwriteback.exe")
	keys, journal := filepath.Join(dir, "keys"), filepath.Join(dir, "journal")
	want := []string{"copy /build/adwriteback.exe " + exe, "protect " + dir, "protect " + keys, "protect " + journal, "install adwriteback"}
	if got := strings.Join(f.calls, "\n"); got != strings.Join(want, "\n") {
		t.Errorf("calls:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	in := f.installed
	if in.name != "adwriteback" || in.exe != exe {
		t.Errorf("installed %+v", in)
	}
	if got := strings.Join(in.args, " "); got != "service run --name adwriteback --config "+cfg {
		t.Errorf("service args %q", got)
	}
	if in.opts.Account != `NT SERVICE\adwriteback` || in.opts.Manual || in.opts.DisplayName == "" {
		t.Errorf("options %+v", in.opts)
	}
	svc := "S-1-5-80-2093958564-72526658-1826821448-3966065631-2820160711" // sc showsid adwriteback
	read := "O:BAD:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;0x1200a9;;;" + svc + ")"
	modify := "O:BAD:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;0x1301bf;;;" + svc + ")"
	for d, sddl := range map[string]string{dir: read, keys: read, journal: modify} {
		if f.protected[d] != sddl {
			t.Errorf("%s: SDDL %q, want %q", d, f.protected[d], sddl)
		}
	}
	for _, want := range []string{"service adwriteback installed", exe + " (copied there)",
		journal + "  NT SERVICE\\adwriteback: modify  " + modify, "check-config", "adwriteback service start"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	// Another name, account and start type; the program already in place.
	_, f = installLayout(t, dir)
	f.exePath = exe
	out, _, err = runService(t, Table{}, f, "install", "--config", cfg, "--name", "adw2", "--account", "LocalSystem", "--manual")
	if err != nil {
		t.Fatal(err)
	}
	if f.installed.exe != exe || !strings.Contains(out, exe+" (already there)") {
		t.Errorf("installed %s, output:\n%s", f.installed.exe, out)
	}
	if f.installed.name != "adw2" || f.installed.opts.Account != "LocalSystem" || !f.installed.opts.Manual {
		t.Errorf("installed %+v", f.installed)
	}
	if got := f.protected[journal]; got != "O:BAD:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)" {
		t.Errorf("LocalSystem's journal SDDL %q", got)
	}
}

// TestServiceInstallRefusals: a layout the service cannot be protected in,
// a shared folder, an account that cannot be resolved, no %ProgramFiles%
// and a DACL that cannot be set each stop install before it registers
// the service (the first ones before it changes anything).
func TestServiceInstallRefusals(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(dir, cfg string, f *fakeSCM)
		want  string
		code  int
		calls string
	}{
		{"journal beside the configuration", func(dir, cfg string, f *fakeSCM) {
			writeText(t, cfg, "journal:\n  path: "+dir+"/journal.db\n")
		}, "give the journal a folder of its own", 2, ""},
		{"relative key path", func(dir, cfg string, f *fakeSCM) {
			writeText(t, cfg, "keys:\n  connector: [k.json]\njournal:\n  path: "+dir+"/j/journal.db\n")
		}, "not an absolute path", 2, ""},
		{"configuration in %ProgramData% itself", func(dir, cfg string, f *fakeSCM) { f.env["ProgramData"] = dir }, "%ProgramData%", 2, ""},
		{"unknown account", func(dir, cfg string, f *fakeSCM) { f.sidErr = errors.New("no such account") }, "no such account", 1, ""},
		{"no ProgramFiles", func(dir, cfg string, f *fakeSCM) { delete(f.env, "ProgramFiles") }, "%ProgramFiles% is not set", 1, ""},
		{"DACL refused", func(dir, cfg string, f *fakeSCM) { f.protErr = errors.New("access denied") }, "protect " + "DIR" + ": access denied", 1, "copy, protect"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg, f := installLayout(t, dir)
			tc.edit(dir, cfg, f)
			_, _, err := runService(t, Table{}, f, "install", "--config", cfg)
			want := strings.ReplaceAll(tc.want, "DIR", dir)
			if err == nil || !strings.Contains(err.Error(), want) || ExitCode(err) != tc.code {
				t.Fatalf("err %v (exit %d), want %q (exit %d)", err, ExitCode(err), want, tc.code)
			}
			var kinds []string
			for _, c := range f.calls {
				kinds = append(kinds, strings.Fields(c)[0])
			}
			if got := strings.Join(kinds, ", "); got != tc.calls {
				t.Errorf("calls %q, want %q", got, tc.calls)
			}
		})
	}
}

func writeText(t *testing.T, file, text string) {
	t.Helper()
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
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

// TestServiceInstallManagedAccount: a gMSA is registered as given, with
// no password, its SID (as Windows looks it up) in the folder DACLs, and
// the steps it needs on the host printed.
func TestServiceInstallManagedAccount(t *testing.T) {
	dir := t.TempDir()
	cfg, f := installLayout(t, dir)
	out, _, err := runService(t, Table{}, f, "install", "--config", cfg, "--account", `ADW\gmsa$`)
	if err != nil {
		t.Fatal(err)
	}
	if f.installed.opts.Account != `ADW\gmsa$` {
		t.Errorf("installed as %q", f.installed.opts.Account)
	}
	const sid = "S-1-5-21-1-2-3-1104" // the fake's lookup
	if got := f.protected[filepath.Join(dir, "journal")]; got != "O:BAD:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;0x1301bf;;;"+sid+")" {
		t.Errorf("journal SDDL %q", got)
	}
	if got := f.protected[filepath.Join(dir, "keys")]; got != "O:BAD:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;0x1200a9;;;"+sid+")" {
		t.Errorf("keys SDDL %q", got)
	}
	for _, want := range []string{`ADW\gmsa$ is a group managed service account`, "Install-ADServiceAccount gmsa", "Test-ADServiceAccount gmsa",
		"Log on as a service", "bind.method negotiate"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestServiceInstallAccountRefused: an account that would need a stored
// password, or is malformed, is a usage error before anything changes,
// and the error does not repeat what was given.
func TestServiceInstallAccountRefused(t *testing.T) {
	for _, tc := range []struct{ account, want string }{
		{`ADW\Secret-Typed-Here`, "a user account needs its password stored"},
		{"gmsa$", `DOMAIN\name$`},
		{`NT SERVICE\other`, `NT SERVICE\adwriteback`},
	} {
		dir := t.TempDir()
		cfg, f := installLayout(t, dir)
		_, _, err := runService(t, Table{}, f, "install", "--config", cfg, "--account", tc.account)
		if err == nil || ExitCode(err) != 2 || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "Secret-Typed-Here") {
			t.Errorf("%q: %v (exit %d), want %q", tc.account, err, ExitCode(err), tc.want)
		}
		if len(f.calls) != 0 {
			t.Errorf("%q: calls %v before refusing", tc.account, f.calls)
		}
	}
}
