package engine

import (
	"context"
	"errors"

	"github.com/adwriteback/adwriteback/ldapx"
	"github.com/adwriteback/adwriteback/relay/protocol"
)

// errUnknownOp: the command names an operation the engine cannot write.
var errUnknownOp = errors.New("unknown operation")

// apply is the last deciding stage: it marks the write in the journal,
// writes to AD and classifies the answer.
func (e *Engine) apply(ctx context.Context, c *command) *outcome {
	if o := e.markApplying(ctx, c); o != nil {
		return o
	}
	applied, err := e.write(ctx, c)
	if errors.Is(err, errUnknownOp) {
		return stop(protocol.CodeInvalidCommand, err.Error())
	}
	e.crashPoint("after_apply")
	if err == nil {
		o := stop(protocol.CodeSucceeded, "")
		o.applied, o.dc = true, applied.DC
		if c.rec.Op == protocol.OpUnlock {
			o.message = "Your account was unlocked."
		}
		return o
	}
	o := e.applyFailure(c, err)
	if o.dc == "" {
		var le *ldapx.Error
		if errors.As(err, &le) {
			o.dc = le.DC
		}
	}
	return o
}

// markApplying records in the journal that the write is about to be
// sent: nothing is written to AD unless it is, and while the journal
// cannot take it the command waits here.
func (e *Engine) markApplying(ctx context.Context, c *command) *outcome {
	for {
		err := e.cfg.Journal.MarkApplying(ctx, c.rec.ID, c.user.DN, c.user.PwdLastSet, c.user.PwdVersion)
		if err == nil {
			return nil
		}
		if !e.holdForJournal(ctx, c.rec.ID, "the write before it is sent", err) {
			return stop(protocol.CodeTransient, "journal: "+err.Error())
		}
	}
}

// write sends the command's operation to AD.
func (e *Engine) write(ctx context.Context, c *command) (ldapx.Applied, error) {
	dn, rec := c.user.DN, c.rec
	switch rec.Op {
	case protocol.OpReset:
		return c.dom.Dir.Reset(ctx, dn, c.newPassword(),
			ldapx.ResetOptions{MustChange: rec.Options.MustChange, Unlock: rec.Options.Unlock})
	case protocol.OpChange:
		return c.dom.Dir.Change(ctx, dn, string(rec.Secrets.Old.Bytes()), c.newPassword())
	case protocol.OpUnlock:
		return c.dom.Dir.Unlock(ctx, dn)
	}
	return ldapx.Applied{}, errUnknownOp
}

// applyFailure classifies a failed write. A refusal or a failure that
// says nothing about the write is first checked against the account
// (applied.go decides whether the write is in AD after all). The detail
// is the DC's error as ldapx formats it, for the audit record only
// (disclose.go).
func (e *Engine) applyFailure(c *command, err error) *outcome {
	var le *ldapx.Error
	errors.As(err, &le)
	switch ldapx.KindOf(err) {
	case ldapx.KindPasswordRestriction:
		if o := decide(c.facts(refusedAgain)).outcome(); o != nil {
			return o
		}
		return rejected(c, le)
	case ldapx.KindWrongPassword:
		// The result's detail no longer tells the user (disclose.go): the
		// message does, as the user typed the old password.
		o := stop(protocol.CodeAccessDenied, "the old password is wrong: "+err.Error())
		o.message = "The current password is not correct."
		return o
	case ldapx.KindAccessDenied:
		return stop(protocol.CodeAccessDenied, err.Error())
	case ldapx.KindNoSuchObject:
		return stop(protocol.CodeUserNotFound, err.Error())
	case ldapx.KindConstraint:
		o := stop(protocol.CodeRejectedByDC, err.Error())
		o.dcReason = protocol.DCReasonOther
		return o
	case ldapx.KindTransient, ldapx.KindCanceled:
		if o := e.wroteAnyway(c); o != nil {
			return o
		}
		return stop(protocol.CodeTransient, err.Error())
	}
	// A failure nobody classified says nothing about whether the write
	// happened: the account tells, before "internal" is answered.
	if o := e.wroteAnyway(c); o != nil {
		return o
	}
	return stop(protocol.CodeInternal, err.Error())
}

// rejected is the DC's refusal of a password the local check passed.
func rejected(c *command, le *ldapx.Error) *outcome {
	o := stop(protocol.CodeRejectedByDC, "")
	o.dcReason = protocol.DCReasonOther
	switch {
	case le != nil && le.Restriction == ldapx.RestrictionMinAge:
		o.dcReason = protocol.DCReasonMinAge
	case c.pol != nil && c.pol.HistoryLength > 0 && c.rec.Op == protocol.OpChange:
		// The local pre-check passed every rule AD states; for a change,
		// what remains is the history (or a DC filter).
		o.dcReason = protocol.DCReasonHistory
	}
	if le != nil {
		o.detail = le.Error()
	}
	return o
}
