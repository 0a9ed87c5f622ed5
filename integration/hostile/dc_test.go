//go:build integration

package hostile

import (
	"testing"

	"github.com/adwriteback/adwriteback/integration/testdc"
)

func pwdLastSet(t *testing.T, info *testdc.Info, dn string) string {
	return string(testdc.ReadAttr(t, info, dn, "pwdLastSet"))
}
