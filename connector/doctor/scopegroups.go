package doctor

import (
	"context"
	"fmt"
	"time"

	"github.com/adwriteback/adwriteback/connector/config"
)

// groupSIDReader is what the scope-group check needs of the directory
// (*ldapx.Client).
type groupSIDReader interface {
	GroupSID(ctx context.Context, dn string) (string, error)
}

// CheckScopeGroups resolves each group of domains[i].scope.exclude_groups
// and .tier0_groups to its SID, as the connector does at start: one check
// per group, OK with its SID, or FAIL when it does not resolve (the
// connector would not start).
func CheckScopeGroups(ctx context.Context, r groupSIDReader, i int, d *config.Domain, timeout time.Duration) []Check {
	lists := []struct {
		key, what string
		dns       []string
	}{
		{"exclude_groups", "excluded group: its members are refused (out_of_scope)", d.Scope.ExcludeGroups},
		{"tier0_groups", "tier-0 group: its members are refused (protected_account)", d.Scope.Tier0Groups},
	}
	var out []Check
	for _, l := range lists {
		for j, dn := range l.dns {
			path := fmt.Sprintf("domains[%d].scope.%s[%d]", i, l.key, j)
			out = append(out, checkScopeGroup(ctx, r, path, l.what, dn, timeout))
		}
	}
	if len(out) == 0 {
		out = append(out, ok("scope groups", d.Name,
			"no excluded or tier-0 groups configured; members of the built-in tier-0 groups are always refused"))
	}
	return out
}

func checkScopeGroup(ctx context.Context, r groupSIDReader, path, what, dn string, timeout time.Duration) Check {
	gctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	sid, err := r.GroupSID(gctx, dn)
	if err != nil {
		return fail("scope group", dn, fmt.Sprintf("%s names no group the service account can read: %v; the connector does not start", path, err),
			fmt.Sprintf("correct the group's DN in %s (copy its distinguishedName from the directory), or remove it", path))
	}
	return ok("scope group", dn, "%s (%s): SID %s", what, path, sid)
}
