// Package doctor owns the connector's self-diagnosis (`adwriteback doctor`):
// it checks, one small function per check, what admins most often get wrong
// (configuration, DC reachability, LDAPS trust and certificate expiry, the
// service account's bind, rootDSE and policy-hints support, readable domain
// and fine-grained policies, the service account's effective rights on each
// scoped OU read from the OU's security descriptor, keys, journal and audit
// paths) and explains each failure with a fix.
//
// The way to Service Bus is checked as the connector takes it: the proxy
// (proxy.go: the connector's own WebSocket, opened and closed); TLS to the
// namespace, verified with the system roots plus queue.ca_file, and the
// clock against the namespace's or the token endpoint's HTTP Date
// (namespace.go); a token from the connector's own Entra ID credential,
// refusals explained by AADSTS code (token.go); and the data roles, proven
// by using them without consuming or sending anything: a peek on the
// command queue (Listen) and a sender link attached to the reply queue and
// the status queue (Send) (queue.go). Certificate chains are judged in one place
// (chain.go) for the DCs and the namespace.
//
// A Kerberos bind is checked step by step (kerberos.go): the keytab's
// entries (never a key), its key version against the account's
// msDS-KeyVersionNumber, a ticket-granting ticket from each KDC with the
// clock skew the KDC reports, and a service ticket for each DC's
// ldap/<host> SPN. The doctor talks to the KDC itself with gokrb5's
// message types (kdc.go), so each refusal is told apart by the KDC's
// error code.
//
// It also owns a parser for binary self-relative security descriptors
// (MS-DTYP 2.4.6) and the evaluation of the rights they grant (rights.go).
//
// No check ever puts a password, a client secret, a proxy password, a
// connection-string key or a token in its output; the report is
// additionally scrubbed of every secret the configuration holds, and of
// the token the doctor obtained, before it is written.
package doctor
