package engine

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/adwriteback/adwriteback/connector/audit"
	"github.com/adwriteback/adwriteback/connector/journal"
	"github.com/adwriteback/adwriteback/connector/policy"
	"github.com/adwriteback/adwriteback/ldapx"
	"github.com/adwriteback/adwriteback/relay/protocol"
	"github.com/adwriteback/adwriteback/relay/transport"
)

// outcome is the engine's verdict on one command before it is signed.
type outcome struct {
	code       protocol.ResultCode
	message    string
	violations []policy.Violation
	dcReason   protocol.DCReason
	dc         string
	detail     string // for admins; never a secret
	retryAfter time.Duration
	applied    bool
	domain     string
	userDN     string
	// transient outcomes are retried (the message abandoned) until the
	// delivery count reaches MaxAttempts.
	transient bool
}

func answer(code protocol.ResultCode, detail string) outcome {
	return outcome{code: code, detail: detail, transient: code == protocol.CodeTransient}
}

// Handle processes one delivery and says how to settle it.
func (e *Engine) Handle(ctx context.Context, d *transport.Delivery) transport.Disposition {
	start := e.cfg.Now()
	if e.journalDown.Load() {
		// Stop taking work while the journal cannot record it: this
		// delivery waits (its lock is renewed) and, the handlers all
		// waiting, the source receives nothing more.
		if !e.waitJournal(ctx) {
			return transport.Abandon()
		}
	}
	rec, err := e.recv.Receive(ctx, d.Body)
	if err != nil {
		return e.refused(ctx, d, start, err)
	}
	defer rec.Secrets.Zero()
	if !e.enter(rec.ID) {
		// The same command is being handled right now (its lock was lost
		// and it was delivered again): let the first finish.
		e.cfg.Logger.Info("command already in flight; abandoning the duplicate delivery", "id", rec.ID)
		return transport.Abandon()
	}
	defer e.leave(rec.ID)
	e.crashPoint("after_receive")

	out := e.process(ctx, d, rec)
	if out.transient && ctx.Err() == nil && d.DeliveryCount < e.cfg.MaxAttempts {
		e.cfg.Metrics.Retry()
		e.audit(d, rec, out, start, false, "abandoned")
		return transport.Abandon()
	}
	if out.transient && ctx.Err() != nil {
		// Shutting down: the command comes back to this or another instance.
		e.audit(d, rec, out, start, false, "abandoned")
		return transport.Abandon()
	}
	return e.send(ctx, d, rec, out, start, true)
}

// holdForJournal handles a failed journal write of what: when the
// journal's storage failed, no new work starts and it waits until the
// journal is writable again (true). Anything else (one entry's state,
// shutdown) is not waited for (false).
func (e *Engine) holdForJournal(ctx context.Context, id, what string, err error) bool {
	if !errors.Is(err, journal.ErrStorage) {
		return false
	}
	if !e.journalDown.Swap(true) {
		e.cfg.Logger.Error("journal not writable: stopped taking work", "err", err)
	}
	e.cfg.Logger.Error("cannot journal "+what+"; holding it until the journal is writable", "id", id, "err", err)
	return e.waitJournal(ctx)
}

// waitJournal blocks until the journal accepts a write again (checked
// every few seconds) or ctx ends; it reports whether the journal is back.
func (e *Engine) waitJournal(ctx context.Context) bool {
	for {
		if err := e.cfg.Journal.Writable(ctx); err == nil {
			if e.journalDown.Swap(false) {
				e.cfg.Logger.Info("journal writable again: taking work")
			}
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-e.cfg.After(2 * time.Second):
		}
	}
}

func (e *Engine) enter(id string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.inflight[id] {
		return false
	}
	e.inflight[id] = true
	return true
}

func (e *Engine) leave(id string) {
	e.mu.Lock()
	delete(e.inflight, id)
	e.mu.Unlock()
}

// refused handles a command the protocol layer did not accept.
func (e *Engine) refused(ctx context.Context, d *transport.Delivery, start time.Time, err error) transport.Disposition {
	var perr *protocol.Error
	if !errors.As(err, &perr) {
		e.cfg.Logger.Error("receive failed", "err", err)
		return transport.Abandon()
	}
	switch {
	case perr.CommandID == "":
		// Not verifiable: no trustworthy id or sender to answer.
		e.cfg.Metrics.Command("unknown", string(protocol.CodeInvalidCommand), e.cfg.Now().Sub(start))
		_ = e.cfg.Audit.Write(audit.Record{Time: e.cfg.Now(), CommandID: sanitizeID(d.MessageID),
			Outcome: string(protocol.CodeInvalidCommand), Detail: perr.Error(), DeliveryCount: d.DeliveryCount,
			LatencyMS: ms(e.cfg.Now().Sub(start)), Settlement: "dead_lettered"})
		return transport.DeadLetter(string(protocol.CodeInvalidCommand), perr.Error())
	case errors.Is(err, protocol.ErrReplayed):
		return e.replay(ctx, d, perr.CommandID, start)
	case perr.Code == protocol.CodeTransient:
		// The replay check could not read the journal's file (claims
		// themselves are kept in memory): hold this delivery (its lock is
		// renewed) until the journal answers again, instead of spinning
		// through redeliveries; then let it come back.
		e.cfg.Logger.Error("journal unavailable; holding work until it is writable", "id", perr.CommandID, "err", err)
		e.waitJournal(ctx)
		return transport.Abandon()
	}
	// Verified but refused (expired, future-dated, bad seal, id reused by
	// a different command): answer it once.
	out := answer(perr.Code, perr.Error())
	v := &protocol.Received{VerifiedCommand: &protocol.VerifiedCommand{Command: protocol.Command{ID: perr.CommandID}}}
	if vc, verr := protocol.VerifyCommand(d.Body, e.recv.Senders); verr == nil {
		v.VerifiedCommand = vc
	}
	return e.send(ctx, d, v, out, start, false)
}

// replay answers a redelivered, finished command with its stored result.
func (e *Engine) replay(ctx context.Context, d *transport.Delivery, id string, start time.Time) transport.Disposition {
	ent, err := e.cfg.Journal.Get(ctx, id)
	if err != nil || ent.State != journal.StateDone {
		e.cfg.Logger.Error("replayed id without a stored outcome", "id", id, "err", err)
		return transport.Abandon()
	}
	e.cfg.Metrics.JournalHit()
	rec := audit.Record{Time: e.cfg.Now(), CommandID: id, UserDN: ent.UserDN, Outcome: ent.Code, DC: ent.DC,
		FromJournal: true, DeliveryCount: d.DeliveryCount, Settlement: "completed"}
	if err := e.cfg.Reporter.Report(ctx, d, id, ent.Result); err != nil {
		e.cfg.Logger.Warn("result not delivered; the command will come back", "id", id, "err", err)
		rec.Settlement = "abandoned"
		rec.Detail = "report failed: " + err.Error()
		rec.LatencyMS = ms(e.cfg.Now().Sub(start))
		_ = e.cfg.Audit.Write(rec)
		return transport.Abandon()
	}
	rec.LatencyMS = ms(e.cfg.Now().Sub(start))
	_ = e.cfg.Audit.Write(rec)
	return transport.Complete()
}

// process runs the pipeline for a verified command.
func (e *Engine) process(ctx context.Context, d *transport.Delivery, rec *protocol.Received) outcome {
	dom, err := e.route(rec.User)
	if err != nil {
		return answer(protocol.CodeOutOfScope, err.Error())
	}
	select {
	case e.sem <- struct{}{}:
		defer func() { <-e.sem }()
	case <-ctx.Done():
		return answer(protocol.CodeTransient, "shutting down")
	}
	out := e.inDomain(ctx, dom, d, rec)
	out.domain = dom.Name
	return out
}

func (e *Engine) inDomain(ctx context.Context, dom *Domain, d *transport.Delivery, rec *protocol.Received) outcome {
	ref, err := UserRef(rec.User)
	if err != nil {
		return answer(protocol.CodeInvalidCommand, err.Error())
	}
	u, err := dom.Dir.FindUser(ctx, ref)
	if err != nil {
		return dirFailure(err)
	}
	with := func(o outcome) outcome { o.userDN = u.DN; return o }

	// A command found half-way in the journal (the process stopped after
	// marking the write): settle it from AD instead of writing again. The
	// first write may still be queued at a busy DC, so when the account
	// shows no write yet, wait until that write can no longer land (the
	// lock is renewed meanwhile) and look again before writing.
	ent, err := e.cfg.Journal.Get(ctx, rec.ID)
	resumed := err == nil && ent.State == journal.StateApplying
	if resumed && rec.Op != protocol.OpUnlock {
		done := func() bool {
			return landed(ent.PwdVersionBefore, ent.PwdLastSetBefore, u, mustChangeReset(rec))
		}
		if !done() {
			if wait := ent.Applying.Add(e.cfg.WriteWindow).Sub(e.cfg.Now()); wait > 0 {
				e.cfg.Logger.Info("resumed command: waiting until an earlier write can no longer land", "id", rec.ID, "wait", wait)
				select {
				case <-ctx.Done():
					return with(answer(protocol.CodeTransient, "shutting down"))
				case <-e.cfg.After(wait):
				}
				if u2, err := dom.Dir.ReadUser(ctx, u.DN); err == nil {
					u = u2
				} else {
					return with(dirFailure(err))
				}
			}
		}
		if done() {
			o := with(answer(protocol.CodeSucceeded, "applied before a restart; confirmed from the account's password version"))
			o.applied = true
			return o
		}
	}

	if !inScope(u.DN, dom.ScopeOUs) {
		return with(answer(protocol.CodeOutOfScope, "the account is outside the configured OUs"))
	}
	for _, g := range dom.ExcludeGroups {
		member, err := dom.Dir.IsMemberOf(ctx, u.DN, g)
		if err != nil {
			return with(dirFailure(err))
		}
		if member {
			return with(answer(protocol.CodeOutOfScope, "the account is in an excluded group"))
		}
	}
	if u.Protected() && !dom.AllowProtected {
		return with(answer(protocol.CodeProtectedAccount, "adminCount=1: protected accounts are never written"))
	}
	if u.Disabled() {
		return with(answer(protocol.CodeAccountDisabled, "userAccountControl has ACCOUNTDISABLE"))
	}

	// A command this journal never marked may still have been written by
	// another instance that stopped before answering (instances share the
	// queue, not the journal). Checked after scope and protection: what
	// this instance would refuse, it refuses whoever wrote.
	if at, ok := writtenElsewhere(d, rec, u); ok && !resumed {
		o := with(answer(protocol.CodeSucceeded, fmt.Sprintf(
			"not written again: the password was written at %s, after this command was queued (%s), and this is its delivery %d: an earlier delivery, to another instance, applied it",
			at.Format(time.RFC3339), queuedAt(d, rec).Format(time.RFC3339), d.DeliveryCount)))
		o.applied = true
		return o
	}

	if rec.Op != protocol.OpCheck && e.cfg.RateLimit > 0 {
		ok, wait, err := e.cfg.Journal.TakeAttempt(ctx, dom.Name+"/"+u.ObjectGUID, e.cfg.RateLimit, e.cfg.RateWindow)
		if err != nil {
			return with(answer(protocol.CodeTransient, "rate-limit store: "+err.Error()))
		}
		if !ok {
			o := with(answer(protocol.CodeRateLimited, fmt.Sprintf("more than %d operations in %s", e.cfg.RateLimit, e.cfg.RateWindow)))
			o.retryAfter = wait
			return o
		}
	}

	// One string copy of the new password serves the check and the write
	// (go-ldap and the rules take strings; the Secret itself is zeroed).
	newPw := string(rec.Secrets.New.Bytes())
	var pol *ldapx.Policy
	if rec.Op != protocol.OpUnlock {
		pol, err = dom.Dir.EffectivePolicy(ctx, u)
		if err != nil {
			return with(dirFailure(err))
		}
		vs, err := policy.Check(LocalPolicy(dom, pol), policy.User{SAMAccountName: u.SAMAccountName,
			DisplayName: u.DisplayName, PwdLastSet: u.PwdLastSet}, newPw)
		if err != nil {
			return with(answer(protocol.CodeTransient, "policy check: "+err.Error()))
		}
		if rec.Op == protocol.OpChange {
			if v, tooYoung := policy.PredictMinAge(u.PwdLastSet, pol.MinAge, e.cfg.Now()); tooYoung {
				vs = append(vs, v)
			}
		}
		if len(vs) > 0 {
			o := with(answer(protocol.CodePolicyViolation, ""))
			o.violations = vs
			return o
		}
		if rec.Op == protocol.OpCheck {
			o := with(answer(protocol.CodeSucceeded, "check only: nothing applied"))
			o.message = "The new password meets the password policy."
			return o
		}
	}

	// Nothing is written to AD unless the journal has recorded that it is
	// about to be: while it cannot, the command waits here.
	for {
		err := e.cfg.Journal.MarkApplying(ctx, rec.ID, u.DN, u.PwdLastSet, u.PwdVersion)
		if err == nil {
			break
		}
		if !e.holdForJournal(ctx, rec.ID, "the write before it is sent", err) {
			return with(answer(protocol.CodeTransient, "journal: "+err.Error()))
		}
	}
	var applied ldapx.Applied
	switch rec.Op {
	case protocol.OpReset:
		applied, err = dom.Dir.Reset(ctx, u.DN, newPw,
			ldapx.ResetOptions{MustChange: rec.Options.MustChange, Unlock: rec.Options.Unlock})
	case protocol.OpChange:
		applied, err = dom.Dir.Change(ctx, u.DN, string(rec.Secrets.Old.Bytes()), newPw)
	case protocol.OpUnlock:
		applied, err = dom.Dir.Unlock(ctx, u.DN)
	default:
		return with(answer(protocol.CodeInvalidCommand, "unknown operation"))
	}
	e.crashPoint("after_apply")
	if err == nil {
		o := with(answer(protocol.CodeSucceeded, ""))
		o.applied, o.dc = true, applied.DC
		if rec.Op == protocol.OpUnlock {
			o.message = "Your account was unlocked."
		}
		return o
	}
	o := with(e.applyFailure(dom, u, rec, pol, err))
	if o.dc == "" {
		var le *ldapx.Error
		if errors.As(err, &le) {
			o.dc = le.DC
		}
	}
	return o
}

// writtenElsewhere reports whether a redelivered password command, of
// which this journal holds no mark, shows in the account as applied, and
// the write's time it went by. The earlier delivery went to another
// instance (this one marks its journal before it writes), which wrote and
// stopped before answering. A first delivery is never taken for applied: a
// write after it was queued is someone else's.
//
// Applied means the password was written after the command was queued,
// leaving the must-change flag the command sets. The write's time is
// pwdLastSet (to 100 ns), except after a must-change reset, which sets it
// to 0: then only replPropertyMetaData's time of the password's last write
// tells, in whole seconds, so a write in the second the command was queued
// counts.
func writtenElsewhere(d *transport.Delivery, rec *protocol.Received, u *ldapx.User) (time.Time, bool) {
	if d.DeliveryCount < 2 {
		return time.Time{}, false
	}
	queued := queuedAt(d, rec)
	switch {
	case mustChangeReset(rec):
		at := u.PwdWrittenAt
		return at, u.MustChange && !at.IsZero() && !at.Before(queued.Truncate(time.Second))
	case rec.Op == protocol.OpReset || rec.Op == protocol.OpChange:
		if u.MustChange || u.PwdLastSet.IsZero() {
			return time.Time{}, false
		}
		if !u.PwdWrittenAt.IsZero() && u.PwdWrittenAt.Before(queued.Truncate(time.Second)) {
			return time.Time{}, false // pwdLastSet moved without a password write
		}
		return u.PwdLastSet, !u.PwdLastSet.Before(queued)
	}
	return time.Time{}, false
}

// mustChangeReset says rec is a reset that also sets pwdLastSet to 0 (the
// user must change the password at next logon).
func mustChangeReset(rec *protocol.Received) bool {
	return rec.Op == protocol.OpReset && rec.Options.MustChange
}

// queuedAt is when the command entered the queue (the sender's issue time
// when the broker gave none).
func queuedAt(d *transport.Delivery, rec *protocol.Received) time.Time {
	if !d.EnqueuedTime.IsZero() {
		return d.EnqueuedTime
	}
	return rec.IssuedAt.Time
}

// landed reports whether the account (now) shows a password write since
// the values before were read: unicodePwd's replication version moved
// (authoritative when both are known: every write raises it), else
// pwdLastSet moved forward, or went to 0 for a must-change reset (from a
// non-zero value; from 0 to 0 nothing shows).
func landed(versionBefore uint32, setBefore time.Time, now *ldapx.User, mustChange bool) bool {
	if versionBefore != 0 && now.PwdVersion != 0 {
		return now.PwdVersion > versionBefore
	}
	if now.PwdLastSet.After(setBefore) {
		return true
	}
	return mustChange && !setBefore.IsZero() && now.MustChange
}

// applyFailure classifies a failed write. A transient or cancelled write
// may still have happened: the account's password version tells.
func (e *Engine) applyFailure(dom *Domain, u *ldapx.User, rec *protocol.Received, pol *ldapx.Policy, err error) outcome {
	var le *ldapx.Error
	errors.As(err, &le)
	switch ldapx.KindOf(err) {
	case ldapx.KindPasswordRestriction:
		// Another instance (with its own journal) may have applied this
		// very command: the DC then refuses it again (history, minimum
		// age) and pwdLastSet is newer than the command.
		if !u.PwdLastSet.IsZero() && !u.PwdLastSet.Before(rec.IssuedAt.Time) {
			o := answer(protocol.CodeSucceeded, "already applied: pwdLastSet is newer than the command and the DC refuses it again")
			o.applied = true
			return o
		}
		o := answer(protocol.CodeRejectedByDC, "")
		o.dcReason = protocol.DCReasonOther
		switch {
		case le != nil && le.Restriction == ldapx.RestrictionMinAge:
			o.dcReason = protocol.DCReasonMinAge
		case pol != nil && pol.HistoryLength > 0 && (rec.Op == protocol.OpChange):
			// The local pre-check passed every rule AD states; for a
			// change, what remains is the history (or a DC filter).
			o.dcReason = protocol.DCReasonHistory
		}
		if le != nil {
			o.detail = le.Error()
		}
		return o
	case ldapx.KindWrongPassword:
		return answer(protocol.CodeAccessDenied, "the old password is wrong")
	case ldapx.KindAccessDenied:
		return answer(protocol.CodeAccessDenied, err.Error())
	case ldapx.KindNoSuchObject:
		return answer(protocol.CodeUserNotFound, err.Error())
	case ldapx.KindConstraint:
		o := answer(protocol.CodeRejectedByDC, err.Error())
		o.dcReason = protocol.DCReasonOther
		return o
	case ldapx.KindTransient, ldapx.KindCanceled:
		if o, ok := wroteAnyway(dom, u, rec); ok {
			return o
		}
		return answer(protocol.CodeTransient, err.Error())
	}
	// A failure nobody classified says nothing about whether the write
	// happened: the account tells, before "internal" is answered.
	if o, ok := wroteAnyway(dom, u, rec); ok {
		return o
	}
	return answer(protocol.CodeInternal, err.Error())
}

// wroteAnyway reads the account after a write whose answer is missing or
// unclassified and says (succeeded, true) when the password moved since
// u was read.
func wroteAnyway(dom *Domain, u *ldapx.User, rec *protocol.Received) (outcome, bool) {
	if rec.Op == protocol.OpUnlock {
		return outcome{}, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	now, err := dom.Dir.ReadUser(ctx, u.DN)
	if err != nil || !landed(u.PwdVersion, u.PwdLastSet, now, mustChangeReset(rec)) {
		return outcome{}, false
	}
	o := answer(protocol.CodeSucceeded, "the write was applied although its answer was lost")
	o.applied = true
	return o, true
}

// dirFailure maps a lookup or read failure.
func dirFailure(err error) outcome {
	switch ldapx.KindOf(err) {
	case ldapx.KindNotFound, ldapx.KindNoSuchObject:
		return answer(protocol.CodeUserNotFound, err.Error())
	case ldapx.KindAmbiguous:
		return answer(protocol.CodeAmbiguousUser, err.Error())
	case ldapx.KindInvalidInput:
		return answer(protocol.CodeInvalidCommand, err.Error())
	case ldapx.KindAccessDenied:
		return answer(protocol.CodeAccessDenied, err.Error())
	case ldapx.KindTransient, ldapx.KindCanceled, ldapx.KindTLS, ldapx.KindInvalidCredentials:
		// TLS and bind failures need an admin, but the command is not at
		// fault: retry, and answer "transient" when attempts run out.
		return answer(protocol.CodeTransient, err.Error())
	}
	return answer(protocol.CodeInternal, err.Error())
}

// UserRef turns the wire protocol's user reference into the directory's.
func UserRef(r protocol.UserRef) (ldapx.UserRef, error) {
	switch {
	case r.ObjectGUID != "":
		return ldapx.UserRef{Kind: ldapx.RefObjectGUID, Value: r.ObjectGUID}, nil
	case r.ImmutableID != "":
		return ldapx.UserRef{Kind: ldapx.RefConsistencyGUID, Value: r.ImmutableID}, nil
	case r.UPN != "":
		return ldapx.UserRef{Kind: ldapx.RefUPN, Value: r.UPN}, nil
	case r.SAM != "":
		return ldapx.UserRef{Kind: ldapx.RefSAM, Value: r.SAM}, nil
	}
	return ldapx.UserRef{}, errors.New("no user reference")
}

// LocalPolicy is what the pre-check evaluates: the user's effective AD
// policy (domain or PSO) plus the domain's organisation rules.
func LocalPolicy(dom *Domain, p *ldapx.Policy) policy.Policy {
	return policy.Policy{
		MinLength: p.MinLength, ComplexityEnabled: p.Complexity, HistoryLength: p.HistoryLength,
		MinAge: p.MinAge, MaxAge: p.MaxAge,
		OrgMinLength: dom.OrgMinLength, Banned: dom.Banned, Breached: dom.Breached,
	}
}

// send signs a final outcome, journals it (when the command was claimed),
// reports it and settles the message.
func (e *Engine) send(ctx context.Context, d *transport.Delivery, rec *protocol.Received, out outcome, start time.Time, journaled bool) transport.Disposition {
	now := e.cfg.Now()
	res := &protocol.Result{
		V: protocol.Version, CommandID: rec.ID, Code: out.code, Message: out.message,
		DC: dcHost(out.dc), Detail: clip(out.detail, 1000), ReceivedAt: protocol.At(start), CompletedAt: protocol.At(now),
	}
	if res.Message == "" {
		res.Message = out.code.DefaultMessage()
	}
	if out.code == protocol.CodeRejectedByDC {
		res.DCReason = out.dcReason
		if res.DCReason == "" {
			res.DCReason = protocol.DCReasonOther
		}
	}
	if out.retryAfter > 0 && out.code.Retryable() {
		res.RetryAfter = int((out.retryAfter + time.Second - 1) / time.Second)
	}
	for _, v := range out.violations {
		res.Violations = append(res.Violations, wireViolation(v))
		e.cfg.Metrics.Violation(string(v.Rule))
	}
	signed, err := protocol.SignResult(res, e.cfg.Signer)
	if err != nil {
		e.cfg.Logger.Error("cannot sign result", "id", rec.ID, "err", err)
		return transport.Abandon()
	}
	// The outcome goes to the journal's next shared transaction before the
	// result is sent, and the message is settled only once it is durable.
	// A crash in between makes the command come back: the outcome is then
	// on file (answered from the journal) or not (a refusal is decided
	// again; a write is settled from AD by the durable mark made before
	// it), so at most a duplicate result goes out, which the protocol
	// allows.
	var durable func(context.Context) error
	if journaled {
		durable = e.cfg.Journal.FinishAsync(ctx, rec.ID, string(out.code), out.dc, signed)
		e.crashPoint("after_journal")
	}
	e.cfg.Metrics.Command(string(rec.Op), string(out.code), now.Sub(start))
	if err := e.cfg.Reporter.Report(ctx, d, rec.ID, signed); err != nil {
		e.cfg.Logger.Warn("result not delivered; the command will come back and be answered from the journal", "id", rec.ID, "err", err)
		if durable != nil {
			_ = durable(ctx)
		}
		e.audit(d, rec, out, start, false, "abandoned")
		return transport.Abandon()
	}
	e.crashPoint("after_report")
	for durable != nil {
		err := durable(ctx)
		if err == nil {
			break
		}
		// Hold the message (its lock is renewed) until the outcome is on
		// file: the outcome in AD is final and must not be lost.
		if e.holdForJournal(ctx, rec.ID, "the outcome", err) {
			durable = e.cfg.Journal.FinishAsync(ctx, rec.ID, string(out.code), out.dc, signed)
			continue
		}
		if ctx.Err() != nil {
			e.audit(d, rec, out, start, false, "abandoned")
			return transport.Abandon()
		}
		// Not the storage: the entry itself (its claim expired with the
		// replay window, say). Nothing to record it against; the result
		// went out.
		e.cfg.Logger.Warn("outcome not journaled", "id", rec.ID, "err", err)
		break
	}
	e.audit(d, rec, out, start, false, "completed")
	e.crashPoint("before_settle")
	return transport.Complete()
}

// dcHost turns a DC URL (ldaps://dc1.example.com:636) into the host name
// the result carries; "" when it has none.
func dcHost(dc string) string {
	if dc == "" {
		return ""
	}
	u, err := url.Parse(dc)
	if err != nil || u.Hostname() == "" || strings.Contains(u.Hostname(), ":") {
		return ""
	}
	return u.Hostname()
}

func wireViolation(v policy.Violation) protocol.Violation {
	f := map[string]any{}
	switch v.Rule {
	case policy.RuleMinLength, policy.RuleMaxLength:
		f["required"], f["actual"] = v.Required, v.Got
	case policy.RuleComplexity:
		f["required"], f["actual"] = v.Required, v.Got
		f["found"], f["missing"] = joinCats(v.Found), joinCats(v.Missing)
	case policy.RuleContainsAccountName, policy.RuleContainsDisplayName:
		f["token"] = v.Token
	case policy.RuleMinAge:
		if !v.NotBefore.IsZero() {
			f["not_before"] = v.NotBefore.UTC().Format(time.RFC3339)
		}
	}
	if len(f) == 0 {
		f = nil
	}
	return protocol.Violation{Rule: string(v.Rule), Message: v.Message, Fields: f}
}

func joinCats(cs []policy.Category) string {
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = string(c)
	}
	return strings.Join(s, ",")
}

func (e *Engine) audit(d *transport.Delivery, rec *protocol.Received, out outcome, start time.Time, fromJournal bool, settlement string) {
	r := audit.Record{
		Time: e.cfg.Now(), CommandID: rec.ID, Op: string(rec.Op), Domain: out.domain, UserDN: out.userDN,
		ActorKind: string(rec.Actor.Kind), ActorID: rec.Actor.ID, Outcome: string(out.code),
		DCReason: string(out.dcReason), DC: out.dc, Detail: clip(out.detail, 1000), Applied: out.applied,
		FromJournal: fromJournal, DeliveryCount: d.DeliveryCount, LatencyMS: ms(e.cfg.Now().Sub(start)),
		Settlement: settlement,
	}
	if kind, _ := rec.User.Kind(); kind != "" {
		r.UserRefKind = kind
	}
	for _, v := range out.violations {
		r.Rules = append(r.Rules, string(v.Rule))
	}
	if err := e.cfg.Audit.Write(r); err != nil {
		e.cfg.Logger.Error("audit write failed", "id", rec.ID, "err", err)
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// sanitizeID keeps an unverified message id printable and short for logs.
func sanitizeID(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
	return clip(strings.ToValidUTF8(s, ""), 128)
}
