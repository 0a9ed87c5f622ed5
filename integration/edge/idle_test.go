//go:build integration

package edge

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/adwriteback/adwriteback/integration/stack"
	"github.com/adwriteback/adwriteback/integration/testdc"
	"github.com/adwriteback/adwriteback/relay/protocol"
	"github.com/adwriteback/adwriteback/relay/sender"
)

// TestEdgeIdleProxyCut: a proxy that cuts tunnels idle for 2 s, as
// corporate proxies cut idle connections, loses nothing: commands spaced
// beyond the idle timeout, each sent once the proxy has cut the
// connector's tunnel, all get exactly one result and one write, and the
// users bind with their new passwords.
func TestEdgeIdleProxyCut(t *testing.T) {
	env := newEdge(t, stack.ProxyOptions{IdleTimeout: 2 * time.Second})
	a := env.Start("a", env.ViaEdge(stack.EdgeSAS))
	a.WaitReady(http.StatusOK)
	s := env.Sender()
	const n = 3
	for i := range n {
		// wait for the proxy to cut the connector's idle tunnel: the
		// connector then dials a new one through it
		tunnels := connects(env)
		stack.WaitFor(t, time.Minute, "the proxy to cut the idle tunnel and the connector to open another",
			func() bool { return connects(env) > tunnels })
		u := testdc.NewUser(t, env.DC, "")
		pw := fmt.Sprintf("Edge!Idle.Pass%d", i+1)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		res, err := s.Client.Do(ctx, sender.Request{Op: protocol.OpReset, User: protocol.UserRef{SAM: u.SAM},
			NewPassword: env.Secret(pw), Actor: protocol.Actor{Kind: protocol.ActorSelfService, ID: "edge"}})
		cancel()
		if err != nil {
			t.Fatalf("command %d: %v", i+1, err)
		}
		env.Results.Write([]byte(res.Code + "\n"))
		if res.Code != protocol.CodeSucceeded {
			t.Fatalf("command %d: %+v", i+1, res.Result)
		}
		checkBind(t, env, u, pw)
		stack.WaitFor(t, time.Minute, "the command's audit record", func() bool { return len(env.AuditLines(res.CommandID)) > 0 })
		if lines := env.AuditLines(res.CommandID); len(lines) != 1 || !strings.Contains(lines[0], `"applied":true`) {
			t.Fatalf("audit of command %d: %q, want one applied record", i+1, lines)
		}
	}
	if got := a.AuditCount(); got != n {
		t.Fatalf("%d audit records, want %d", got, n)
	}
	if st := env.QueueState(env.Queue); st.Active != 0 || st.Locked != 0 || st.DeadLettered != 0 {
		t.Fatalf("command queue after the commands: %d active, %d locked, %d dead-lettered", st.Active, st.Locked, st.DeadLettered)
	}
	if st := env.QueueState(env.Replies); st.Active != 0 {
		t.Fatalf("the reply queue holds %d results nobody awaited (a command answered twice)", st.Active)
	}
}

// connects is how many CONNECT requests the proxy has taken so far (its
// log's "Request (file descriptor N): CONNECT host:port" lines; the
// level of every line is CONNECT too).
func connects(env *stack.Env) int { return strings.Count(env.Proxy.Log(), connectRequest) }

const connectRequest = "): CONNECT "
