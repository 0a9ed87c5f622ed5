// Package engine is the connector's pipeline: it owns what happens to one
// delivered command, from its envelope to the settled message. It
// implements transport.Handler; the message source (relay/servicebus)
// settles each message as told and reports what it did.
//
// Handle (handle.go) runs one command through named stages. Each stage is
// a function of its own in the file named here; a deciding stage returns
// the command's outcome, or nil to hand it to the next:
//
//	receive            verify the signature, expiry and replay, open the
//	                   sealed password, claim the id (receive.go, with
//	                   relay/protocol); a refusal is answered or
//	                   dead-lettered, a finished id answered from the journal
//	findUser           route to the domain, find the account (find.go)
//	settleResumed      a command this instance left "applying" (applied.go)
//	admit              scope OUs, built-in and non-user accounts, tier-0
//	                   and excluded groups (by SID, from tokenGroups),
//	                   protected and disabled accounts (admit.go)
//	appliedElsewhere   a write another instance made and never answered
//	                   (applied.go)
//	rateLimit          attempts per user (check.go)
//	checkPolicy        the password against the effective policy and the
//	                   organisation's rules (check.go, with connector/policy)
//	apply              mark the write in the journal, write over LDAPS,
//	                   classify the answer (apply.go, with ldapx)
//	finish             sign the result, journal it, report it, wait until
//	                   durable, settle; the audit record is written once
//	                   the source has settled (finish.go)
//
// A describe command (protocol v2: the user's password requirements,
// without a password) runs findUser, admit and rateLimit, then describe
// instead of checkPolicy (describe.go): it writes nothing and is never
// marked in the journal; its result is journaled as any other.
//
// Between findUser and apply the command holds one of Config.Concurrency
// slots, which protect the DCs; a transient outcome is abandoned (the
// message comes back) until the delivery count reaches MaxAttempts.
//
// Exactly-once effect: the journal records every command before anything
// touches AD, marks it "applying" (with the account's unicodePwd
// replication version and pwdLastSet) just before the write, and stores
// the signed result before the message is settled. Whether a command is
// already applied is decided in one place, applied.go, whose doc comment
// holds the decision table: a redelivered command whose outcome is stored
// is answered from the journal; one found "applying" is settled from the
// account (the password's replication version first, else pwdLastSet)
// instead of being written again; a write whose answer was lost, another
// instance's write, and the DC refusing a re-apply are recognised from the
// same evidence.
package engine
