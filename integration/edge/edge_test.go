//go:build integration

// Package edge proves the connector at the real network edge, as a
// deployment behind a locked-down firewall runs it: AMQP over WebSockets
// on 443, TLS verified against the stack's CA, through an authenticating
// HTTP CONNECT proxy (tinyproxy), authenticated by a SAS key or by each
// Entra ID credential kind against the stack's token issuer, to an
// emulator that checks what Service Bus checks, and the Samba DC behind.
// The connector runs as it ships (in process through app.Build, or the
// built binary): no dialer or credential of it is replaced.
package edge

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/adwriteback/adwriteback/integration/stack"
	"github.com/adwriteback/adwriteback/integration/testdc"
	"github.com/adwriteback/adwriteback/relay/protocol"
	"github.com/adwriteback/adwriteback/relay/sender"
)

// bins is the production binary, built once for this test binary.
var bins *stack.Binaries

func TestMain(m *testing.M) {
	os.Exit(stack.RunWithBinaries(m, &bins, stack.Production))
}

// newEdge is one test's world: the shared DC, an emulator listening like
// Azure (WithEmulatorTLS), tinyproxy with Basic auth in front of it, and
// opts (WithEntra); its connectors get 10 s to dial the DC, 4 commands at
// once and 10 s to shut down.
func newEdge(t *testing.T, proxy stack.ProxyOptions, opts ...stack.Option) *stack.Env {
	t.Helper()
	return stack.New(t, append([]stack.Option{stack.WithEmulatorTLS(), stack.WithProxy(proxy),
		stack.ForEveryConnector(stack.Configure(func(c *stack.ConfigSpec) {
			c.DialTimeout = 10 * time.Second
			c.Concurrency, c.ShutdownGrace = 4, 10*time.Second
		}))}, opts...)...)
}

// resetAndBind resets a fresh user's password through env's connectors,
// checks the user then binds with it, and returns the command's id.
func resetAndBind(t *testing.T, env *stack.Env, pw string) string {
	t.Helper()
	u := testdc.NewUser(t, env.DC, "")
	res := env.Sender().Do(sender.Request{Op: protocol.OpReset, User: protocol.UserRef{SAM: u.SAM}, NewPassword: env.Secret(pw)})
	if res.Code != protocol.CodeSucceeded {
		t.Fatalf("reset: %+v", res.Result)
	}
	checkBind(t, env, u, pw)
	return res.CommandID
}

// checkBind fails the test unless u binds to the DC with pw.
func checkBind(t *testing.T, env *stack.Env, u testdc.SeedUser, pw string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := testdc.Bind(ctx, env.DC, u.DN, pw)
	if err != nil {
		t.Fatalf("bind as %s with the new password: %v", u.SAM, err)
	}
	c.Close()
}

// throughProxy fails the test unless the proxy's log shows a CONNECT it
// carried to the emulator's WebSocket port.
func throughProxy(t *testing.T, env *stack.Env) {
	t.Helper()
	if log := env.Proxy.Log(); !strings.Contains(log, connectRequest+env.Emu.WebSocketEndpoint()) {
		t.Fatalf("the proxy carried no CONNECT; its log:\n%s", stack.Tail(log, 20))
	}
}

// doctor runs `adwriteback doctor` (the built binary) against the
// connector's configuration with opts, and returns its output and exit
// code. The output joins the leak scan.
func doctor(t *testing.T, env *stack.Env, c *stack.Connector, opts ...stack.ConnectorOption) (string, int) {
	t.Helper()
	args := []string{bins.Path(stack.Production), "doctor", "--config", c.WriteConfig(opts...)}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	out, err := cmd.CombinedOutput()
	env.Results.Write(out)
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("doctor: %v\n%s", err, out)
		}
		code = ee.ExitCode()
	}
	return string(out), code
}
