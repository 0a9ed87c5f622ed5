//go:build integration

package edge

import (
	"net/http"
	"testing"
	"time"

	"github.com/adwriteback/adwriteback/integration/entra"
	"github.com/adwriteback/adwriteback/integration/stack"
)

// TestEdgeResetSAS: a reset end to end over AMQP over WebSockets on 443,
// through the authenticating proxy, TLS verified against the stack's CA,
// with the namespace's SAS key; the user then binds with the new
// password.
func TestEdgeResetSAS(t *testing.T) {
	env := newEdge(t, stack.ProxyOptions{})
	a := env.Start("a", env.ViaEdge(stack.EdgeSAS))
	a.WaitReady(http.StatusOK)
	resetAndBind(t, env, "Edge!Sas.Reset1")
	throughProxy(t, env)
}

// TestEdgeResetEntra: the same reset with each Entra ID credential kind,
// each getting its token from the stack's issuer (whose HTTPS the same
// CA file trusts) and the emulator checking it as Service Bus does:
// client secret, client certificate and workload identity in process,
// the Arc managed identity as the binary (it reads its endpoint from the
// process's environment).
func TestEdgeResetEntra(t *testing.T) {
	env := newEdge(t, stack.ProxyOptions{}, stack.WithEntra(entra.Options{}))
	for i, tc := range []struct {
		auth stack.EdgeAuth
		opts []stack.ConnectorOption
	}{
		{auth: stack.EdgeClientSecret},
		{auth: stack.EdgeClientCertificate},
		{auth: stack.EdgeWorkloadIdentity},
		{auth: stack.EdgeManagedIdentity, opts: []stack.ConnectorOption{stack.Binary(bins.Path(stack.Production))}},
	} {
		t.Run(string(tc.auth), func(t *testing.T) {
			c := env.Start(string(tc.auth), append([]stack.ConnectorOption{env.ViaEdge(tc.auth)}, tc.opts...)...)
			defer c.Stop()
			c.WaitReady(http.StatusOK)
			id := resetAndBind(t, env, "Edge!Entra.Reset"+string(rune('1'+i)))
			// the audit record follows the result (it is written once the
			// message is settled)
			stack.WaitFor(t, time.Minute, "the command's audit record", func() bool { return c.AuditCount() > 0 })
			if r := c.AuditRecords(); len(r) != 1 || r[0].CommandID != id || !r[0].Applied {
				t.Fatalf("%s audited %+v, want the one command it applied", tc.auth, r)
			}
		})
	}
	throughProxy(t, env)
}
