//go:build windows

package ldapx

import (
	"context"
	"fmt"

	"github.com/go-ldap/ldap/v3"
	"github.com/go-ldap/ldap/v3/gssapi"
)

// negotiateBinder binds with SSPI as the identity the process runs as (a
// gMSA, a virtual account or the machine account): Windows holds and
// renews its tickets, and no key or password is in the connector's hands.
type negotiateBinder struct{}

func (negotiateBinder) bind(_ context.Context, l *ldap.Conn, host string) error {
	sc, err := gssapi.NewSSPIClient()
	if err != nil {
		return &KerberosError{Reason: KerberosOther, Stage: "SSPI", Err: err,
			Fix: fmt.Sprintf("Windows gave no Kerberos credentials to this process (%v): run the service as a domain identity (gMSA, virtual or machine account)", err)}
	}
	defer sc.Close()
	return l.GSSAPIBind(sc, "ldap/"+host, "")
}
