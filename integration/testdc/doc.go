// Package testdc provisions, starts, seeds, stops and destroys a throw-away
// Samba 4.17 Active Directory domain controller for the integration tests.
//
// The DC lives in a private directory (default /tmp/adwriteback-testdc, or
// $ADW_TESTDC_DIR), listens only on one loopback address (default
// 127.77.0.10, or $ADW_TESTDC_ADDR) with LDAP 389 and LDAPS 636, runs no
// DNS, NetBIOS or WINS service, and presents a certificate issued by a CA the
// harness makes itself with integration/testca, valid two years as the DC is
// kept between runs (Samba's own certificate has no subjectAltName and Go
// refuses it).
//
// Every entry point is idempotent and serialised by a file lock, so several
// test binaries (go test runs packages in parallel) can call Ensure at once:
// the first provisions and starts the DC, the others find it running.
//
// Seed data (see seed.go): OUs in and out of scope, users with display names,
// a protected account (adminCount=1 with inheritance blocked, as
// AdminSDHolder leaves it), fine-grained password policies applied to groups,
// and a least-privilege service account holding only Reset Password, Change
// Password, write pwdLastSet and write lockoutTime on the in-scope OU
// (and a group with the same rights, ServiceGroupCN, for the service
// accounts tests make with NewServiceAccount).
//
// Kerberos (kerberos.go): the KDC answers on Info.KDC (Addr:88) for
// Info.Realm; the DC's machine account has the SPNs ldap/dc1,
// ldap/<Info.Host> and ldap/<Addr>, which Samba does not add itself; and
// smb.conf allows a GSSAPI bind over LDAPS without a SASL security layer
// (allow_sasl_over_tls), as a Windows DC does. ExportKeytab writes an
// account's keys to a keytab, RotateKey gives it new ones (a higher
// key version), Krb5Conf is a krb5.conf for the realm. A DC provisioned
// by an older harness (Info.Provision) is provisioned again by Up.
package testdc
