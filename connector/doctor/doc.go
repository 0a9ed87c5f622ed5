// Package doctor owns the connector's self-diagnosis (`adwriteback doctor`):
// it checks, one small function per check, what admins most often get wrong
// (configuration, DC reachability, LDAPS trust and certificate expiry, the
// service account's bind, rootDSE and policy-hints support, readable domain
// and fine-grained policies, the service account's effective rights on each
// scoped OU read from the OU's security descriptor, keys, journal and audit
// paths, and the Service Bus queue) and explains each failure with a fix.
//
// It also owns a parser for binary self-relative security descriptors
// (MS-DTYP 2.4.6) and the evaluation of the rights they grant (rights.go).
//
// No check ever puts a password, a client secret or a connection-string key
// in its output; the report is additionally scrubbed of every secret the
// configuration holds before it is written.
package doctor
