// Command demo runs the local demo stack, built by integration/stack: the
// throw-away Samba AD DC, the Service Bus emulator and the real adwriteback
// binary. It generates keys with `adwriteback keygen`, writes and checks a
// configuration, starts `adwriteback run`, sends commands with
// `adwriteback send` (a reset that passes, a reset that fails three rules,
// an unlock, a check, a reset of a protected account) and shows each
// result, then stops the connector gracefully and shows its audit log. At
// the end the harness's leak scan looks for the password everywhere.
//
// ADW_DEMO_BIND=kerberos binds the connector with Kerberos instead of a
// DN and password: the service account's keys are exported from the DC
// into a keytab and the configuration names no password at all (default:
// simple).
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/adwriteback/adwriteback/integration/sbemu"
	"github.com/adwriteback/adwriteback/integration/stack"
	"github.com/adwriteback/adwriteback/integration/testdc"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func say(format string, a ...any) { fmt.Printf("\n\033[1m== "+format+"\033[0m\n", a...) }

func run(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	prog := stack.NewProgram("demo", func(f string, a ...any) { fmt.Printf("   "+f+"\n", a...) })
	_ = prog.Do(func() { demo(ctx, prog) })
	return prog.Close() // stops the connector, scans for the password, removes the files
}

// kerberosBind reads ADW_DEMO_BIND: kerberos, or simple (the default).
func kerberosBind() (bool, error) {
	switch b := os.Getenv("ADW_DEMO_BIND"); b {
	case "", "simple":
		return false, nil
	case "kerberos":
		return true, nil
	default:
		return false, fmt.Errorf("ADW_DEMO_BIND=%q: use simple or kerberos", b)
	}
}

// demo is the demo's script; a step that fails ends it (prog.Fatalf).
func demo(ctx context.Context, prog *stack.Program) {
	dir := prog.TempDir()
	must := func(err error) {
		if err != nil {
			prog.Fatalf("%v", err)
		}
	}

	say("Build the adwriteback binary")
	fmt.Println("   $ CGO_ENABLED=0 go build ./connector/cmd/adwriteback")
	bins, err := stack.BuildBinaries(ctx, stack.Production)
	must(err)
	prog.Cleanup(func() { bins.Close() })
	bin := bins.Path(stack.Production)
	must(show(ctx, "", nil, bin, "version"))

	say("Keys: the connector's (HPKE + result signing) and the sender's (command signing)")
	keyDir := filepath.Join(dir, "keys")
	must(show(ctx, "", nil, bin, "keygen", "--out", keyDir))

	say("Samba AD DC (throw-away domain ADW.TEST, LDAPS with its own CA) and the Service Bus emulator")
	qo := sbemu.QueueOptions{LockDuration: 30 * time.Second}
	opts := []stack.Option{stack.WithDir(dir), stack.WithKeyDir(keyDir),
		stack.WithCommandQueue("writeback-commands", qo), stack.WithReplyQueue("writeback-results", qo),
		stack.ForEveryConnector(stack.Binary(bin), stack.Configure(func(c *stack.ConfigSpec) {
			c.LogLevel, c.LogFormat = "", "text"
		}))}
	kerberos, err := kerberosBind()
	must(err)
	if kerberos {
		opts = append(opts, stack.WithKerberos())
	}
	env := stack.New(prog, opts...)
	info := env.DC
	fmt.Printf("   %s, service account %s (Reset/Change Password, pwdLastSet, lockoutTime on OU=Managed only)\n", info.LDAPSURL, info.ServiceUPN)
	if kerberos {
		fmt.Printf("   Kerberos bind: %s with the keys of %s (exported with samba-tool domain exportkeytab), KDC %s, no password\n",
			stack.ServicePrincipal(info), filepath.Base(env.Path(stack.KeytabFile)), info.KDC)
	}
	fmt.Printf("   emulator (AMQP 1.0 on loopback, the real azservicebus client talks to it) on %s, queues %s and %s\n",
		env.Emu.Endpoint(), env.Queue, env.Replies)

	// A user for the demo, so it can be run again and again.
	user, err := demoUser(ctx, info)
	must(err)

	conn := env.Connector("demo")
	cfgPath := conn.WriteConfig()
	say("Configuration (%s)", cfgPath)
	if b, err := os.ReadFile(cfgPath); err == nil {
		fmt.Print(indent(string(b)))
	}
	must(show(ctx, "", nil, bin, "check-config", "--config", cfgPath))

	say("Start the connector: adwriteback run --config %s", filepath.Base(cfgPath))
	conn.Start()

	sendEnv := append(os.Environ(), env.SendEnv()...)
	send := func(title, stdin string, args ...string) {
		say("%s", title)
		if err := show(ctx, stdin, sendEnv, bin, append(env.SendArgs(), args...)...); err != nil {
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				fmt.Println("   error:", err)
			}
		}
	}
	send("Before the user types: describe, the requirements the SSPR page shows (no password is sent; the demo user's group has a fine-grained policy)",
		"", "--op", "describe", "--user", "upn:"+user.UPN, "--actor", "self_service:demo-portal")
	send("The same for a user under a stricter fine-grained policy (its name is never disclosed)",
		"", "--op", "describe", "--user", "sam:strict", "--actor", "self_service:demo-portal")
	newPw := fmt.Sprintf("Sunny!Harbor.%d", time.Now().Unix()%100000)
	env.Secret(newPw) // the scan at the end looks for it everywhere
	send("A reset that passes (the password is read from stdin, sealed to the connector's key)",
		newPw+"\n", "--op", "reset", "--user", "upn:"+user.UPN, "--actor", "self_service:demo-portal")
	if c, err := testdc.Bind(ctx, info, user.DN, newPw); err == nil {
		c.Close()
		fmt.Println("   -> verified: the user binds to the DC with the new password")
	} else {
		fmt.Println("   -> the user could NOT bind with the new password:", err)
	}
	send("A reset that fails three rules: too short, too few categories, contains the account name",
		user.SAM+"1\n", "--op", "reset", "--user", "sam:"+user.SAM)
	lockOut(ctx, info, user.DN)
	send("Unlock (the account was just locked by 3 wrong passwords)", "", "--op", "unlock", "--user", "sam:"+user.SAM, "--actor", "admin:helpdesk-42")
	if c, err := testdc.Bind(ctx, info, user.DN, newPw); err == nil {
		c.Close()
		fmt.Println("   -> verified: the user can bind again")
	}
	send("A check: is this candidate acceptable? (nothing is written)", "Candidate!Pass.42\n", "--op", "check", "--user", "sam:"+user.SAM)
	send("A reset of a protected account (adminCount=1): refused before touching AD", newPw+"\n", "--op", "reset", "--user", "sam:protected")

	say("Stop the connector (SIGTERM: stop receiving, finish in-flight, flush the journal)")
	conn.Stop()
	fmt.Printf("   exit: %v\n", exitText(prog.Err()))

	say("Audit log (one JSON record per command; never a password)")
	fmt.Print(indent(conn.Audit()))
	say("Connector log (last lines)")
	lines := strings.Split(strings.TrimSpace(conn.Logs()), "\n")
	if len(lines) > 8 {
		lines = lines[len(lines)-8:]
	}
	fmt.Print(indent(strings.Join(lines, "\n") + "\n"))
	fmt.Println("\nThe DC keeps running for the next run; stop it with: go run ./integration/cmd/testdc down")
}

func exitText(err error) string {
	if err == nil {
		return "0 (clean shutdown)"
	}
	return err.Error()
}

// show runs a command, echoing it and its output indented.
func show(ctx context.Context, stdin string, env []string, name string, args ...string) error {
	shown := append([]string{filepath.Base(name)}, args...)
	for i, a := range shown {
		if strings.HasPrefix(a, "/") {
			shown[i] = filepath.Base(a)
		}
	}
	fmt.Printf("   $ %s\n", strings.Join(shown, " "))
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	if env != nil {
		cmd.Env = env
	}
	out, err := cmd.CombinedOutput()
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		fmt.Println("     " + sc.Text())
	}
	return err
}

func indent(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString("     " + l + "\n")
	}
	return b.String()
}

func demoUser(ctx context.Context, info *testdc.Info) (testdc.SeedUser, error) {
	c, err := testdc.Admin(ctx, info)
	if err != nil {
		return testdc.SeedUser{}, err
	}
	defer c.Close()
	name := fmt.Sprintf("demo%d", time.Now().Unix()%1000000)
	u := testdc.SeedUser{DN: "CN=" + name + "," + info.InScopeOU, SAM: name, UPN: name + "@adw.test", DisplayName: "Morgan Lee"}
	err = testdc.CreateUser(ctx, c, testdc.UserSpec{DN: u.DN, SAM: u.SAM, UPN: u.UPN, DisplayName: u.DisplayName, Password: testdc.UserPass})
	if err != nil {
		return u, err
	}
	// In the group whose policy locks out after 3 bad passwords.
	return u, testdc.AddToGroup(c, info.ChangeGroupDN, u.DN)
}

func lockOut(ctx context.Context, info *testdc.Info, dn string) {
	for range 3 {
		if c, err := testdc.Bind(ctx, info, dn, "Wrong!Password.0"); err == nil {
			c.Close()
		}
	}
	_, err := testdc.Bind(ctx, info, dn, "Wrong!Password.0")
	if testdc.BindData(err) == "775" {
		fmt.Println("\n   (the demo user is now locked out: bind answers data 775)")
	}
}
