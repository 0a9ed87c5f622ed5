package stack

import (
	"bytes"
	"context"
	"strings"

	"github.com/adwriteback/adwriteback/connector/cli"
)

// SendArgs are the arguments of `adwriteback send` for this stack, before
// the command's own (--op, --user, ...): its queues, the sender's private
// key and the connector's public key, a 60 s wait.
func (e *Env) SendArgs() []string {
	return []string{"send", "--queue", e.Queue, "--reply-queue", e.Replies,
		"--sender-key", e.keyPath(SenderKeyFile), "--connector-key", e.keyPath(ConnectorPubFile), "--wait", "60s"}
}

// SendEnv is the environment `adwriteback send` reads the Service Bus
// connection string from.
func (e *Env) SendEnv() []string { return []string{"ADW_SERVICEBUS=" + e.ConnectionString} }

// SendCLI runs `adwriteback send` in this process (real flags, stdin and
// exit code) with SendArgs and args, records its output for the leak scan
// and returns it (stdout then stderr) with the exit code.
func (e *Env) SendCLI(stdin string, args ...string) (string, int) {
	var out, errb bytes.Buffer
	env := &cli.Env{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb,
		Getenv: func(k string) string {
			for _, kv := range e.SendEnv() {
				if v, ok := strings.CutPrefix(kv, k+"="); ok {
					return v
				}
			}
			return ""
		}}
	err := cli.SendCommand().Run(context.Background(), env, append(e.SendArgs()[1:], args...))
	e.Results.Write(out.Bytes())
	e.Results.Write(errb.Bytes())
	return out.String() + errb.String(), cli.ExitCode(err)
}
