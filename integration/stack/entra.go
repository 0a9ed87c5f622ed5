package stack

import (
	"github.com/adwriteback/adwriteback/integration/entra"
	"github.com/adwriteback/adwriteback/integration/sbemu"
)

// Default client names of WithEntra when its Options name no client.
const (
	// EntraConnector is an app registration that may Listen on the
	// command queue and Send on the reply queue.
	EntraConnector = "connector"
	// EntraConnectorMI is the Arc machine's managed identity, with the
	// same roles (a managed identity is no app registration: the token
	// endpoint refuses it a secret, certificate or federated token).
	EntraConnectorMI = "connector-mi"
	// EntraSender may Send on the command queue and Listen on the reply
	// queue.
	EntraSender = "sender"
)

// WithEntra starts a token issuer (integration/entra) before the emulator
// and makes the emulator trust its tokens: a jwt put-token is checked for
// the issuer's signature, iss, aud, exp and nbf, and each link for the
// token's roles. Env.Entra is the issuer; what a connector needs of it:
//
//	iss.AuthorityHost(), iss.TenantID()     azidentity's authority host and tenant
//	iss.CAFile() / iss.CertPool()           the CA of its HTTPS certificate:
//	                                        the stack's (Env.CA, Env.CAFile)
//	iss.Client(name): ID, SecretFile,       per client: client id, secret file,
//	  CertFile, TokenFile                   certificate (+key) PEM, federated token
//	iss.ArcEnv()                            IDENTITY_ENDPOINT, IMDS_ENDPOINT (Arc)
//
// With no Clients in o, the issuer registers EntraConnector,
// EntraConnectorMI and EntraSender with the roles the two sides need.
// Every client's secret joins the leak scan. The files go into the
// stack's Dir unless o.Dir says otherwise.
func WithEntra(o entra.Options) Option {
	return func(s *Setup) { s.Entra = &o }
}

// startEntra starts the issuer of Setup.Entra, if any, and points the
// emulator's options at it.
func (e *Env) startEntra(s *Setup) {
	e.tb.Helper()
	if s.Entra == nil {
		return
	}
	o := *s.Entra
	if o.Dir == "" {
		o.Dir = e.Dir
	}
	if o.CA == nil {
		o.CA = e.CA()
	}
	if len(o.Clients) == 0 {
		cq, rq := s.CommandQueue.Name, s.ReplyQueue.Name
		o.Clients = []entra.Client{
			{Name: EntraConnector, Roles: []string{"Listen:" + cq, "Send:" + rq}},
			{Name: EntraConnectorMI, Roles: []string{"Listen:" + cq, "Send:" + rq}, ManagedIdentity: true},
			{Name: EntraSender, Roles: []string{"Send:" + cq, "Listen:" + rq}},
		}
	}
	iss, err := entra.New(o)
	if err != nil {
		e.tb.Fatalf("stack: %v", err)
	}
	e.tb.Cleanup(func() {
		if err := iss.Close(); err != nil {
			e.tb.Errorf("stack: %v", err)
		}
	})
	for _, c := range o.Clients {
		e.SecretBytes([]byte(iss.Client(c.Name).Secret))
	}
	e.Entra = iss
	s.Emulator.JWT = sbemu.JWTOptions{JWKSFile: iss.JWKSFile(), Issuer: iss.Issuer(), Audience: entra.ServiceBusAudience}
	e.setup.Emulator.JWT = s.Emulator.JWT
}
