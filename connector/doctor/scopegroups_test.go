package doctor

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/adwriteback/adwriteback/connector/config"
	"github.com/adwriteback/adwriteback/ldapx"
)

type fakeGroups map[string]string // DN -> SID

func (f fakeGroups) GroupSID(_ context.Context, dn string) (string, error) {
	if sid, ok := f[dn]; ok {
		return sid, nil
	}
	return "", &ldapx.Error{Op: "ldapx.GroupSID", Kind: ldapx.KindNoSuchObject}
}

func TestCheckScopeGroups(t *testing.T) {
	groups := fakeGroups{
		"CN=No Writeback,OU=Groups,DC=adw,DC=test": "S-1-5-21-1-2-3-1601",
		"CN=DnsAdmins,CN=Users,DC=adw,DC=test":     "S-1-5-21-1-2-3-1102",
	}
	d := &config.Domain{Name: "adw.test", Scope: config.Scope{
		ExcludeGroups: []string{"CN=No Writeback,OU=Groups,DC=adw,DC=test", "CN=No Writebak,OU=Groups,DC=adw,DC=test"},
		Tier0Groups:   []string{"CN=DnsAdmins,CN=Users,DC=adw,DC=test"},
	}}
	got := CheckScopeGroups(context.Background(), groups, 0, d, time.Second)
	want := []struct {
		status Status
		target string
		detail string
	}{
		{OK, "CN=No Writeback,OU=Groups,DC=adw,DC=test", "domains[0].scope.exclude_groups[0]): SID S-1-5-21-1-2-3-1601"},
		{Fail, "CN=No Writebak,OU=Groups,DC=adw,DC=test", "domains[0].scope.exclude_groups[1] names no group"},
		{OK, "CN=DnsAdmins,CN=Users,DC=adw,DC=test", "domains[0].scope.tier0_groups[0]): SID S-1-5-21-1-2-3-1102"},
	}
	if len(got) != len(want) {
		t.Fatalf("%d checks, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		c := got[i]
		if c.Status != w.status || c.Target != w.target || !strings.Contains(c.Detail, w.detail) {
			t.Errorf("check %d: %+v; want %s on %s with %q", i, c, w.status, w.target, w.detail)
		}
		if c.Status == Fail && !strings.Contains(c.Fix, "domains[0].scope.exclude_groups[1]") {
			t.Errorf("check %d: the fix %q does not name the setting", i, c.Fix)
		}
	}

	none := CheckScopeGroups(context.Background(), groups, 0, &config.Domain{Name: "adw.test"}, time.Second)
	if len(none) != 1 || none[0].Status != OK {
		t.Fatalf("no groups configured: %+v, want one OK", none)
	}
}
