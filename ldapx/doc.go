// Package ldapx is everything the connector does with Active Directory over
// LDAP: TLS connections to a list of domain controllers with failover and
// optional DNS SRV discovery (a discovered DC must be under the domain or
// an allowed name, hold a certificate from the configured CA for its name
// and say so in its rootDSE before it gets the bind; see Config.Domain), a
// small health-checked pool whose DCs are each probed on a schedule (each
// has a state: unknown, up or down; see Client.ProbeDCs), the rootDSE, user
// lookup by objectGUID / immutable id (ms-DS-ConsistencyGuid or objectGUID)
// / UPN / sAMAccountName, the
// effective password policy (domain root overlaid by the resultant PSO,
// cached), the password operations (admin reset, user change, must change
// at next logon, unlock) and the decoding of the DC's refusals into typed
// errors.
//
// The bind (Config.BindMethod) is simple (DN and password), Kerberos
// (GSSAPI with keys from a keytab, reloaded when the file changes; the KDC
// exchanges are this package's own, so that a KDC's KRB_ERROR is
// classified by its code into a KerberosError with a fix line) or, on
// Windows, negotiate (SSPI as the process's identity). Both GSSAPI binds
// run over the verified TLS, to the SPN ldap/<DC host name>, and negotiate
// no SASL security layer. A failed bind is transient: it is the
// connector's to fix, and the DC's state says how.
//
// go-ldap has no context support; every call here takes a context and
// bridges it: the context's deadline becomes the request timeout, and the
// connection is closed (and dropped from the pool) when the context ends
// while a request is in flight.
//
// ldapx never imports the connector or the relay packages. Passwords passed
// in are never included in any error or log line.
package ldapx
