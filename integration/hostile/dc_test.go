//go:build integration

package hostile

import (
	"testing"

	"github.com/adwriteback/adwriteback/integration/testdc"
)

// pwdVersion counts password writes to dn (testdc.PwdVersion).
func pwdVersion(t *testing.T, info *testdc.Info, dn string) int {
	return testdc.PwdVersion(t, info, dn)
}

func pwdLastSet(t *testing.T, info *testdc.Info, dn string) string {
	return string(testdc.ReadAttr(t, info, dn, "pwdLastSet"))
}
