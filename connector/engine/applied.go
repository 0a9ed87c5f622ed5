package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/adwriteback/adwriteback/connector/journal"
	"github.com/adwriteback/adwriteback/ldapx"
	"github.com/adwriteback/adwriteback/relay/protocol"
	"github.com/adwriteback/adwriteback/relay/transport"
)

// This file decides, in one place, whether a command is already applied
// in AD: the rule that makes the effect exactly-once although the queue
// delivers at least once, the process may die at any point and several
// instances (each with its own journal) share the queue. decide is the
// rule; the stages gather the facts and call it.
//
// The decision table (the first row that matches wins; "-" is any):
//
//	row journal   own write   evidence                                   verdict
//	 1  done      -           -                                          replay: answer with the stored result
//	 2  -         -           account not read                           not applied
//	 3  -         answer lost unlock                                     not applied (no password evidence)
//	 4  -         answer lost landed since the read before the write     applied ("its answer was lost")
//	 5  -         answer lost not landed                                 not applied
//	 6  -         refused     pwdLastSet set and not before issuedAt     applied ("the DC refuses it again")
//	 7  -         refused     otherwise                                  not applied (a real refusal)
//	 8  applying  none yet    unlock                                     not applied: unlock again
//	 9  applying  none yet    landed since the journal's mark            applied ("before a restart")
//	10  applying  none yet    not landed, write window still open        wait it out, read the account, decide again
//	11  applying  none yet    not landed, write window over              not applied: write
//	12  none      none yet    redelivered and written after queued       applied ("another instance")
//	13  none      none yet    written after issued, before queued        superseded: not written
//	14  none      none yet    otherwise                                  not applied: write
//
// journal is this instance's entry for the command: done (the outcome is
// stored; decided by the protocol receiver's replay check), applying (the
// write was marked and the process stopped before the outcome: resumed),
// none (claimed only, or never seen). Own write is what became of this
// instance's write: none yet (the stages before apply), answer lost (a
// transient, cancelled or unclassified error: the write may have
// happened), refused (the DC refused the password as a restriction: it
// does so for one already set, by history or minimum age). The write
// window is Config.WriteWindow from the journal's mark: a write queued at
// a busy DC may land until then.
//
// Landed (a password write since the marks read before it):
//
//	a  both unicodePwd replication versions known: the version rose
//	   (authoritative: every write raises it)
//	b  else pwdLastSet moved forward
//	c  else a must-change reset, pwdLastSet was set before and the account
//	   must change now (from 0 to 0 nothing shows)
//
// Written after queued (only a reset or change; the earlier delivery went
// to an instance that marks its own journal, wrote, and stopped before
// answering; a first delivery is never taken for applied):
//
//	d  must-change reset: the account must change, and replPropertyMetaData's
//	   time of the password write is known and not before the second the
//	   command was queued (pwdLastSet is 0; the metadata has whole seconds)
//	e  other: the account need not change, pwdLastSet is set and not before
//	   queued (100 ns), and replPropertyMetaData's time, when known, is not
//	   before the queued second (else pwdLastSet moved without a write)
//
// Queued is the broker's enqueue time, or the sender's issue time when the
// broker gave none.
//
// Written after issued, before queued (row 13) is d-e with the command's
// issuedAt for queued, and the write's time before the message entered
// the queue, on any delivery. A sender puts a command on the queue as
// soon as it is built, so a write between the two means the message sat
// outside the queue while the account changed: it is a copy put on the
// queue again (from a peek, the dead-letter queue or the sender's
// storage, under the command's own id once duplicate detection no longer
// sees it), or a sender that held it back. Writing it would restore a
// password the user has since replaced (or apply the command twice), so
// it is not written and is answered "superseded" (a v1 command:
// "expired"). A write after the message was queued is the ordinary race
// of commands queued together (the later one is written; row 12 for its
// redelivery). Without the broker's enqueue time, queued is issuedAt and
// the row never applies.

// journalState is what this instance's journal holds for the command.
type journalState int

const (
	journalNone journalState = iota
	journalApplying
	journalDone
)

// ownWrite is what became of this instance's own write of the command.
type ownWrite int

const (
	noWriteYet ownWrite = iota
	answerLost
	refusedAgain
)

// mark is an account's password evidence read before a write.
type mark struct {
	version    uint32    // unicodePwd's replication version; 0 unknown
	pwdLastSet time.Time // zero: 0 (must change) or never set
}

func markOf(u *ldapx.User) mark { return mark{version: u.PwdVersion, pwdLastSet: u.PwdLastSet} }

// facts is everything the decision table reads.
type facts struct {
	journal    journalState
	write      ownWrite
	op         protocol.Op
	mustChange bool // a reset that sets pwdLastSet to 0
	deliveries uint32
	queued     time.Time
	issuedAt   time.Time
	before     mark
	account    *ldapx.User   // the account now; nil when not read
	windowLeft time.Duration // of the write window, for a resumed command
}

// verdictKind is the decision.
type verdictKind int

const (
	notApplied verdictKind = iota
	alreadyApplied
	replayStored
	waitForWrite
	superseded
)

// verdict is decide's answer: why it is applied (detail), or how long to
// wait before looking again.
type verdict struct {
	kind   verdictKind
	detail string
	wait   time.Duration
}

// decide walks the decision table above.
func decide(f facts) verdict {
	switch {
	case f.journal == journalDone:
		return verdict{kind: replayStored}
	case f.account == nil:
		return verdict{}
	case f.write == answerLost:
		if f.op == protocol.OpUnlock || !landed(f.before.version, f.before.pwdLastSet, f.account, f.mustChange) {
			return verdict{}
		}
		return applied("the write was applied although its answer was lost")
	case f.write == refusedAgain:
		if set := f.account.PwdLastSet; set.IsZero() || set.Before(f.issuedAt) {
			return verdict{}
		}
		return applied("already applied: pwdLastSet is newer than the command and the DC refuses it again")
	case f.journal == journalApplying:
		switch {
		case f.op == protocol.OpUnlock:
			return verdict{}
		case landed(f.before.version, f.before.pwdLastSet, f.account, f.mustChange):
			return applied("applied before a restart; confirmed from the account's password version")
		case f.windowLeft > 0:
			return verdict{kind: waitForWrite, wait: f.windowLeft}
		}
		return verdict{}
	}
	if at, ok := writtenSince(f, f.queued); ok && f.deliveries >= 2 {
		return applied(fmt.Sprintf(
			"not written again: the password was written at %s, after this command was queued (%s), and this is its delivery %d: an earlier delivery, to another instance, applied it",
			at.Format(time.RFC3339), f.queued.Format(time.RFC3339), f.deliveries))
	}
	if at, ok := writtenSince(f, f.issuedAt); ok && at.Before(f.queued) {
		return verdict{kind: superseded, detail: fmt.Sprintf(
			"not written: the password was written at %s, after this command was issued (%s) and before it was queued (%s): a copy, or held back",
			at.Format(time.RFC3339Nano), f.issuedAt.Format(time.RFC3339Nano), f.queued.Format(time.RFC3339Nano))}
	}
	return verdict{}
}

func applied(detail string) verdict { return verdict{kind: alreadyApplied, detail: detail} }

// outcome is the answer for an applied or superseded verdict; nil for
// any other.
func (v verdict) outcome() *outcome {
	switch v.kind {
	case alreadyApplied:
		o := stop(protocol.CodeSucceeded, v.detail)
		o.applied = true
		return o
	case superseded:
		return stop(protocol.CodeSuperseded, v.detail)
	}
	return nil
}

// landed reports whether the account (now) shows a password write since
// the values before were read (rows a-c).
func landed(versionBefore uint32, setBefore time.Time, now *ldapx.User, mustChange bool) bool {
	if versionBefore != 0 && now.PwdVersion != 0 {
		return now.PwdVersion > versionBefore
	}
	if now.PwdLastSet.After(setBefore) {
		return true
	}
	return mustChange && !setBefore.IsZero() && now.MustChange
}

// writtenSince reports whether a password command's account shows a
// password write at or after since (queued for row 12, issued for row
// 13), and the write's time it went by (rules d-e).
func writtenSince(f facts, since time.Time) (time.Time, bool) {
	u := f.account
	switch {
	case f.mustChange:
		at := u.PwdWrittenAt
		return at, u.MustChange && !at.IsZero() && !at.Before(since.Truncate(time.Second))
	case f.op == protocol.OpReset || f.op == protocol.OpChange:
		if u.MustChange || u.PwdLastSet.IsZero() {
			return time.Time{}, false
		}
		if !u.PwdWrittenAt.IsZero() && u.PwdWrittenAt.Before(since.Truncate(time.Second)) {
			return time.Time{}, false // pwdLastSet moved without a password write
		}
		return u.PwdLastSet, !u.PwdLastSet.Before(since)
	}
	return time.Time{}, false
}

// answeredBefore reports whether the journal entry holds the command's
// final answer (row 1): the command is a replay.
func answeredBefore(ent *journal.Entry) bool {
	return decide(facts{journal: journalStateOf(ent)}).kind == replayStored
}

func journalStateOf(ent *journal.Entry) journalState {
	switch {
	case ent == nil:
		return journalNone
	case ent.State == journal.StateDone:
		return journalDone
	case ent.State == journal.StateApplying:
		return journalApplying
	}
	return journalNone
}

// facts gathers what the command knows for the decision table: the
// account as found (also the "before" of its own write).
func (c *command) facts(w ownWrite) facts {
	f := facts{journal: journalStateOf(c.resumed), write: w, op: c.rec.Op,
		mustChange: c.rec.Op == protocol.OpReset && c.rec.Options.MustChange,
		deliveries: c.d.DeliveryCount, queued: queuedAt(c.d, c.rec), issuedAt: c.rec.IssuedAt.Time, account: c.user}
	if c.user != nil {
		f.before = markOf(c.user)
	}
	return f
}

// queuedAt is when the command entered the queue (the sender's issue time
// when the broker gave none).
func queuedAt(d *transport.Delivery, rec *protocol.Received) time.Time {
	if !d.EnqueuedTime.IsZero() {
		return d.EnqueuedTime
	}
	return rec.IssuedAt.Time
}

// settleResumed is the stage for a command this instance marked
// "applying" in an earlier life (rows 8-11): it is settled from the
// account instead of written again. The first write may still be queued
// at a busy DC, so while the account shows no write it waits (the lock
// renewed meanwhile) until that write can no longer land, and looks again.
func (e *Engine) settleResumed(ctx context.Context, c *command) *outcome {
	ent, err := e.cfg.Journal.Get(ctx, c.rec.ID)
	if err != nil || journalStateOf(ent) != journalApplying {
		return nil
	}
	c.resumed = ent
	f := c.facts(noWriteYet)
	f.before = mark{version: ent.PwdVersionBefore, pwdLastSet: ent.PwdLastSetBefore}
	f.windowLeft = ent.Applying.Add(e.cfg.WriteWindow).Sub(e.cfg.Clock.Now())
	v := decide(f)
	if v.kind == waitForWrite {
		e.cfg.Logger.Info("resumed command: waiting until an earlier write can no longer land", "id", c.rec.ID, "wait", v.wait)
		select {
		case <-ctx.Done():
			return stop(protocol.CodeTransient, "shutting down")
		case <-e.cfg.Clock.After(v.wait):
		}
		u, err := c.dom.Dir.ReadUser(ctx, c.user.DN)
		if err != nil {
			return dirFailure(err)
		}
		c.user = u
		f.account, f.windowLeft = u, 0
		v = decide(f)
	}
	return v.outcome()
}

// appliedElsewhere is the stage for a command this journal never marked
// (rows 12-14): another instance may have written it and stopped before
// answering (instances share the queue, not the journal). It runs after
// admit: what this instance would refuse, it refuses whoever wrote.
func (e *Engine) appliedElsewhere(_ context.Context, c *command) *outcome {
	if c.resumed != nil {
		return nil // settled by settleResumed
	}
	return decide(c.facts(noWriteYet)).outcome()
}

// wroteAnyway reads the account after a write whose answer is missing or
// unclassified (rows 3-5) and returns the succeeded outcome when the
// password moved since the account was read before the write.
func (e *Engine) wroteAnyway(c *command) *outcome {
	f := c.facts(answerLost)
	f.account = nil
	if c.rec.Op != protocol.OpUnlock { // row 3: nothing to read for
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if now, err := c.dom.Dir.ReadUser(ctx, c.user.DN); err == nil {
			f.account = now
		}
	}
	return decide(f).outcome()
}
