// Command demo runs the local demo stack: the throw-away Samba AD DC, the
// Service Bus emulator and the real adwriteback binary. It generates keys,
// writes and checks a configuration, starts `adwriteback run`, sends
// commands with `adwriteback send` (a reset that passes, a reset that fails
// three rules, an unlock, a check, a reset of a protected account) and shows
// each result, then stops the connector gracefully and shows its audit log.
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
	dir, err := os.MkdirTemp("", "adwriteback-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	say("Samba AD DC (throw-away domain ADW.TEST on 127.77.0.10, LDAPS with its own CA)")
	info, err := testdc.Up(ctx, testdc.Config{Log: func(f string, a ...any) { fmt.Printf("   "+f+"\n", a...) }})
	if err != nil {
		return err
	}
	fmt.Printf("   %s, service account %s (Reset/Change Password, pwdLastSet, lockoutTime on OU=Managed only)\n", info.LDAPSURL, info.ServiceUPN)

	say("Service Bus emulator (AMQP 1.0 on loopback, the real azservicebus client talks to it)")
	emu, err := sbemu.StartProcess(ctx, sbemu.Options{})
	if err != nil {
		return err
	}
	defer emu.Close()
	qo := sbemu.QueueOptions{LockDuration: 30 * time.Second}
	if err := stack.Queues(ctx, emu, stack.Queue{Name: "writeback-commands", Options: qo}, stack.Queue{Name: "writeback-results", Options: qo}); err != nil {
		return err
	}
	fmt.Printf("   %s, queues writeback-commands and writeback-results\n", emu.Endpoint())

	say("Build the adwriteback binary")
	bin := filepath.Join(dir, "adwriteback")
	if err := show(ctx, "", nil, "go", "build", "-o", bin, "./connector/cmd/adwriteback"); err != nil {
		return err
	}
	if err := show(ctx, "", nil, bin, "version"); err != nil {
		return err
	}

	say("Keys: the connector's (HPKE + result signing) and the sender's (command signing)")
	if err := show(ctx, "", nil, bin, "keygen", "--out", filepath.Join(dir, "keys")); err != nil {
		return err
	}

	// A user for the demo, so it can be run again and again.
	user, err := demoUser(ctx, info)
	if err != nil {
		return err
	}

	cfgPath := filepath.Join(dir, "config.yaml")
	if err := writeConfig(dir, cfgPath, info, emu); err != nil {
		return err
	}
	say("Configuration (%s)", cfgPath)
	if b, err := os.ReadFile(cfgPath); err == nil {
		fmt.Print(indent(string(b)))
	}
	if err := show(ctx, "", nil, bin, "check-config", "--config", cfgPath); err != nil {
		return err
	}

	say("Start the connector: adwriteback run --config %s", filepath.Base(cfgPath))
	var logs bytes.Buffer
	conn := exec.CommandContext(ctx, bin, "run", "--config", cfgPath)
	conn.Stdout, conn.Stderr = &logs, &logs
	conn.Env = os.Environ()
	if err := conn.Start(); err != nil {
		return err
	}
	stopped := false
	defer func() {
		if !stopped {
			conn.Process.Kill()
			conn.Wait()
		}
	}()

	sendEnv := append(os.Environ(), "ADW_SERVICEBUS="+emu.ConnectionString())
	send := func(title, stdin string, args ...string) {
		say("%s", title)
		base := []string{"send", "--queue", "writeback-commands", "--reply-queue", "writeback-results",
			"--sender-key", filepath.Join(dir, "keys", "sender.key.json"),
			"--connector-key", filepath.Join(dir, "keys", "connector.pub.json"), "--wait", "60s"}
		if err := show(ctx, stdin, sendEnv, bin, append(base, args...)...); err != nil {
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				fmt.Println("   error:", err)
			}
		}
	}
	newPw := fmt.Sprintf("Sunny!Harbor.%d", time.Now().Unix()%100000)
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
	conn.Process.Signal(syscall.SIGTERM)
	werr := conn.Wait()
	stopped = true
	fmt.Printf("   exit: %v\n", exitText(werr))

	say("Audit log (one JSON record per command; never a password)")
	if b, err := os.ReadFile(filepath.Join(dir, "audit.jsonl")); err == nil {
		fmt.Print(indent(string(b)))
	}
	say("Connector log (last lines)")
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) > 8 {
		lines = lines[len(lines)-8:]
	}
	fmt.Print(indent(strings.Join(lines, "\n") + "\n"))
	if strings.Contains(logs.String(), newPw) {
		return errors.New("the password appeared in the connector's log")
	}
	fmt.Println("\nThe DC keeps running for the next run; stop it with: go run ./integration/cmd/testdc down")
	return nil
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

// writeConfig writes the connector's configuration (and the secret files it
// points at) for the keys `adwriteback keygen` wrote into dir/keys.
func writeConfig(dir, path string, info *testdc.Info, emu *sbemu.Emulator) error {
	if err := stack.WriteSecrets(dir, info.ServicePass, emu.ConnectionString()); err != nil {
		return err
	}
	cfg := stack.DCConfig(info, dir)
	cfg.MinLength = 12
	cfg.Queue = "writeback-commands"
	cfg.ConnectorKeys = []string{filepath.Join(dir, "keys", "connector.key.json")}
	cfg.SenderKeys = []string{filepath.Join(dir, "keys", "sender.pub.json")}
	cfg.LogFormat = "text"
	return cfg.WriteFile(path)
}
