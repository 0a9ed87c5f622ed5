package protocol

// ResultCode is the outcome of a command. The values are part of the wire
// API: they are documented in PROTOCOL.md and are never renamed or reused.
type ResultCode string

// The stable result codes of protocol v1.
const (
	// CodeSucceeded: the operation was applied (reset, change, unlock), or,
	// for op "check", the candidate passes the user's live policy.
	CodeSucceeded ResultCode = "succeeded"
	// CodePolicyViolation: the candidate fails one or more password rules;
	// Result.Violations lists every failed rule.
	CodePolicyViolation ResultCode = "policy_violation"
	// CodeRejectedByDC: the domain controller refused the password for a
	// reason the local pre-check could not see; Result.DCReason says which.
	CodeRejectedByDC ResultCode = "rejected_by_dc"
	// CodeUserNotFound: no account matches the user reference.
	CodeUserNotFound ResultCode = "user_not_found"
	// CodeAmbiguousUser: more than one account matches the user reference.
	CodeAmbiguousUser ResultCode = "ambiguous_user"
	// CodeOutOfScope: the account is outside the connector's configured
	// scope (its OUs, an excluded group), or not a normal user account.
	CodeOutOfScope ResultCode = "out_of_scope"
	// CodeProtectedAccount: the account is protected (a built-in account,
	// a tier-0 group member, adminCount=1) and is never written by the
	// connector.
	CodeProtectedAccount ResultCode = "protected_account"
	// CodeAccessDenied: the directory refused the connector's account the
	// right to perform the operation, or the old password for "change" was
	// wrong.
	CodeAccessDenied ResultCode = "access_denied"
	// CodeAccountDisabled: the account is disabled.
	CodeAccountDisabled ResultCode = "account_disabled"
	// CodeRateLimited: too many attempts for this user; Result.RetryAfter may
	// say when to try again.
	CodeRateLimited ResultCode = "rate_limited"
	// CodeExpired: the command reached the connector after its expiry (or is
	// dated too far in the future) and was not executed.
	CodeExpired ResultCode = "expired"
	// CodeInvalidCommand: the command is malformed, unsigned, wrongly signed,
	// sealed to an unknown key, or replayed; it was not executed.
	CodeInvalidCommand ResultCode = "invalid_command"
	// CodeTransient: a temporary failure (no DC reachable, busy); the same
	// command id may be sent again later.
	CodeTransient ResultCode = "transient"
	// CodeInternal: an unexpected connector failure; admins find the detail in
	// the connector's audit log under the command id.
	CodeInternal ResultCode = "internal"
	// CodeSuperseded (v2): the account's password was written after the
	// command was issued (the command was applied already, by a copy or
	// another instance, or the password was changed since), so the
	// command was not executed. A v1 command gets CodeExpired instead.
	CodeSuperseded ResultCode = "superseded"
)

// codes lists every ResultCode in documentation order.
var codes = [...]ResultCode{
	CodeSucceeded, CodePolicyViolation, CodeRejectedByDC, CodeUserNotFound,
	CodeAmbiguousUser, CodeOutOfScope, CodeProtectedAccount, CodeAccessDenied,
	CodeAccountDisabled, CodeRateLimited, CodeExpired, CodeInvalidCommand,
	CodeTransient, CodeInternal, CodeSuperseded,
}

// codeSince is the protocol version that introduced a code (1 if absent).
var codeSince = map[ResultCode]int{CodeSuperseded: 2}

// ResultCodes returns every stable result code, in documentation order.
func ResultCodes() []ResultCode {
	out := make([]ResultCode, len(codes))
	copy(out, codes[:])
	return out
}

// Valid reports whether c is one of the stable result codes (of the
// latest version).
func (c ResultCode) Valid() bool { return c.ValidIn(Version) }

// ValidIn reports whether c is a result code of protocol version v.
func (c ResultCode) ValidIn(v int) bool {
	for _, k := range codes {
		if c == k {
			return max(codeSince[c], 1) <= v
		}
	}
	return false
}

// For returns the code a command of protocol version v is answered with
// for c: c itself, or for a code v does not have, the v1 code that means
// the most nearly the same (CodeSuperseded: CodeExpired, "not executed").
func (c ResultCode) For(v int) ResultCode {
	if c.ValidIn(v) {
		return c
	}
	return CodeExpired
}

// Retryable reports whether the same command may usefully be sent again
// later (with a new id, once its expiry has passed, or with the same id
// while it is still valid for "transient").
func (c ResultCode) Retryable() bool {
	return c == CodeTransient || c == CodeRateLimited
}

// DefaultMessage is a user-safe sentence for c, used when the connector has
// nothing more specific to say. It never contains account or policy detail.
func (c ResultCode) DefaultMessage() string {
	switch c {
	case CodeSucceeded:
		return "Your password was updated."
	case CodePolicyViolation:
		return "The new password does not meet the password policy."
	case CodeRejectedByDC:
		return "The directory did not accept the new password."
	case CodeUserNotFound, CodeAmbiguousUser, CodeOutOfScope, CodeProtectedAccount:
		return "The password for this account cannot be changed here. Contact your help desk."
	case CodeAccessDenied:
		return "The password could not be changed. Contact your help desk."
	case CodeAccountDisabled:
		return "This account is disabled. Contact your help desk."
	case CodeRateLimited:
		return "Too many attempts. Please try again later."
	case CodeExpired:
		return "The request took too long to arrive. Please try again."
	case CodeInvalidCommand:
		return "The request could not be processed. Please try again."
	case CodeTransient:
		return "The directory is temporarily unavailable. Please try again in a few minutes."
	case CodeSuperseded:
		return "The password was changed after this request was made, so it was not applied."
	default:
		return "An unexpected error occurred. Contact your help desk."
	}
}

// DCReason qualifies CodeRejectedByDC.
type DCReason string

// The stable DC rejection reasons.
const (
	// DCReasonHistory: the password matches one in the account's history.
	DCReasonHistory DCReason = "history"
	// DCReasonMinAge: the current password is younger than the minimum age.
	DCReasonMinAge DCReason = "min_age"
	// DCReasonOther: any other refusal (for example a password filter).
	DCReasonOther DCReason = "other"
)

// Valid reports whether r is one of the stable DC reasons.
func (r DCReason) Valid() bool {
	return r == DCReasonHistory || r == DCReasonMinAge || r == DCReasonOther
}
