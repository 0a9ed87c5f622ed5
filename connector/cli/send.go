package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/adwriteback/adwriteback/relay/protocol"
	"github.com/adwriteback/adwriteback/relay/sender"
	"github.com/adwriteback/adwriteback/relay/servicebus"
)

// SendCommand is `adwriteback send`: the sender side, for admins and the
// demo. It seals, signs and sends one command over Service Bus and waits
// for the connector's signed result.
func SendCommand() Command {
	return Command{Name: "send", Summary: "seal, sign and send one command; wait for the signed result", Run: runSend}
}

func runSend(ctx context.Context, env *Env, args []string) error {
	fs := flag.NewFlagSet("send", flag.ContinueOnError)
	op := fs.String("op", "reset", "reset | change | unlock | check")
	user := fs.String("user", "", "user: upn:NAME@DOMAIN, sam:NAME, objectGUID:GUID, immutableId:BASE64 (kind guessed without prefix)")
	domain := fs.String("domain", "", "AD domain (DNS name) when the connector serves several")
	mustChange := fs.Bool("must-change", false, "reset: the user must change the password at next logon")
	unlock := fs.Bool("unlock", false, "reset: also unlock the account")
	wait := fs.Duration("wait", 30*time.Second, "how long to wait for the result (0: do not wait)")
	asJSON := fs.Bool("json", false, "print the verified result as JSON")
	actor := fs.String("actor", "admin:"+currentUser(env), "who asks, for the audit log: self_service:ID or admin:ID")
	queue := fs.String("queue", "", "the connector's command queue")
	replyQueue := fs.String("reply-queue", "", "the queue results come back on")
	connEnv := fs.String("connection-string-env", "ADW_SERVICEBUS", "environment variable holding the Service Bus connection string")
	connFile := fs.String("connection-string-file", "", "file holding the Service Bus connection string (instead of the environment)")
	senderKey := fs.String("sender-key", "", "sender private key file (adwriteback keygen)")
	connectorKeys := fs.String("connector-key", "", "connector public key file(s), comma-separated: seal to the first")
	ttl := fs.Duration("ttl", 5*time.Minute, "how long the command stays valid")
	fs.Usage = func() {
		fmt.Fprintf(env.Stderr, `Usage: adwriteback send --op OP --user USER --queue Q --reply-queue R --sender-key FILE --connector-key FILE [flags]

The password is read from standard input: one line (one trailing newline
stripped). For --op change, the first line is the old password and the
second the new one. unlock reads nothing.

Exit status: 0 succeeded, 1 any other result, 2 usage error, 3 no result in time.

Flags:
`)
		fs.PrintDefaults()
	}
	if help, err := parseFlags(fs, env, args); help || err != nil {
		return err
	}
	var missing []string
	for name, v := range map[string]string{"--user": *user, "--queue": *queue, "--sender-key": *senderKey, "--connector-key": *connectorKeys} {
		if v == "" {
			missing = append(missing, name)
		}
	}
	if *wait > 0 && *replyQueue == "" {
		missing = append(missing, "--reply-queue (or --wait 0)")
	}
	if len(missing) > 0 {
		return Usage("send: missing %s", strings.Join(missing, ", "))
	}
	o := protocol.Op(*op)
	switch o {
	case protocol.OpReset, protocol.OpChange, protocol.OpUnlock, protocol.OpCheck:
	default:
		return Usage("send: --op must be reset, change, unlock or check, not %q", *op)
	}
	ref, err := sender.ParseUser(*user, *domain)
	if err != nil {
		return Usage("send: --user: %v", err)
	}
	act, err := parseActor(*actor)
	if err != nil {
		return Usage("send: --actor: %v", err)
	}
	req := sender.Request{Op: o, User: ref, Actor: act, TTL: *ttl,
		Options: protocol.Options{MustChange: *mustChange, Unlock: *unlock}}
	switch o {
	case protocol.OpChange:
		if req.OldPassword, err = protocol.ReadSecret(env.Stdin); err != nil {
			return Usage("send: old password from stdin: %v", err)
		}
		defer req.OldPassword.Zero()
		fallthrough
	case protocol.OpReset, protocol.OpCheck:
		if req.NewPassword, err = protocol.ReadSecret(env.Stdin); err != nil {
			return Usage("send: password from stdin: %v", err)
		}
		defer req.NewPassword.Zero()
	}

	conn, err := readConnectionString(env, *connFile, *connEnv)
	if err != nil {
		return Usage("send: %v", err)
	}
	scfg, err := sender.LoadConfig(*senderKey, strings.Split(*connectorKeys, ",")...)
	if err != nil {
		return fmt.Errorf("send: keys: %w", err)
	}
	sb, err := servicebus.NewClient(servicebus.Config{Auth: servicebus.AuthConnectionString, ConnectionString: conn})
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	defer sb.Close(context.Background())
	cs, err := servicebus.NewCommandSender(sb, servicebus.CommandSenderConfig{Queue: *queue, ReplyQueue: *replyQueue})
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	defer cs.Close(context.Background())
	scfg.Transport = cs
	client, err := sender.New(scfg)
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	p, err := client.Send(ctx, req)
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	if *wait == 0 {
		fmt.Fprintf(env.Stdout, "sent %s (not waiting for the result)\n", p.Command.ID)
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, *wait)
	defer cancel()
	res, err := client.Await(wctx, p.Command.ID)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return &ExitError{Code: 3, Err: fmt.Errorf("send: no result for %s within %s", p.Command.ID, *wait)}
		}
		return fmt.Errorf("send: %w", err)
	}
	printResult(env, p.Command, &res.Result, *asJSON)
	if res.Code != protocol.CodeSucceeded {
		return &ExitError{Code: 1}
	}
	return nil
}

func printResult(env *Env, c protocol.Command, r *protocol.Result, asJSON bool) {
	if asJSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(r)
		return
	}
	kind, val := c.User.Kind()
	fmt.Fprintf(env.Stdout, "%s %s:%s -> %s", c.Op, kind, val, r.Code)
	if r.DCReason != "" {
		fmt.Fprintf(env.Stdout, " (%s)", r.DCReason)
	}
	if r.DC != "" {
		fmt.Fprintf(env.Stdout, " at %s", r.DC)
	}
	fmt.Fprintf(env.Stdout, "\n  %s\n", r.Message)
	for _, v := range r.Violations {
		fmt.Fprintf(env.Stdout, "  - %s\n", v.Message)
	}
	if r.Detail != "" {
		fmt.Fprintf(env.Stdout, "  detail: %s\n", r.Detail)
	}
}

func parseActor(s string) (protocol.Actor, error) {
	kind, id, ok := strings.Cut(s, ":")
	if !ok || id == "" {
		return protocol.Actor{}, fmt.Errorf("%q: want KIND:ID", s)
	}
	return protocol.Actor{Kind: protocol.ActorKind(kind), ID: id}, nil
}

func currentUser(env *Env) string {
	if u := env.Getenv("USER"); u != "" {
		return u
	}
	return "cli"
}

func readConnectionString(env *Env, file, envName string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", err
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	if v := env.Getenv(envName); v != "" {
		return v, nil
	}
	return "", fmt.Errorf("no Service Bus connection string: set $%s or --connection-string-file", envName)
}
