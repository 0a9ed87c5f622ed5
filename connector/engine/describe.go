package engine

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/adwriteback/adwriteback/connector/policy"
	"github.com/adwriteback/adwriteback/relay/protocol"
)

// A describe command (protocol v2) asks for the user's password
// requirements before the user types: it goes through the stages that
// refuse an account as a check would, takes an attempt like a check, and
// ends in describe instead of checkPolicy. It writes nothing (no journal
// mark, no AD write); its result, like every result, is journaled.
//
//	findUser    route to the domain, find the account (find.go)
//	admit       scope, exclusions, protection, disabled (admit.go)
//	rateLimit   per-user attempts, counted like a check (check.go)
//	describe    the effective policy and the organisation's rules
//
// settleResumed and appliedElsewhere have nothing to settle for it: it
// is never marked "applying" and never writes a password.

// describeOnly is the detail of a describe that succeeded.
const describeOnly = "describe only: nothing applied"

// describeMessage is the user-safe message of a describe that succeeded.
const describeMessage = "These are the password requirements."

// stagesFor returns the stages a command with op runs through.
func (e *Engine) stagesFor(op protocol.Op) []stage {
	if op == protocol.OpDescribe {
		return e.describeStages
	}
	return e.stages
}

// describe is the last stage of a describe command: the user's effective
// AD policy (the domain's or a PSO's) and the domain's organisation rules,
// as the result's policy. A policy the service account may not read is
// access_denied, as for a check (policyFailure).
func (e *Engine) describe(ctx context.Context, c *command) *outcome {
	pol, err := c.dom.Dir.EffectivePolicy(ctx, c.user)
	if err != nil {
		return policyFailure(c.user, err)
	}
	o := stop(protocol.CodeSucceeded, describeOnly)
	o.message = describeMessage
	o.policy = WirePolicy(LocalPolicy(c.dom, pol), pol.PSO != "" || c.user.ResultantPSO != "", c.user.PwdLastSet, e.cfg.Clock.Now())
	return o
}

// WirePolicy is the result's policy for the local policy p (the effective
// AD policy plus the organisation's rules; fineGrained when a PSO is in
// force) of a user whose password was last set at pwdLastSet, at now. It
// names no PSO, group or DN. Numbers outside the protocol's bounds (a
// directory holding nonsense) are clamped to them, so that the result
// can always be signed.
func WirePolicy(p policy.Policy, fineGrained bool, pwdLastSet, now time.Time) *protocol.Policy {
	w := &protocol.Policy{
		MinLength: clampCount(p.MinLength), MaxLength: max(clampCount(p.EffectiveMaxLength()), 1),
		Complexity: p.ComplexityEnabled, HistoryLength: clampCount(p.HistoryLength),
		MinAge: seconds(p.MinAge), MaxAge: seconds(p.MaxAge), Source: protocol.SourceDomain,
		// Entra mode checks the user's names and the tenant name as banned
		// terms even with no list (policy.Check).
		Org: protocol.OrgPolicy{MinLength: clampCount(p.OrgMinLength), Banned: p.Banned != nil || p.BannedMode == policy.BannedEntra,
			Breached: p.Breached != nil},
	}
	if w.Org.Banned {
		w.Org.BannedMode = protocol.BannedStrict
		if p.BannedMode == policy.BannedEntra {
			w.Org.BannedMode = protocol.BannedEntra
		}
	}
	if w.Complexity {
		w.ComplexityRule = ComplexityRule()
	}
	if fineGrained {
		w.Source = protocol.SourceFineGrained
	}
	if v, tooYoung := policy.PredictMinAge(pwdLastSet, p.MinAge, now); tooYoung {
		at := protocol.At(v.NotBefore)
		w.NextChangeAt = &at
	}
	return w
}

// ComplexityRule says, for the user, what AD's complexity requirement
// means as the connector checks it (connector/policy).
func ComplexityRule() string {
	names := map[policy.Category]string{
		policy.CategoryUppercase: "uppercase letters", policy.CategoryLowercase: "lowercase letters",
		policy.CategoryDigit: "digits", policy.CategorySymbol: "symbols", policy.CategoryOtherLetter: "other letters",
	}
	var cats []string
	for _, c := range policy.AllCategories() {
		cats = append(cats, names[c])
	}
	return fmt.Sprintf("at least %d of: %s; and not the account name, nor any part of the display name of %d or more characters",
		policy.ComplexityMinCategories, strings.Join(cats, ", "), policy.MinNameLength)
}

// maxWireCount is the protocol's bound on a policy's counts.
const maxWireCount = 65535

func clampCount(n int) int { return min(max(n, 0), maxWireCount) }

// seconds is d in whole seconds, never negative.
func seconds(d time.Duration) int64 { return max(int64(d/time.Second), 0) }
