package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

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

const sendUsage = `Usage: adwriteback send --op OP --user USER --queue Q --reply-queue R --sender-key FILE --connector-key FILE [flags]

The password is read from standard input: one line (one trailing newline
stripped). For --op change, the first line is the old password and the
second the new one. unlock and describe read nothing. When standard input is a
terminal, each password is asked for on standard error and read with echo
off. describe prints the user's password requirements (the connector's
answer: its AD policy, domain or fine-grained, and the organisation's rules).

Exit status: 0 succeeded, 1 any other result, 2 usage error, 3 no result in time.

Flags:
`

func runSend(ctx context.Context, env *Env, args []string) error {
	f := newSendFlags(env)
	if help, err := parseFlags(f.fs, env, args); help || err != nil {
		return err
	}
	req, err := f.request(stdinPasswords(env))
	if err != nil {
		return err
	}
	defer req.OldPassword.Zero()
	defer req.NewPassword.Zero()
	client, closeQueues, err := f.dial(env)
	if err != nil {
		return err
	}
	defer closeQueues()
	return f.sendAndAwait(ctx, env, client, req)
}

// sendFlags are the flags of "send".
type sendFlags struct {
	fs                         *flag.FlagSet
	op, user, domain, actor    string
	mustChange, unlock, asJSON bool
	wait, ttl                  time.Duration
	queue, replyQueue          string
	connEnv, connFile          string
	senderKey, connectorKeys   string
}

func newSendFlags(env *Env) *sendFlags {
	f := &sendFlags{fs: flag.NewFlagSet("send", flag.ContinueOnError)}
	fs := f.fs
	fs.StringVar(&f.op, "op", "reset", "reset | change | unlock | check | describe")
	fs.StringVar(&f.user, "user", "", "user: upn:NAME@DOMAIN, sam:NAME, objectGUID:GUID, immutableId:BASE64 (kind guessed without prefix)")
	fs.StringVar(&f.domain, "domain", "", "AD domain (DNS name) when the connector serves several")
	fs.BoolVar(&f.mustChange, "must-change", false, "reset: the user must change the password at next logon")
	fs.BoolVar(&f.unlock, "unlock", false, "reset: also unlock the account")
	fs.DurationVar(&f.wait, "wait", 30*time.Second, "how long to wait for the result (0: do not wait)")
	fs.BoolVar(&f.asJSON, "json", false, "print the verified result as JSON")
	fs.StringVar(&f.actor, "actor", "admin:"+currentUser(env), "who asks, for the audit log: self_service:ID or admin:ID")
	fs.StringVar(&f.queue, "queue", "", "the connector's command queue")
	fs.StringVar(&f.replyQueue, "reply-queue", "", "the queue results come back on")
	fs.StringVar(&f.connEnv, "connection-string-env", "ADW_SERVICEBUS", "environment variable holding the Service Bus connection string")
	fs.StringVar(&f.connFile, "connection-string-file", "", "file holding the Service Bus connection string (instead of the environment)")
	fs.StringVar(&f.senderKey, "sender-key", "", "sender private key file (adwriteback keygen)")
	fs.StringVar(&f.connectorKeys, "connector-key", "", "connector public key file(s), comma-separated: seal to the first")
	fs.DurationVar(&f.ttl, "ttl", 5*time.Minute, "how long the command stays valid")
	fs.Usage = func() {
		fmt.Fprint(env.Stderr, sendUsage)
		fs.PrintDefaults()
	}
	return f
}

// request checks the flags and builds the request, reading the passwords
// the operation needs from pw. The caller zeroes them. No error repeats a
// flag's value: it may be a password typed in the wrong place.
func (f *sendFlags) request(pw passwordSource) (sender.Request, error) {
	if err := f.checkRequired(); err != nil {
		return sender.Request{}, err
	}
	o := protocol.Op(f.op)
	switch o {
	case protocol.OpReset, protocol.OpChange, protocol.OpUnlock, protocol.OpCheck, protocol.OpDescribe:
	default:
		return sender.Request{}, unknownWord("send: --op must be reset, change, unlock, check or describe", f.op,
			string(protocol.OpReset), string(protocol.OpChange), string(protocol.OpUnlock), string(protocol.OpCheck),
			string(protocol.OpDescribe))
	}
	ref, err := sender.ParseUser(f.user, f.domain)
	if err != nil {
		return sender.Request{}, Usage("send: --user: %v", err)
	}
	act, err := parseActor(f.actor)
	if err != nil {
		return sender.Request{}, Usage("send: --actor: %v", err)
	}
	req := sender.Request{Op: o, User: ref, Actor: act, TTL: f.ttl,
		Options: protocol.Options{MustChange: f.mustChange, Unlock: f.unlock}}
	switch o {
	case protocol.OpChange:
		if req.OldPassword, err = pw.read("Old password"); err != nil {
			return sender.Request{}, Usage("send: old password: %v", err)
		}
		fallthrough
	case protocol.OpReset, protocol.OpCheck:
		if req.NewPassword, err = pw.read("New password"); err != nil {
			req.OldPassword.Zero()
			return sender.Request{}, Usage("send: password: %v", err)
		}
	}
	return req, nil
}

// checkRequired refuses a command line without the flags every send needs.
func (f *sendFlags) checkRequired() error {
	var missing []string
	for _, flag := range []struct{ name, value string }{
		{"--user", f.user}, {"--queue", f.queue}, {"--sender-key", f.senderKey}, {"--connector-key", f.connectorKeys},
	} {
		if flag.value == "" {
			missing = append(missing, flag.name)
		}
	}
	if f.wait > 0 && f.replyQueue == "" {
		missing = append(missing, "--reply-queue (or --wait 0)")
	}
	if len(missing) > 0 {
		return Usage("send: missing %s", strings.Join(missing, ", "))
	}
	return nil
}

// dial loads the keys, connects to Service Bus and returns a sender client
// over the command and reply queues, with the function that closes them.
func (f *sendFlags) dial(env *Env) (*sender.Client, func(), error) {
	conn, err := readConnectionString(env, f.connFile, f.connEnv)
	if err != nil {
		return nil, nil, Usage("send: %v", err)
	}
	scfg, err := sender.LoadConfig(f.senderKey, strings.Split(f.connectorKeys, ",")...)
	if err != nil {
		return nil, nil, fmt.Errorf("send: keys: %w", err)
	}
	sb, err := servicebus.NewClient(servicebus.Config{Auth: servicebus.AuthConnectionString, ConnectionString: conn})
	if err != nil {
		return nil, nil, fmt.Errorf("send: %w", err)
	}
	cs, err := servicebus.NewCommandSender(sb, servicebus.CommandSenderConfig{Queue: f.queue, ReplyQueue: f.replyQueue})
	if err != nil {
		sb.Close(context.Background())
		return nil, nil, fmt.Errorf("send: %w", err)
	}
	closeQueues := func() {
		cs.Close(context.Background())
		sb.Close(context.Background())
	}
	scfg.Transport = cs
	client, err := sender.New(scfg)
	if err != nil {
		closeQueues()
		return nil, nil, fmt.Errorf("send: %w", err)
	}
	return client, closeQueues, nil
}

// sendAndAwait sends req and, unless --wait is 0, waits for its result and
// prints it; a result other than succeeded is exit status 1.
func (f *sendFlags) sendAndAwait(ctx context.Context, env *Env, client *sender.Client, req sender.Request) error {
	p, err := client.Send(ctx, req)
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	if f.wait == 0 {
		fmt.Fprintf(env.Stdout, "sent %s (not waiting for the result)\n", p.Command.ID)
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, f.wait)
	defer cancel()
	res, err := client.Await(wctx, p)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return &ExitError{Code: 3, Err: fmt.Errorf("send: no result for %s within %s", p.Command.ID, f.wait)}
		}
		return fmt.Errorf("send: %w", err)
	}
	printResult(env, p.Command, &res.Result, f.asJSON)
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
	if r.Policy != nil {
		printPolicy(env.Stdout, r.Policy)
	}
	if r.Detail != "" {
		fmt.Fprintf(env.Stdout, "  detail: %s\n", r.Detail)
	}
}

// printPolicy prints a describe's policy, one requirement a line.
func printPolicy(w io.Writer, p *protocol.Policy) {
	source := "the domain's password policy"
	if p.Source == protocol.SourceFineGrained {
		source = "a fine-grained password policy"
	}
	fmt.Fprintf(w, "  policy: %s\n", source)
	fmt.Fprintf(w, "  - length: %d to %d characters\n", max(p.MinLength, p.Org.MinLength), p.MaxLength)
	if p.Org.MinLength > p.MinLength {
		fmt.Fprintf(w, "    (the directory asks for %d; the organisation for %d)\n", p.MinLength, p.Org.MinLength)
	}
	if p.Complexity {
		fmt.Fprintf(w, "  - complexity: %s\n", p.ComplexityRule)
	} else {
		fmt.Fprintln(w, "  - complexity: not required")
	}
	if p.HistoryLength > 0 {
		fmt.Fprintf(w, "  - history: the last %d passwords cannot be reused\n", p.HistoryLength)
	} else {
		fmt.Fprintln(w, "  - history: none kept")
	}
	fmt.Fprintf(w, "  - minimum age: %s\n", ageText(p.MinAge, "none"))
	fmt.Fprintf(w, "  - maximum age: %s\n", ageText(p.MaxAge, "never expires"))
	if p.NextChangeAt != nil {
		fmt.Fprintf(w, "  - next change allowed at %s\n", p.NextChangeAt.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(w, "  - banned words: %s; breached passwords: %s\n", onOff(p.Org.Banned), onOff(p.Org.Breached))
}

// ageText is a policy age in seconds as days, hours or seconds; zero
// says none.
func ageText(secs int64, none string) string {
	const day = 24 * 60 * 60
	switch {
	case secs == 0:
		return none
	case secs == day:
		return "1 day"
	case secs%day == 0:
		return fmt.Sprintf("%d days", secs/day)
	case secs < 1<<32:
		return (time.Duration(secs) * time.Second).String()
	}
	return fmt.Sprintf("%d seconds", secs)
}

func onOff(b bool) string {
	if b {
		return "checked"
	}
	return "not checked"
}

// parseActor reads KIND:ID. Its errors do not repeat s.
func parseActor(s string) (protocol.Actor, error) {
	kind, id, ok := strings.Cut(s, ":")
	if !ok || id == "" {
		return protocol.Actor{}, errors.New("want KIND:ID (the value given is not repeated here)")
	}
	a := protocol.Actor{Kind: protocol.ActorKind(kind), ID: id}
	if a.Kind != protocol.ActorSelfService && a.Kind != protocol.ActorAdmin {
		return protocol.Actor{}, fmt.Errorf("KIND must be %s or %s (the value given is not repeated here)",
			protocol.ActorSelfService, protocol.ActorAdmin)
	}
	return a, nil
}

// passwordSource reads the passwords of send: from a terminal, with a
// prompt and echo off, or else one line at a time from stdin. isTerminal
// and readPassword are the terminal's (nil: stdin is not a terminal).
type passwordSource struct {
	stdin        io.Reader
	prompt       io.Writer
	isTerminal   func() bool
	readPassword func() ([]byte, error)
}

// stdinPasswords is the passwordSource of env's standard input, using
// golang.org/x/term when it is a terminal.
func stdinPasswords(env *Env) passwordSource {
	src := passwordSource{stdin: env.Stdin, prompt: env.Stderr}
	if f, ok := env.Stdin.(*os.File); ok {
		fd := int(f.Fd())
		src.isTerminal = func() bool { return term.IsTerminal(fd) }
		src.readPassword = func() ([]byte, error) { return term.ReadPassword(fd) }
	}
	return src
}

// read reads one password, asking for it by what on a terminal. The result
// is checked by protocol.ValidatePassword either way.
func (p passwordSource) read(what string) (protocol.Secret, error) {
	if p.isTerminal == nil || !p.isTerminal() {
		return protocol.ReadSecret(p.stdin)
	}
	fmt.Fprintf(p.prompt, "%s: ", what)
	b, err := p.readPassword()
	fmt.Fprintln(p.prompt) // the Enter typed was not echoed
	if err != nil {
		clear(b)
		return protocol.Secret{}, fmt.Errorf("read from the terminal: %w", err)
	}
	s := protocol.NewSecret(b)
	if err := protocol.ValidatePassword(s); err != nil {
		s.Zero()
		return protocol.Secret{}, err
	}
	return s, nil
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
