package engine

import (
	"context"
	"fmt"

	"github.com/adwriteback/adwriteback/connector/policy"
	"github.com/adwriteback/adwriteback/ldapx"
	"github.com/adwriteback/adwriteback/relay/protocol"
)

// rateLimit is the stage that counts the attempt against the user's
// limit, once per command: a redelivery of a command that already took
// its attempt takes no other. Every operation counts, check included: an
// unlimited check would let anyone able to send a signed command probe
// any account without bound (RateLimit 0: no limit).
func (e *Engine) rateLimit(ctx context.Context, c *command) *outcome {
	if e.cfg.RateLimit == 0 {
		return nil
	}
	ok, wait, err := e.cfg.Journal.TakeAttempt(ctx, c.dom.Name+"/"+c.user.ObjectGUID, c.rec.ID, e.cfg.RateLimit, e.cfg.RateWindow)
	if err != nil {
		return stop(protocol.CodeTransient, "rate-limit store: "+err.Error())
	}
	if !ok {
		o := stop(protocol.CodeRateLimited, fmt.Sprintf("more than %d operations in %s", e.cfg.RateLimit, e.cfg.RateWindow))
		o.retryAfter = wait
		return o
	}
	return nil
}

// checkPolicy is the stage that evaluates the new password against the
// user's effective policy (and predicts the minimum age for a change);
// it answers a check-only command. An unlock has no password to check.
func (e *Engine) checkPolicy(ctx context.Context, c *command) *outcome {
	if c.rec.Op == protocol.OpUnlock {
		return nil
	}
	pol, err := c.dom.Dir.EffectivePolicy(ctx, c.user)
	if err != nil {
		return policyFailure(c.user, err)
	}
	c.pol = pol
	u := c.user
	vs, err := policy.Check(LocalPolicy(c.dom, pol), policy.User{SAMAccountName: u.SAMAccountName,
		DisplayName: u.DisplayName, FirstName: u.GivenName, LastName: u.Surname, PwdLastSet: u.PwdLastSet}, c.newPassword())
	if err != nil {
		return stop(protocol.CodeTransient, "policy check: "+err.Error())
	}
	if c.rec.Op == protocol.OpChange {
		if v, tooYoung := policy.PredictMinAge(u.PwdLastSet, pol.MinAge, e.cfg.Clock.Now()); tooYoung {
			vs = append(vs, v)
		}
	}
	if len(vs) > 0 {
		o := stop(protocol.CodePolicyViolation, "")
		o.violations = vs
		return o
	}
	if c.rec.Op == protocol.OpCheck {
		o := stop(protocol.CodeSucceeded, "check only: nothing applied")
		o.message = "The new password meets the password policy."
		return o
	}
	return nil
}

// policyFailure maps a failure to read u's effective policy. The user was
// just found, so a policy the directory hides (a base search that finds
// nothing, or a refusal) is not "user not found": the service account may
// not read it (PSOs are readable by admins only by default) and the
// connector cannot know which rules apply. That is access_denied, the
// stable code for the directory refusing what the command needs; retrying
// would not help until an admin grants read. Other failures map as any
// directory read does. The detail names the policy's DN and the DC's
// error for the audit record; the result says neither (disclose.go).
func policyFailure(u *ldapx.User, err error) *outcome {
	switch ldapx.KindOf(err) {
	case ldapx.KindNoSuchObject, ldapx.KindAccessDenied:
		if u.ResultantPSO != "" {
			return stop(protocol.CodeAccessDenied, fmt.Sprintf("cannot read the fine-grained policy %s that applies to the user: "+
				"grant read on the Password Settings Container (%v)", u.ResultantPSO, err))
		}
		return stop(protocol.CodeAccessDenied, fmt.Sprintf("cannot read the domain's password policy: "+
			"grant read on the domain object (%v)", err))
	}
	return dirFailure(err)
}

// LocalPolicy is what the pre-check evaluates: the user's effective AD
// policy (domain or PSO) plus the domain's organisation rules.
func LocalPolicy(dom *Domain, p *ldapx.Policy) policy.Policy {
	lists := dom.orgLists()
	return policy.Policy{
		MinLength: p.MinLength, ComplexityEnabled: p.Complexity, HistoryLength: p.HistoryLength,
		MinAge: p.MinAge, MaxAge: p.MaxAge,
		OrgMinLength: dom.OrgMinLength, Banned: lists.Banned, Breached: lists.Breached,
		BannedMode: dom.BannedMode, TenantName: dom.TenantName,
	}
}
