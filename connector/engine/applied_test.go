package engine

import (
	"strings"
	"testing"
	"time"

	"github.com/adwriteback/adwriteback/ldapx"
	"github.com/adwriteback/adwriteback/relay/protocol"
)

// TestDecide walks every row of the decision table in applied.go: rows
// 1-14, and the evidence rows a-e (landed; written after queued or
// issued).
func TestDecide(t *testing.T) {
	queued := time.Date(2026, 11, 25, 11, 59, 0, 500_000_000, time.UTC)
	issued := queued.Add(-time.Second)
	set := queued.Add(-48 * time.Hour) // the password's last set before the command
	before := mark{version: 5, pwdLastSet: set}
	acct := func(version uint32, pwdLastSet time.Time) *ldapx.User {
		return &ldapx.User{PwdVersion: version, PwdLastSet: pwdLastSet}
	}
	unchanged, rose := acct(5, set), acct(6, queued.Add(time.Second))
	// f is a reset redelivered to an instance whose journal holds
	// nothing, before its own write, the account as it was.
	f := func(change func(*facts)) facts {
		x := facts{journal: journalNone, write: noWriteYet, op: protocol.OpReset, deliveries: 2,
			queued: queued, issuedAt: issued, before: before, account: unchanged}
		change(&x)
		return x
	}
	elsewhere := func(u ldapx.User) func(*facts) {
		return func(x *facts) { x.before, x.account = mark{}, &u }
	}
	for _, tc := range []struct {
		row    string
		facts  facts
		want   verdictKind
		detail string        // in the verdict's detail
		wait   time.Duration // for waitForWrite
	}{
		{row: "1 journal done", want: replayStored,
			facts: f(func(x *facts) { x.journal, x.account = journalDone, nil })},
		{row: "2 account not read (resumed, at the replay check)", want: notApplied,
			facts: f(func(x *facts) { x.journal, x.account = journalApplying, nil })},
		{row: "2 account not read (answer lost, read failed)", want: notApplied,
			facts: f(func(x *facts) { x.write, x.account = answerLost, nil })},
		{row: "3 answer lost, unlock", want: notApplied,
			facts: f(func(x *facts) { x.write, x.op, x.account = answerLost, protocol.OpUnlock, rose })},
		{row: "4 answer lost, landed", want: alreadyApplied, detail: "answer was lost",
			facts: f(func(x *facts) { x.write, x.account = answerLost, rose })},
		{row: "5 answer lost, not landed", want: notApplied,
			facts: f(func(x *facts) { x.write = answerLost })},
		{row: "6 refused, pwdLastSet after issuedAt", want: alreadyApplied, detail: "refuses it again",
			facts: f(func(x *facts) { x.write, x.account = refusedAgain, acct(0, issued.Add(time.Second)) })},
		{row: "6 refused, pwdLastSet at issuedAt", want: alreadyApplied, detail: "refuses it again",
			facts: f(func(x *facts) { x.write, x.account = refusedAgain, acct(0, issued) })},
		{row: "7 refused, pwdLastSet before issuedAt", want: notApplied,
			facts: f(func(x *facts) { x.write, x.account = refusedAgain, acct(0, issued.Add(-time.Second)) })},
		{row: "7 refused, pwdLastSet 0", want: notApplied,
			facts: f(func(x *facts) { x.write, x.account = refusedAgain, acct(0, time.Time{}) })},
		{row: "8 resumed unlock", want: notApplied,
			facts: f(func(x *facts) { x.journal, x.op, x.account = journalApplying, protocol.OpUnlock, rose })},
		{row: "9 resumed, landed", want: alreadyApplied, detail: "before a restart",
			facts: f(func(x *facts) { x.journal, x.account = journalApplying, rose })},
		{row: "10 resumed, not landed, window open", want: waitForWrite, wait: 7 * time.Second,
			facts: f(func(x *facts) { x.journal, x.windowLeft = journalApplying, 7*time.Second })},
		{row: "11 resumed, not landed, window over", want: notApplied,
			facts: f(func(x *facts) { x.journal = journalApplying })},
		{row: "12 redelivered, written after queued", want: alreadyApplied, detail: "another instance",
			facts: f(elsewhere(ldapx.User{PwdLastSet: queued.Add(time.Second)}))},
		{row: "14 first delivery, written after queued", want: notApplied,
			facts: f(func(x *facts) { x.deliveries, x.account = 1, acct(0, queued.Add(time.Second)) })},
		{row: "14 first delivery, no enqueue time (queued is issuedAt)", want: notApplied,
			facts: f(func(x *facts) { x.deliveries, x.queued, x.account = 1, issued, acct(0, issued.Add(time.Millisecond)) })},
		{row: "13 first delivery, written at issuedAt", want: superseded, detail: "after this command was issued",
			facts: f(func(x *facts) { x.deliveries, x.account = 1, acct(0, issued) })},
		{row: "13 redelivered, written between issued and queued", want: superseded, detail: "after this command was issued",
			facts: f(elsewhere(ldapx.User{PwdLastSet: issued.Add(time.Millisecond)}))},
		{row: "13 first delivery, must-change reset written after issued", want: superseded,
			facts: f(func(x *facts) {
				elsewhere(ldapx.User{MustChange: true, PwdWrittenAt: issued.Truncate(time.Second)})(x)
				x.deliveries, x.mustChange = 1, true
			})},
		{row: "14 first delivery, written before issued", want: notApplied,
			facts: f(func(x *facts) { x.deliveries, x.account = 1, acct(0, issued.Add(-time.Millisecond)) })},
		{row: "14 first delivery, unlock", want: notApplied,
			facts: f(func(x *facts) { x.deliveries, x.op, x.account = 1, protocol.OpUnlock, acct(0, queued.Add(time.Second)) })},
		{row: "14 redelivered, written before issued", want: notApplied,
			facts: f(elsewhere(ldapx.User{PwdLastSet: issued.Add(-time.Millisecond)}))},
		{row: "14 redelivered check", want: notApplied,
			facts: f(func(x *facts) { elsewhere(ldapx.User{PwdLastSet: queued.Add(time.Second)})(x); x.op = protocol.OpCheck })},

		{row: "a both versions known, version rose", want: alreadyApplied, detail: "before a restart",
			facts: f(func(x *facts) { x.journal, x.account = journalApplying, acct(6, set) })},
		{row: "a both versions known, version unchanged (pwdLastSet moved)", want: notApplied,
			facts: f(func(x *facts) { x.journal, x.account = journalApplying, acct(5, queued) })},
		{row: "b no version, pwdLastSet moved", want: alreadyApplied, detail: "before a restart",
			facts: f(func(x *facts) {
				x.journal, x.before, x.account = journalApplying, mark{pwdLastSet: set}, acct(0, queued)
			})},
		{row: "b no version, pwdLastSet unchanged", want: notApplied,
			facts: f(func(x *facts) { x.journal, x.before, x.account = journalApplying, mark{pwdLastSet: set}, acct(0, set) })},
		{row: "c must-change reset, set before, must change now", want: alreadyApplied, detail: "before a restart",
			facts: f(func(x *facts) {
				x.journal, x.mustChange, x.before = journalApplying, true, mark{pwdLastSet: set}
				x.account = &ldapx.User{MustChange: true}
			})},
		{row: "c must-change reset, 0 before and after", want: notApplied,
			facts: f(func(x *facts) {
				x.journal, x.mustChange, x.before = journalApplying, true, mark{}
				x.account = &ldapx.User{MustChange: true}
			})},
		{row: "c must change now, but no must-change asked", want: notApplied,
			facts: f(func(x *facts) {
				x.journal, x.before = journalApplying, mark{pwdLastSet: set}
				x.account = &ldapx.User{MustChange: true}
			})},

		{row: "d must-change reset, written in the second queued", want: alreadyApplied, detail: "another instance",
			facts: f(func(x *facts) {
				elsewhere(ldapx.User{MustChange: true, PwdWrittenAt: queued.Truncate(time.Second)})(x)
				x.mustChange = true
			})},
		{row: "d must-change reset, written the second before (issuedAt's second)", want: superseded,
			facts: f(func(x *facts) {
				elsewhere(ldapx.User{MustChange: true, PwdWrittenAt: queued.Truncate(time.Second).Add(-time.Second)})(x)
				x.mustChange = true
			})},
		{row: "d must-change reset, written before issuedAt's second", want: notApplied,
			facts: f(func(x *facts) {
				elsewhere(ldapx.User{MustChange: true, PwdWrittenAt: issued.Truncate(time.Second).Add(-time.Second)})(x)
				x.mustChange = true
			})},
		{row: "d must-change reset, no metadata", want: notApplied,
			facts: f(func(x *facts) { elsewhere(ldapx.User{MustChange: true})(x); x.mustChange = true })},
		{row: "d must-change reset, account need not change", want: notApplied,
			facts: f(func(x *facts) {
				elsewhere(ldapx.User{PwdLastSet: queued.Add(time.Second), PwdWrittenAt: queued.Truncate(time.Second)})(x)
				x.mustChange = true
			})},
		{row: "e metadata in the queued second, pwdLastSet after", want: alreadyApplied, detail: "another instance",
			facts: f(elsewhere(ldapx.User{PwdLastSet: queued.Add(300 * time.Millisecond), PwdWrittenAt: queued.Truncate(time.Second)}))},
		{row: "e pwdLastSet after queued, metadata before", want: notApplied,
			facts: f(elsewhere(ldapx.User{PwdLastSet: queued.Add(time.Second), PwdWrittenAt: queued.Add(-time.Minute)}))},
		{row: "e change, no metadata, pwdLastSet after queued", want: alreadyApplied, detail: "another instance",
			facts: f(func(x *facts) {
				elsewhere(ldapx.User{PwdLastSet: queued.Add(time.Second)})(x)
				x.op = protocol.OpChange
			})},
		{row: "e account must change (a flag the command does not set)", want: notApplied,
			facts: f(elsewhere(ldapx.User{MustChange: true, PwdWrittenAt: queued.Add(time.Second)}))},
	} {
		t.Run(tc.row, func(t *testing.T) {
			v := decide(tc.facts)
			if v.kind != tc.want || !strings.Contains(v.detail, tc.detail) || v.wait != tc.wait {
				t.Fatalf("verdict %+v, want kind %d, detail with %q, wait %s", v, tc.want, tc.detail, tc.wait)
			}
			o := v.outcome()
			switch tc.want {
			case alreadyApplied:
				if o == nil || !o.applied || o.code != protocol.CodeSucceeded {
					t.Fatalf("outcome %+v for verdict %+v", o, v)
				}
			case superseded:
				if o == nil || o.applied || o.code != protocol.CodeSuperseded {
					t.Fatalf("outcome %+v for verdict %+v", o, v)
				}
			default:
				if o != nil {
					t.Fatalf("outcome %+v for verdict %+v", o, v)
				}
			}
		})
	}
}
