package engine

import (
	"context"
	"errors"
	"time"

	"github.com/adwriteback/adwriteback/connector/audit"
	"github.com/adwriteback/adwriteback/relay/protocol"
	"github.com/adwriteback/adwriteback/relay/transport"
)

// receive is the first stage: it verifies and opens the delivery's
// command and claims it for this instance. When it returns false, disp
// settles the delivery (refused, answered from the journal, or held back).
func (e *Engine) receive(ctx context.Context, d *transport.Delivery) (c *command, disp transport.Disposition, ok bool) {
	start := e.cfg.Clock.Now()
	if e.journalDown.Load() && !e.waitJournal(ctx) {
		// Stop taking work while the journal cannot record it: this
		// delivery waits (its lock is renewed) and, the handlers all
		// waiting, the source receives nothing more.
		return nil, transport.Abandon(), false
	}
	keys := e.keys.Load()
	rec, err := e.receiver(keys).Receive(ctx, d.Body, d.MessageID)
	if err != nil {
		return nil, e.refused(ctx, d, keys, start, err), false
	}
	if !e.enter(rec.ID) {
		// The same command is being handled right now (its lock was lost
		// and it was delivered again): let the first finish.
		rec.Secrets.Zero()
		e.cfg.Logger.Info("command already in flight; abandoning the duplicate delivery", "id", rec.ID)
		return nil, transport.Abandon(), false
	}
	e.crashPoint("after_receive")
	return &command{d: d, rec: rec, keys: keys, start: start}, transport.Disposition{}, true
}

// done releases what receive took: the claim in flight and the secrets.
func (e *Engine) done(c *command) {
	e.leave(c.rec.ID)
	c.rec.Secrets.Zero()
}

// refused handles a command the protocol layer did not accept.
func (e *Engine) refused(ctx context.Context, d *transport.Delivery, keys *Keys, start time.Time, err error) transport.Disposition {
	var perr *protocol.Error
	if !errors.As(err, &perr) {
		e.cfg.Logger.Error("receive failed", "err", err)
		return transport.Abandon()
	}
	switch {
	case perr.CommandID == "":
		return e.unverified(d, start, perr)
	case errors.Is(err, protocol.ErrMessageID):
		return e.copied(d, start, perr)
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
	// a different command): answer it once; a command answered before
	// (expired since) gets that answer again, never a new one.
	v := &protocol.Received{VerifiedCommand: &protocol.VerifiedCommand{Command: protocol.Command{ID: perr.CommandID}}}
	if vc, verr := protocol.VerifyCommand(d.Body, keys.Senders); verr == nil {
		v.VerifiedCommand = vc
		if e.answeredWith(ctx, vc) {
			return e.replay(ctx, d, vc.ID, start)
		}
	}
	return e.finish(ctx, &command{d: d, rec: v, keys: keys, start: start}, answer(perr.Code, perr.Error()), false)
}

// answeredWith reports whether the journal holds an answer to exactly
// this command (its id and digest).
func (e *Engine) answeredWith(ctx context.Context, vc *protocol.VerifiedCommand) bool {
	ent, err := e.cfg.Journal.Get(ctx, vc.ID)
	return err == nil && answeredBefore(ent) && ent.Digest == vc.Digest
}

// copied handles a signed command carried under a message id that is not
// its own: a copy put on the queue again (from a peek, the dead-letter
// queue or the sender's storage), which the queue's duplicate detection
// cannot see. It is dead-lettered without an answer and without claiming
// the id, so the command itself, if it comes, is still handled; the
// audit record names the copy's message id.
func (e *Engine) copied(d *transport.Delivery, start time.Time, perr *protocol.Error) transport.Disposition {
	e.cfg.Metrics.Rejected(protocol.KindName(perr))
	e.cfg.Logger.Warn("a copy of a signed command under another message id; dead-lettered", "id", perr.CommandID,
		"message_id", sanitizeID(d.MessageID))
	rec := audit.Record{CommandID: perr.CommandID, MessageID: sanitizeID(d.MessageID), Outcome: string(protocol.CodeInvalidCommand),
		Detail: "a copy: the message id is not the command id", DeliveryCount: d.DeliveryCount, LatencyMS: ms(e.cfg.Clock.Since(start))}
	return e.auditOnSettle(transport.DeadLetter(protocol.KindName(perr), "the message id must be the command id (PROTOCOL.md, transport binding)"), rec)
}

// unverified handles a message that failed before its signature was
// verified: nothing in it is trustworthy, not even its id, so it is
// dead-lettered without an answer and counted; its audit record is kept
// apart from commands' (event unverified_message, under the message id,
// never a command id) and sampled, so that anyone with send rights can
// neither write records under a real command's id nor fill the disk.
func (e *Engine) unverified(d *transport.Delivery, start time.Time, perr *protocol.Error) transport.Disposition {
	e.cfg.Metrics.Rejected(protocol.KindName(perr))
	disp := transport.DeadLetter(string(protocol.CodeInvalidCommand), perr.Error())
	suppressed, ok := e.unverifiedAudit.take()
	if !ok {
		return disp
	}
	rec := audit.Record{Event: audit.EventUnverified, MessageID: sanitizeID(d.MessageID), Outcome: string(protocol.CodeInvalidCommand),
		Detail: perr.Error(), DeliveryCount: d.DeliveryCount, LatencyMS: ms(e.cfg.Clock.Since(start)), Suppressed: suppressed}
	return e.auditOnSettle(disp, rec)
}

// replay answers a redelivered, finished command with its stored result.
func (e *Engine) replay(ctx context.Context, d *transport.Delivery, id string, start time.Time) transport.Disposition {
	ent, err := e.cfg.Journal.Get(ctx, id)
	if err != nil || !answeredBefore(ent) {
		e.cfg.Logger.Error("replayed id without a stored outcome", "id", id, "err", err)
		return transport.Abandon()
	}
	e.cfg.Metrics.JournalHit()
	rec := audit.Record{CommandID: id, UserDN: ent.UserDN, Outcome: ent.Code, DC: ent.DC,
		FromJournal: true, DeliveryCount: d.DeliveryCount}
	disp := transport.Complete()
	err = e.cfg.Reporter.Report(ctx, d, id, ent.Result)
	e.cfg.Deliveries.Delivered(ent.Code, err)
	if err != nil {
		var detail string
		if disp, detail = e.undelivered(ctx, d, id, err); detail == "" {
			detail = "report failed: " + err.Error()
		}
		rec.Detail = detail
	}
	rec.LatencyMS = ms(e.cfg.Clock.Since(start))
	return e.auditOnSettle(disp, rec)
}
