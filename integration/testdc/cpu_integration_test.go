//go:build integration

package testdc_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/adwriteback/adwriteback/integration/testdc"
)

// TestUsageCountsTheDCsWork: the DC's CPU time, read from /proc over the
// samba session, grows by at least what the resets between two readings
// cost the DC.
func TestUsageCountsTheDCsWork(t *testing.T) {
	info := testdc.Ensure(t)
	u := testdc.NewUser(t, info, "")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := testdc.Admin(ctx, info)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	before, err := testdc.ReadUsage(info)
	if err != nil {
		t.Fatal(err)
	}
	if before.CPU <= 0 {
		t.Fatalf("ReadUsage = %+v for a DC that provisioned and seeded itself", before)
	}
	const resets = 10
	for i := range resets {
		m := ldap.NewModifyRequest(u.DN, nil)
		m.Replace("unicodePwd", []string{testdc.EncodePassword(fmt.Sprintf("Cpu!Reset.%04d", i))})
		if err := c.Modify(m); err != nil {
			t.Fatal(err)
		}
	}
	after, err := testdc.ReadUsage(info)
	if err != nil {
		t.Fatal(err)
	}
	// Samba hashes every new password several ways (NT, Kerberos keys,
	// WDigest): at least 5 ms of CPU each on any machine this runs on.
	if got := after.Sub(before).CPU; got < resets*5*time.Millisecond {
		t.Fatalf("the DC's CPU time grew by %v over %d resets; want at least %v", got, resets, resets*5*time.Millisecond)
	}
}

// TestUsageNeedsARunningDC: a DC directory with no pid file is an
// error, not zero.
func TestUsageNeedsARunningDC(t *testing.T) {
	if _, err := testdc.ReadUsage(&testdc.Info{Dir: t.TempDir(), Addr: "127.77.0.99"}); err == nil {
		t.Fatal("ReadUsage of a DC that never ran: no error")
	}
}
