package testdc

import (
	"testing"

	"github.com/go-ldap/ldap/v3"
)

// SetConsistencyGUID sets dn's ms-DS-ConsistencyGuid to the 16 bytes raw
// (what Entra Connect anchors on, filled from objectGUID by newer
// installations), bound as the administrator; it fails the test when it
// cannot.
func SetConsistencyGUID(tb testing.TB, info *Info, dn string, raw []byte) {
	tb.Helper()
	admin(tb, info, func(c *ldap.Conn) error {
		m := ldap.NewModifyRequest(dn, nil)
		m.Replace("mS-DS-ConsistencyGuid", []string{string(raw)})
		return c.Modify(m)
	})
}
