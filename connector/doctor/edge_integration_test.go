//go:build integration

package doctor_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/adwriteback/adwriteback/connector/config"
	"github.com/adwriteback/adwriteback/connector/doctor"
	"github.com/adwriteback/adwriteback/integration/entra"
	"github.com/adwriteback/adwriteback/integration/sbemu"
	"github.com/adwriteback/adwriteback/integration/stack"
	"github.com/adwriteback/adwriteback/integration/testca"
)

// edge is a stack with the network edge a real deployment meets: the
// emulator listening with TLS as adwtest.servicebus.windows.net, a
// tinyproxy with Basic authentication in front of it, and the Entra ID
// token issuer whose tokens the emulator checks (roles per queue).
type edge struct {
	t   *testing.T
	env *stack.Env
	// ca is queue.ca_file: the stack's CA (the namespace) and the
	// issuer's (the token endpoint).
	ca string
}

// edgeClient is the app registration the doctor authenticates as, with
// the roles the connector needs on the stack's default queues; arc is
// the machine's managed identity; the other two get tokens Service Bus
// refuses.
const edgeClient = "doctor"

var edgeClients = []string{edgeClient, "arc", "wrong-audience", "issuer-behind"}

func newEdge(t *testing.T) *edge {
	// The issuer gets a CA of its own (the stack would give it its one
	// CA): the untrusted CA case trusts the token endpoint, not the
	// namespace.
	issuerCA, err := testca.New("adwriteback test CA (entra)")
	if err != nil {
		t.Fatal(err)
	}
	env := stack.New(t, stack.WithEmulatorTLS(), stack.WithProxy(stack.ProxyOptions{}), stack.WithEntra(entra.Options{CA: issuerCA,
		Clients: []entra.Client{{Name: edgeClient, Roles: edgeRoles}, {Name: "arc", Roles: edgeRoles, ManagedIdentity: true},
			{Name: "wrong-audience", Roles: edgeRoles, Audience: "https://storage.azure.com"},
			{Name: "issuer-behind", Roles: edgeRoles, ExpiredTokens: true}}}))
	e := &edge{t: t, env: env}
	var bundle []byte
	for _, f := range []string{env.CAFile(), env.Entra.CAFile()} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		bundle = append(bundle, b...)
	}
	e.ca = env.Path("queue-ca-bundle.pem")
	if err := os.WriteFile(e.ca, bundle, 0o644); err != nil {
		t.Fatal(err)
	}
	return e
}

// spec is the connector's configuration for the edge: client secret auth,
// WebSockets through the proxy to the emulator's TLS listener, the
// issuer as the authority.
func (e *edge) spec() stack.ConfigSpec {
	env := e.env
	c := env.Entra.Client(edgeClient)
	s := stack.DCConfig(env.DC, env.Dir)
	s.Queue, s.ReplyQueue, s.Transport, s.QueueCAFile = env.Queue, env.Replies, "websockets", e.ca
	s.CustomEndpoint, s.AuthorityHost = env.Emu.WebSocketEndpoint(), env.Entra.AuthorityHost()
	s.Proxy = stack.ProxySpec{URL: env.Proxy.URL(), Username: env.Proxy.User(), PasswordFile: env.Proxy.PasswordFile()}
	s.QueueAuth = stack.QueueAuthSpec{Auth: "client_secret", Namespace: env.Emu.HostName(), TenantID: env.Entra.TenantID(),
		ClientID: c.ID, ClientSecretFile: c.SecretFile}
	return s
}

// run writes spec and runs the doctor with clock (nil: the real one),
// checking that no secret of the edge is in the report.
func (e *edge) run(spec stack.ConfigSpec, clock clockwork.Clock) *doctor.Report {
	e.t.Helper()
	path := filepath.Join(e.t.TempDir(), "config.yaml")
	if err := spec.WriteFile(path); err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep := doctor.Run(ctx, doctor.Options{ConfigPath: path, Timeout: 10 * time.Second, Clock: clock, ReplyQueue: e.env.Replies})
	secrets := []string{e.env.Proxy.Password(), e.env.Proxy.BasicCredential(), e.env.DC.ServicePass}
	for _, c := range edgeClients {
		secrets = append(secrets, e.env.Entra.Client(c).Secret)
	}
	checkReport(e.t, rep, secrets...)
	return rep
}

// queues runs only the queue checks on spec, as the doctor runs them when
// the token check passed: what the SDK's own token request meets is told
// there. It checks that no secret of the edge is in them.
func (e *edge) queues(spec stack.ConfigSpec) *doctor.Report {
	e.t.Helper()
	path := filepath.Join(e.t.TempDir(), "config.yaml")
	if err := spec.WriteFile(path); err != nil {
		e.t.Fatal(err)
	}
	cfg, err := config.Load(path, func(string) string { return "" })
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep := &doctor.Report{Config: path, Checks: doctor.CheckQueues(ctx, cfg.Queue, 10*time.Second, doctor.ReplyTarget(e.env.Replies))}
	var secrets []string
	for _, c := range edgeClients {
		secrets = append(secrets, e.env.Entra.Client(c).Secret)
	}
	checkReport(e.t, rep, append(secrets, e.env.Proxy.Password(), e.env.Proxy.BasicCredential())...)
	return rep
}

// want asserts the one check named name has status, its detail holds
// detail and its fix holds fix.
func want(t *testing.T, rep *doctor.Report, name string, status doctor.Status, detail, fix string) {
	t.Helper()
	c := one(t, rep, name, "")
	if c.Status != status || !strings.Contains(c.Detail, detail) || !strings.Contains(c.Fix, fix) {
		t.Errorf("%s: %s %q, fix %q; want %s with %q, fix with %q", name, c.Status, c.Detail, c.Fix, status, detail, fix)
	}
	if c.Status != doctor.OK && c.Status != doctor.Skip && c.Fix == "" {
		t.Errorf("%s: %s without a fix", name, c.Status)
	}
}

// wantVerified asserts that the namespace tls check verified the
// namespace's certificate from the harness CA. The stack's CA, and the
// certificates it issues, live a day (integration/testca), under the
// doctor's expiry warning: WARN for that, with its fix, passes too.
func wantVerified(t *testing.T, rep *doctor.Report) {
	t.Helper()
	c := one(t, rep, "namespace tls", "")
	if !strings.Contains(c.Detail, "verified") || !strings.Contains(c.Detail, "harness CA") || !strings.Contains(c.Detail, "expires in") ||
		(c.Status != doctor.OK && (c.Status != doctor.Warn || !strings.Contains(c.Fix, "renew"))) {
		t.Errorf("namespace tls: %s %q, fix %q; want verified from the harness CA", c.Status, c.Detail, c.Fix)
	}
}

// edgeRoles are Listen on the stack's command queue and Send on its reply
// queue, by their default names.
var edgeRoles = []string{"Listen:commands", "Send:replies"}

// TestDoctorEdge runs the edge checks against the harness: each passes on
// a good setup, and each failure is told apart with its fix.
func TestDoctorEdge(t *testing.T) {
	e := newEdge(t)
	env := e.env

	t.Run("good", func(t *testing.T) {
		rep := e.run(e.spec(), nil)
		for _, name := range []string{"proxy", "entra token", "clock skew", "queue", "reply queue"} {
			want(t, rep, name, doctor.OK, "", "")
		}
		wantVerified(t, rep)
		want(t, rep, "clock skew", doctor.OK, "the namespace "+env.Emu.HostName(), "")
		want(t, rep, "reply queue", doctor.OK, "nothing was sent", "")
	})

	// Every Entra ID credential kind gets its token from the issuer and
	// passes the roles checks.
	for _, kind := range []string{"client_certificate", "workload_identity", "managed_identity"} {
		t.Run(kind, func(t *testing.T) {
			c := env.Entra.Client(edgeClient)
			s := e.spec()
			s.QueueAuth = stack.QueueAuthSpec{Auth: kind, Namespace: env.Emu.HostName(), TenantID: env.Entra.TenantID(), ClientID: c.ID}
			switch kind {
			case "client_certificate":
				s.QueueAuth.CertificateFile = c.CertFile
			case "workload_identity":
				s.QueueAuth.TokenFile = c.TokenFile
			case "managed_identity":
				s.QueueAuth.TenantID, s.QueueAuth.ClientID = "", ""
				for k, v := range env.Entra.ArcEnv() {
					t.Setenv(k, v)
				}
			}
			rep := e.run(s, nil)
			want(t, rep, "entra token", doctor.OK, "auth "+kind, "")
			for _, name := range []string{"clock skew", "queue", "reply queue"} {
				want(t, rep, name, doctor.OK, "", "")
			}
		})
	}

	t.Run("amqp on 5671", func(t *testing.T) {
		s := e.spec()
		s.Transport, s.CustomEndpoint, s.Proxy = "amqp", env.Emu.AMQPSEndpoint(), stack.ProxySpec{}
		rep := e.run(s, nil)
		wantVerified(t, rep)
		want(t, rep, "proxy", doctor.Skip, "", "")
		for _, name := range []string{"entra token", "clock skew", "queue", "reply queue"} {
			want(t, rep, name, doctor.OK, "", "")
		}
	})

	t.Run("expired secret", func(t *testing.T) {
		if err := env.Entra.SetSecretExpired(edgeClient, true); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = env.Entra.SetSecretExpired(edgeClient, false) })
		rep := e.run(e.spec(), nil)
		want(t, rep, "entra token", doctor.Fail, "AADSTS7000222", "(queue.client_secret_file)")
		want(t, rep, "entra token", doctor.Fail, "expired", env.Entra.Client(edgeClient).SecretFile)
		want(t, rep, "queue", doctor.Skip, "entra token", "")
		// The SDK's own token request, refused: the queue checks name
		// the credential, not DNS or the network.
		rep = e.queues(e.spec())
		for _, name := range []string{"queue", "reply queue"} {
			want(t, rep, name, doctor.Fail, "Entra ID refused the token", "see the entra token check")
			want(t, rep, name, doctor.Fail, "AADSTS7000222", env.Entra.Client(edgeClient).SecretFile)
			if c := one(t, rep, name, ""); strings.Contains(c.Fix, "DNS") {
				t.Errorf("%s: a refused token is told as a network fault: %s", name, c.Fix)
			}
		}
	})

	for _, c := range []struct {
		name                string
		roles               []string
		queue, reply        doctor.Status
		check, detail, role string
	}{
		{"no listen role", []string{"Send:" + env.Replies}, doctor.Fail, doctor.OK, "queue", "Listen", `"Azure Service Bus Data Receiver" on the queue ` + env.Queue},
		{"no send role", []string{"Listen:" + env.Queue}, doctor.OK, doctor.Fail, "reply queue", "Send", `"Azure Service Bus Data Sender" on the queue ` + env.Replies},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := env.Entra.SetRoles(edgeClient, c.roles...); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = env.Entra.SetRoles(edgeClient, edgeRoles...) })
			rep := e.run(e.spec(), nil)
			want(t, rep, "entra token", doctor.OK, "", "")
			want(t, rep, "queue", c.queue, "", "")
			want(t, rep, "reply queue", c.reply, "", "")
			want(t, rep, c.check, doctor.Fail, c.detail, c.role)
		})
	}

	// status.queue, where the presence heartbeat goes, needs Send too.
	t.Run("status queue", func(t *testing.T) {
		env.AddQueue("doctor-status", sbemu.QueueOptions{})
		s := e.spec()
		s.StatusQueue = "doctor-status"
		t.Cleanup(func() { _ = env.Entra.SetRoles(edgeClient, edgeRoles...) })
		if err := env.Entra.SetRoles(edgeClient, append(edgeRoles, "Send:doctor-status")...); err != nil {
			t.Fatal(err)
		}
		want(t, e.run(s, nil), "status queue", doctor.OK, "nothing was sent", "")
		if err := env.Entra.SetRoles(edgeClient, edgeRoles...); err != nil {
			t.Fatal(err)
		}
		rep := e.run(s, nil)
		want(t, rep, "status queue", doctor.Fail, "refused a sender on the status queue", `"Azure Service Bus Data Sender" on the queue doctor-status`)
		want(t, rep, "reply queue", doctor.OK, "", "")
		// A role on a queue that does not exist: told as missing.
		if err := env.Entra.SetRoles(edgeClient, append(edgeRoles, "Send:no-such-status")...); err != nil {
			t.Fatal(err)
		}
		s.StatusQueue = "no-such-status"
		want(t, e.run(s, nil), "status queue", doctor.Fail, `the status queue "no-such-status" does not exist`, "step 7")
	})

	for _, c := range []struct{ client, detail, fix string }{
		{"wrong-audience", `for the audience "https://storage.azure.com"`, "queue.authority_host"},
		{"issuer-behind", "before now", "NTP"},
	} {
		t.Run(c.client, func(t *testing.T) {
			info := env.Entra.Client(c.client)
			s := e.spec()
			s.QueueAuth.ClientID, s.QueueAuth.ClientSecretFile = info.ID, info.SecretFile
			rep := e.run(s, nil)
			want(t, rep, "entra token", doctor.Fail, c.detail, c.fix)
			if c.client == "wrong-audience" {
				// Service Bus refuses the token on the queue: the fix
				// names the audience beside the role.
				rep = e.queues(s)
				want(t, rep, "queue", doctor.Fail, "unauthorized", "the audience https://servicebus.azure.net")
			}
		})
	}

	t.Run("untrusted CA", func(t *testing.T) {
		s := e.spec()
		s.QueueCAFile = env.Entra.CAFile() // trusts the token endpoint, not the namespace
		rep := e.run(s, nil)
		want(t, rep, "namespace tls", doctor.Fail, "untrusted CA", "inspect")
		want(t, rep, "namespace tls", doctor.Fail, "harness CA", "queue.ca_file")
		want(t, rep, "proxy", doctor.Fail, "does not verify", "queue.ca_file")
		want(t, rep, "queue", doctor.Fail, "does not verify", "see the namespace tls check")
	})

	t.Run("skewed clock", func(t *testing.T) {
		for _, c := range []struct {
			ahead  time.Duration
			status doctor.Status
		}{{10 * time.Minute, doctor.Fail}, {-2 * time.Minute, doctor.Warn}} {
			rep := e.run(e.spec(), clockwork.NewFakeClockAt(time.Now().Add(c.ahead)))
			want(t, rep, "clock skew", c.status, "the namespace "+env.Emu.HostName(), "NTP")
		}
	})

	t.Run("wrong proxy password", func(t *testing.T) {
		s := e.spec()
		s.Proxy.PasswordFile = env.Path("wrong-proxy.pass")
		if err := os.WriteFile(s.Proxy.PasswordFile, []byte("not-the-proxy-password\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		rep := e.run(s, nil)
		want(t, rep, "proxy", doctor.Fail, "refused", s.Proxy.PasswordFile)
		// tinyproxy answers a wrong password with 401, not 407: the
		// check gives the status the proxy gave.
		want(t, rep, "proxy", doctor.Fail, "refused the credentials (HTTP 401 ", "")
		want(t, rep, "namespace tls", doctor.Fail, "proxy", "see the proxy check")
		want(t, rep, "queue", doctor.Fail, "proxy", "see the proxy check")
	})
}
