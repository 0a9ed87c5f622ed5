// Package kerberos holds the integration tests of the connector's
// Kerberos bind (issue 16) against the Samba test DC: the commands work
// with a keytab and no password anywhere in the configuration, a rotated
// keytab is picked up without a restart, and a wrong keytab, an unknown
// principal, a KDC that is down and a clock 10 minutes off each make the
// DC not ready with the classified cause in /readyz, the log and
// `adwriteback doctor`. Build tag integration; the tests are named
// TestKerberos....
package kerberos
