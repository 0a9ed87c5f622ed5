//go:build integration

package hostile

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/adwriteback/adwriteback/integration/testdc"
)

// attidUnicodePwd is unicodePwd's attribute id in replPropertyMetaData.
const attidUnicodePwd = 0x0009005a

// pwdVersion is the replication version of the account's unicodePwd: it
// grows by one with every password write, so it counts effects in AD.
func pwdVersion(t *testing.T, info *testdc.Info, dn string) int {
	t.Helper()
	raw := readAttr(t, info, dn, "replPropertyMetaData")
	if len(raw) < 16 {
		t.Fatalf("replPropertyMetaData of %s: %d bytes", dn, len(raw))
	}
	n := int(binary.LittleEndian.Uint32(raw[8:]))
	for i := range n {
		e := raw[16+48*i:]
		if len(e) < 48 {
			break
		}
		if binary.LittleEndian.Uint32(e) == attidUnicodePwd {
			return int(binary.LittleEndian.Uint32(e[4:]))
		}
	}
	return 0
}

func pwdLastSet(t *testing.T, info *testdc.Info, dn string) string {
	return string(readAttr(t, info, dn, "pwdLastSet"))
}

func readAttr(t *testing.T, info *testdc.Info, dn, attr string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := testdc.Admin(ctx, info)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r, err := c.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 30, false, "(objectClass=*)", []string{attr}, nil))
	if err != nil || len(r.Entries) != 1 {
		t.Fatalf("read %s of %s: %v", attr, dn, err)
	}
	return r.Entries[0].GetRawAttributeValue(attr)
}
