package engine

import (
	"context"
	"strings"

	"github.com/adwriteback/adwriteback/relay/protocol"
)

// admit is the stage that refuses, before anything is written, an account
// this connector must not touch: outside the scope OUs, in an excluded
// group (also nested), protected (adminCount=1, unless allowed) or
// disabled.
func (e *Engine) admit(ctx context.Context, c *command) *outcome {
	u, dom := c.user, c.dom
	if !inScope(u.DN, dom.ScopeOUs) {
		return stop(protocol.CodeOutOfScope, "the account is outside the configured OUs")
	}
	for _, g := range dom.ExcludeGroups {
		member, err := dom.Dir.IsMemberOf(ctx, u.DN, g)
		if err != nil {
			return dirFailure(err)
		}
		if member {
			return stop(protocol.CodeOutOfScope, "the account is in an excluded group")
		}
	}
	if u.Protected() && !dom.AllowProtected {
		return stop(protocol.CodeProtectedAccount, "adminCount=1: protected accounts are never written")
	}
	if u.Disabled() {
		return stop(protocol.CodeAccountDisabled, "userAccountControl has ACCOUNTDISABLE")
	}
	return nil
}

// inScope reports whether dn is at or below one of the OUs.
func inScope(dn string, ous []string) bool {
	if len(ous) == 0 {
		return true
	}
	l := strings.ToLower(normDN(dn))
	for _, ou := range ous {
		o := strings.ToLower(normDN(ou))
		if l == o || strings.HasSuffix(l, ","+o) {
			return true
		}
	}
	return false
}

// normDN removes spaces around RDN separators ("OU=A, DC=x" -> "OU=A,DC=x").
func normDN(dn string) string {
	parts := strings.Split(dn, ",")
	for i, p := range parts {
		kv := strings.SplitN(strings.TrimSpace(p), "=", 2)
		if len(kv) == 2 {
			parts[i] = strings.TrimSpace(kv[0]) + "=" + strings.TrimSpace(kv[1])
		} else {
			parts[i] = strings.TrimSpace(p)
		}
	}
	return strings.Join(parts, ",")
}
