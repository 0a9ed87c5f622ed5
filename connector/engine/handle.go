package engine

import (
	"context"
	"errors"
	"time"

	"github.com/adwriteback/adwriteback/connector/journal"
	"github.com/adwriteback/adwriteback/connector/logevent"
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
	// policy is a describe's answer (describe.go).
	policy *protocol.Policy
}

func answer(code protocol.ResultCode, detail string) outcome {
	return outcome{code: code, detail: detail, transient: code == protocol.CodeTransient}
}

// stop is a stage's answer that ends the command's way through the stages.
func stop(code protocol.ResultCode, detail string) *outcome {
	o := answer(code, detail)
	return &o
}

// command is one received command on its way through the stages: what a
// stage learned that a later one needs.
type command struct {
	d     *transport.Delivery
	rec   *protocol.Received
	start time.Time
	// keys are the key sets the command was received with: it is
	// answered with them even when they were replaced meanwhile.
	keys *Keys
	// dom is the command's domain, user its account once found.
	dom  *Domain
	user *ldapx.User
	// resumed is the journal entry this instance marked "applying" in an
	// earlier life (nil when it did not).
	resumed *journal.Entry
	// pol is the user's effective AD policy (not read for an unlock).
	pol *ldapx.Policy
	// newPw is the one string copy of the new password that serves both
	// the check and the write (go-ldap and the rules take strings; the
	// Secret itself is zeroed when the command is done).
	newPw     string
	newPwRead bool
}

// newPassword returns the command's new password as a string, copied once.
func (c *command) newPassword() string {
	if !c.newPwRead {
		c.newPw, c.newPwRead = string(c.rec.Secrets.New.Bytes()), true
	}
	return c.newPw
}

// stage is one named step of handling a command. It returns the command's
// outcome when it decides it, or nil to hand the command to the next
// stage. Every stage but receive and finish has this form.
type stage func(ctx context.Context, c *command) *outcome

// Handle processes one delivery and says how to settle it. Its stages, in
// order (doc.go says which file holds each):
//
//	receive            verify, open and claim the command (receive.go)
//	findUser           route to the domain, find the account (find.go)
//	settleResumed      a command this instance left "applying" (applied.go)
//	admit              scope, exclusions, protection, disabled (admit.go)
//	appliedElsewhere   a write another instance made (applied.go)
//	rateLimit          per-user attempts (check.go)
//	checkPolicy        the password against the policy (check.go)
//	apply              mark, write, classify (apply.go)
//	finish             sign, journal, report, settle, audit (finish.go)
//
// A describe command runs findUser, admit, rateLimit and describe
// instead (describe.go): it writes nothing.
func (e *Engine) Handle(ctx context.Context, d *transport.Delivery) transport.Disposition {
	c, disp, ok := e.receive(ctx, d)
	if !ok {
		return disp
	}
	defer e.done(c)
	out := e.runStages(ctx, c)
	if e.retryLater(ctx, c, out) {
		return e.audited(transport.Abandon(), c, out)
	}
	return e.finish(ctx, c, out, true)
}

// runStages takes a received command through the stages in its domain,
// within the concurrency cap that protects the DCs.
func (e *Engine) runStages(ctx context.Context, c *command) outcome {
	dom, err := e.route(c.rec.User)
	if err != nil {
		return answer(protocol.CodeOutOfScope, err.Error())
	}
	select {
	case e.sem <- struct{}{}:
		defer func() { <-e.sem }()
	case <-ctx.Done():
		return answer(protocol.CodeTransient, "shutting down")
	}
	c.dom = dom
	out := answer(protocol.CodeInternal, "no stage decided the command")
	for _, st := range e.stagesFor(c.rec.Op) {
		if o := st(ctx, c); o != nil {
			out = *o
			break
		}
	}
	out.domain = dom.Name
	if c.user != nil {
		out.userDN = c.user.DN
	}
	return out
}

// retryLater reports whether a transient outcome is left to a later
// delivery (the message abandoned): while attempts remain, or when
// shutting down (the command comes back to this or another instance).
func (e *Engine) retryLater(ctx context.Context, c *command, out outcome) bool {
	if !out.transient {
		return false
	}
	if ctx.Err() != nil {
		return true
	}
	if c.d.DeliveryCount < e.cfg.MaxAttempts {
		e.cfg.Metrics.Retry()
		return true
	}
	return false
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
		e.cfg.Logger.Error("journal not writable: stopped taking work", logevent.Attr(logevent.JournalUnwritable), "err", err)
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
		case <-e.cfg.Clock.After(2 * time.Second):
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
