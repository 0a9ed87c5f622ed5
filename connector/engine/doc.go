// Package engine is the connector's pipeline: for each delivered command it
// verifies and opens it (relay/protocol), resolves the user in the right AD
// domain, applies scope, protected-account, account-state and rate-limit
// checks, evaluates the password against the user's effective policy
// (connector/policy), applies it (ldapx), journals the signed outcome,
// reports it, and tells the transport how to settle the message.
//
// Exactly-once effect: the journal records every command before anything
// touches AD, marks it "applying" just before the write, and stores the
// signed result before it is sent. A redelivered command whose outcome is
// stored is answered from the journal; one found "applying" (a crash
// between the write and the record) is settled by reading the account's
// pwdLastSet instead of writing again.
package engine
