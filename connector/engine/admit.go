package engine

import (
	"context"

	"github.com/go-ldap/ldap/v3"

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

// inScope reports whether dn is at or below one of the OUs, comparing
// the parsed DNs RDN by RDN (attribute types and values without regard
// to case, as AD compares them), so an escaped comma in a value never
// passes for a separator. A DN or OU that does not parse is not in
// scope.
func inScope(dn string, ous []string) bool {
	if len(ous) == 0 {
		return true
	}
	d, err := ldap.ParseDN(dn)
	if err != nil || len(d.RDNs) == 0 {
		return false
	}
	for _, ou := range ous {
		o, err := ldap.ParseDN(ou)
		if err != nil || len(o.RDNs) == 0 {
			continue
		}
		if o.EqualFold(d) || o.AncestorOfFold(d) {
			return true
		}
	}
	return false
}
