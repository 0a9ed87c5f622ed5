package stack

import (
	"github.com/adwriteback/adwriteback/relay/servicebus"
)

// EdgeAuth is how a connector ViaEdge authenticates to the namespace:
// queue.auth's values.
type EdgeAuth = servicebus.AuthKind

// The ways through the edge: the namespace's SAS key, or each Entra ID
// credential kind against the stack's token issuer (WithEntra).
const (
	EdgeSAS               EdgeAuth = servicebus.AuthConnectionString
	EdgeClientSecret      EdgeAuth = servicebus.AuthClientSecret
	EdgeClientCertificate EdgeAuth = servicebus.AuthClientCertificate
	EdgeWorkloadIdentity  EdgeAuth = servicebus.AuthWorkloadIdentity
	EdgeManagedIdentity   EdgeAuth = servicebus.AuthManagedIdentity
)

// edgeConnFile is the namespace's connection string in Dir (ViaEdge with
// EdgeSAS): Endpoint=sb://<namespace>/, as Azure gives it.
const edgeConnFile = "sb-namespace.conn"

// ViaEdge points a connector at the network edge as a deployment behind
// a locked-down firewall runs: AMQP over WebSockets on 443
// (queue.transport: websockets), TLS verified against the stack's one
// CA (queue.ca_file: CAFile), through the stack's proxy with its user
// and password file (WithProxy; none without), authenticated by auth:
//   - EdgeSAS: the namespace's connection string (Env.Emu's, naming
//     Namespace, not the loopback port), from a file in Dir;
//   - EdgeClientSecret, EdgeClientCertificate, EdgeWorkloadIdentity,
//     EdgeManagedIdentity: the client EntraConnector of the stack's
//     token issuer (WithEntra; its secret, certificate or federated
//     token file), or for EdgeManagedIdentity the client
//     EntraConnectorMI, queue.authority_host at the issuer. Managed identity
//     reads the Arc endpoint from the process's environment
//     (IDENTITY_ENDPOINT, IMDS_ENDPOINT: Entra.ArcEnv), so it needs the
//     binary (Binary), which gets them through ProcessEnv: an in-process
//     connector fails the test rather than change this process's
//     environment.
//
// The namespace's name resolves nowhere but in HostsWrap: an in-process
// connector reaches the emulator through queue.custom_endpoint (the
// WebSocket listener's address, TLS and tokens still naming the
// namespace); a binary runs under HostsWrap and resolves the name as DNS
// would, with no custom endpoint. It needs WithEmulatorTLS. Options after
// ViaEdge may still change the spec (a wrong password file, say).
func (e *Env) ViaEdge(auth EdgeAuth) ConnectorOption {
	e.tb.Helper()
	if e.Emu == nil || e.Emu.HostName() == "" {
		e.tb.Fatalf("stack: ViaEdge needs WithEmulatorTLS")
	}
	if auth != EdgeSAS && e.Entra == nil {
		e.tb.Fatalf("stack: ViaEdge(%s) needs WithEntra", auth)
	}
	connFile := ""
	if auth == EdgeSAS {
		connFile = e.WriteFile(edgeConnFile, []byte(e.Emu.NamespaceConnectionString()), 0o600)
	}
	return func(s *ConnectorSetup) {
		sp := &s.Spec
		sp.Transport = "websockets"
		sp.QueueCAFile = e.CAFile()
		if p := e.Proxy; p != nil {
			sp.Proxy = ProxySpec{URL: p.URL(), Username: p.User(), PasswordFile: p.PasswordFile()}
		}
		if auth == EdgeSAS {
			sp.ConnectionStringFile = connFile
			sp.QueueAuth = QueueAuthSpec{Auth: string(EdgeSAS)}
		} else {
			ci := e.Entra.Client(EntraConnector)
			a := QueueAuthSpec{Auth: string(auth), Namespace: e.Emu.HostName()}
			switch auth {
			case EdgeClientSecret:
				a.TenantID, a.ClientID, a.ClientSecretFile = e.Entra.TenantID(), ci.ID, ci.SecretFile
			case EdgeClientCertificate:
				a.TenantID, a.ClientID, a.CertificateFile = e.Entra.TenantID(), ci.ID, ci.CertFile
			case EdgeWorkloadIdentity:
				a.TenantID, a.ClientID, a.TokenFile = e.Entra.TenantID(), ci.ID, ci.TokenFile
			case EdgeManagedIdentity:
				for k, v := range e.Entra.ArcEnv() {
					s.ProcessEnv = append(s.ProcessEnv, k+"="+v)
				}
			}
			sp.QueueAuth = a
			sp.AuthorityHost = e.Entra.AuthorityHost()
		}
		s.late = append(s.late, func(s *ConnectorSetup) {
			if s.Binary == "" {
				if auth == EdgeManagedIdentity {
					e.tb.Fatalf("stack: ViaEdge(%s) reads the Arc endpoint from the environment: run the binary (Binary)", auth)
				}
				if s.Spec.CustomEndpoint == "" {
					s.Spec.CustomEndpoint = e.Emu.WebSocketEndpoint()
				}
				return
			}
			if s.Wrap == nil && s.Spec.CustomEndpoint == "" {
				s.Wrap = e.HostsWrap()
			}
		})
	}
}
