//go:build integration

package edge

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/adwriteback/adwriteback/integration/entra"
	"github.com/adwriteback/adwriteback/integration/stack"
	"github.com/adwriteback/adwriteback/integration/testdc"
	"github.com/adwriteback/adwriteback/relay/protocol"
	"github.com/adwriteback/adwriteback/relay/sender"
)

// fault is one thing an admin gets wrong at the edge, and how it is
// put right.
type fault struct {
	// bad are the options of the connector's failing run.
	bad []stack.ConnectorOption
	// want is what the log and the /readyz queue check say of the cause.
	want string
	// doctorWant is what the doctor's FAIL line says of it.
	doctorWant string
	// secrets must not appear in /readyz (the leak scan also looks).
	secrets []string
	// fix puts it right; restart restarts the connector (without bad)
	// after it, else the running connector must recover by itself.
	fix     func()
	restart bool
}

// lossless runs f against the connector c (made with ViaEdge, not
// started): with f.bad the connector says why it cannot take commands, in
// its log and in /readyz, and `adwriteback doctor` fails naming the
// cause; a command sent meanwhile waits in the queue, untouched; once f
// is fixed the command is applied exactly once and answered, and the
// user binds with the new password.
func lossless(t *testing.T, env *stack.Env, c *stack.Connector, f fault) {
	t.Helper()
	c.Start(f.bad...)
	check := waitQueueFault(t, c, f.want)
	env.Results.Write([]byte(check.Detail + "\n")) // the leak scan reads it too
	for _, s := range f.secrets {
		if strings.Contains(check.Detail, s) {
			t.Fatalf("/readyz's queue check holds a secret: %s", check.Detail)
		}
	}
	if !strings.Contains(c.Logs(), f.want) {
		t.Fatalf("the log does not say %q:\n%s", f.want, stack.Tail(c.Logs(), 10))
	}

	s := env.Sender()
	u := testdc.NewUser(t, env.DC, "")
	pw := "Edge!Fault.Pass1"
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p, err := s.Client.Send(ctx, sender.Request{Op: protocol.OpReset, User: protocol.UserRef{SAM: u.SAM},
		NewPassword: env.Secret(pw), Actor: protocol.Actor{Kind: protocol.ActorSelfService, ID: "edge"}})
	if err != nil {
		t.Fatalf("send: %v", err)
	}

	out, code := doctor(t, env, c, f.bad...)
	if code != 1 || !failLine(out, f.doctorWant) {
		t.Fatalf("doctor exited %d, want 1 with a FAIL naming %q:\n%s", code, f.doctorWant, out)
	}
	if st := env.QueueState(env.Queue); st.Active != 1 {
		t.Fatalf("the command queue holds %d messages while the connector cannot receive, want 1", st.Active)
	}
	if n := c.AuditCount(); n != 0 {
		t.Fatalf("%d commands audited while the connector cannot receive", n)
	}
	if f.restart {
		c.Stop()
	}
	f.fix()
	if f.restart {
		c.Start()
	}
	res, err := s.Client.Await(ctx, p)
	if err != nil {
		t.Fatalf("the command's result after the fix: %v", err)
	}
	env.Results.Write([]byte(res.Code + "\n"))
	if res.Code != protocol.CodeSucceeded {
		t.Fatalf("result %+v", res.Result)
	}
	checkBind(t, env, u, pw)
	stack.WaitFor(t, time.Minute, "the command's audit record", func() bool { return len(env.AuditLines(p.Command.ID)) > 0 })
	if lines := env.AuditLines(p.Command.ID); len(lines) != 1 || !strings.Contains(lines[0], `"applied":true`) {
		t.Fatalf("audit of %s: %q, want one applied record", p.Command.ID, lines)
	}
	stack.WaitFor(t, time.Minute, "the command queue to empty", func() bool {
		st := env.QueueState(env.Queue)
		return st.Active == 0 && st.Locked == 0
	})
	if st := env.QueueState(env.Replies); st.Active != 0 || st.DeadLettered != 0 {
		t.Fatalf("the reply queue holds %d more results (a command answered twice?), %d dead-lettered", st.Active, st.DeadLettered)
	}
}

// waitQueueFault waits for /readyz to answer 503 with the queue check
// not ready and its text saying want, and returns that check.
func waitQueueFault(t *testing.T, c *stack.Connector, want string) stack.ReadyCheck {
	t.Helper()
	var got stack.ReadyCheck
	var body string
	if !stack.Eventually(90*time.Second, func() bool {
		var code int
		var r stack.Readiness
		code, r, body = c.Readyz()
		q := queueCheck(r)
		if code != http.StatusServiceUnavailable || q == nil || q.OK {
			return false
		}
		got = *q
		return strings.Contains(q.Detail, want)
	}) {
		t.Fatalf("/readyz's queue check never said %q; last:\n%s", want, body)
	}
	return got
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// queueCheck is /readyz's check of the command queue ("queue:<name>").
func queueCheck(r stack.Readiness) *stack.ReadyCheck {
	for i := range r.Checks {
		if strings.HasPrefix(r.Checks[i].Name, "queue") {
			return &r.Checks[i]
		}
	}
	return nil
}

// failLine reports whether a FAIL of the doctor's report (its line and
// the indented lines that continue it) says want.
func failLine(out, want string) bool {
	fail := false
	for _, l := range strings.Split(out, "\n") {
		switch t := strings.TrimSpace(l); {
		case strings.HasPrefix(t, "[FAIL]"):
			fail = true
		case strings.HasPrefix(t, "["), !strings.HasPrefix(l, "   "):
			fail = false
		}
		if fail && strings.Contains(l, want) {
			return true
		}
	}
	return false
}

// TestEdgeWrongProxyPassword: a wrong proxy password is named in the log,
// in /readyz and by the doctor, never with a password; the command sent
// meanwhile is applied once when the connector restarts with the right
// password.
func TestEdgeWrongProxyPassword(t *testing.T) {
	env := newEdge(t, stack.ProxyOptions{})
	wrong := env.WriteFile("proxy-wrong.pass", []byte("not-the-password\n"), 0o600)
	env.SecretBytes([]byte("not-the-password"))
	c := env.Connector("a", env.ViaEdge(stack.EdgeSAS))
	lossless(t, env, c, fault{
		bad:        []stack.ConnectorOption{stack.Configure(func(s *stack.ConfigSpec) { s.Proxy.PasswordFile = wrong })},
		want:       "the proxy refused the credentials",
		doctorWant: "refused the credentials",
		secrets:    []string{env.Proxy.Password(), "not-the-password"},
		fix:        func() {},
		restart:    true,
	})
}

// entraEdge is a stack WithEntra whose issuer registers, beside the
// connector's good client, the bad ones the fault tests point at.
func entraEdge(t *testing.T, bad ...entra.Client) *stack.Env {
	t.Helper()
	roles := []string{"Listen:commands", "Send:replies"}
	clients := append([]entra.Client{{Name: stack.EntraConnector, Roles: roles}}, bad...)
	return newEdge(t, stack.ProxyOptions{}, stack.WithEntra(entra.Options{Clients: clients}))
}

// asClient points a ViaEdge client_secret connector at another client.
func asClient(env *stack.Env, name string) stack.ConnectorOption {
	ci := env.Entra.Client(name)
	return stack.Configure(func(s *stack.ConfigSpec) {
		s.QueueAuth.ClientID, s.QueueAuth.ClientSecretFile = ci.ID, ci.SecretFile
	})
}

// TestEdgeWrongAudience: a token for another resource is refused by the
// namespace, and the connector says so; restarted with the right client,
// it applies the waiting command once.
func TestEdgeWrongAudience(t *testing.T) {
	env := entraEdge(t, entra.Client{Name: "wrong-audience", Roles: []string{"Listen:commands", "Send:replies"},
		Audience: "https://storage.azure.com"})
	c := env.Connector("a", env.ViaEdge(stack.EdgeClientSecret))
	lossless(t, env, c, fault{
		bad:        []stack.ConnectorOption{asClient(env, "wrong-audience")},
		want:       "audience",
		doctorWant: "audience",
		secrets:    []string{env.Entra.Client("wrong-audience").Secret, env.Entra.Client(stack.EntraConnector).Secret},
		fix:        func() {},
		restart:    true,
	})
}

// TestEdgeNoListenRole: a token without the receive (Listen) role on the
// command queue is refused, and the connector says so; once the role is
// granted (the issuer's next tokens carry it) and the connector restarts
// (a token already issued keeps its roles), the command is applied once.
func TestEdgeNoListenRole(t *testing.T) {
	env := entraEdge(t)
	must(t, env.Entra.SetRoles(stack.EntraConnector, "Send:replies"))
	c := env.Connector("a", env.ViaEdge(stack.EdgeClientSecret))
	lossless(t, env, c, fault{
		want:       "Listen",
		doctorWant: "unauthorized",
		secrets:    []string{env.Entra.Client(stack.EntraConnector).Secret},
		fix:        func() { must(t, env.Entra.SetRoles(stack.EntraConnector, "Listen:commands", "Send:replies")) },
		restart:    true,
	})
}

// TestEdgeExpiredClientSecret: an expired client secret is named in the
// log, in /readyz and by the doctor; once a valid secret is in place (the
// issuer accepts it again) the running connector gets a token by itself
// and applies the waiting command once.
func TestEdgeExpiredClientSecret(t *testing.T) {
	env := entraEdge(t)
	must(t, env.Entra.SetSecretExpired(stack.EntraConnector, true))
	c := env.Connector("a", env.ViaEdge(stack.EdgeClientSecret))
	lossless(t, env, c, fault{
		want:       "Entra ID refused a token: HTTP 401 invalid_client: AADSTS7000222",
		doctorWant: "AADSTS7000222",
		secrets:    []string{env.Entra.Client(stack.EntraConnector).Secret},
		fix:        func() { must(t, env.Entra.SetSecretExpired(stack.EntraConnector, false)) },
	})
}
