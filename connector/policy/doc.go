// Package policy owns the local password policy check: Active Directory's own
// rules (length in UTF-16 code units, the "Passwords must meet complexity
// requirements" categories and name rules, exactly as Microsoft documents them)
// plus the organisation's extras (a higher minimum length, a banned-word list
// with normalisation and fuzzy matching, an offline breached-password list).
//
// Check is pure: it does no I/O of its own. The only outside call it makes is
// to the BreachChecker the caller puts in the Policy, if any. Policy is a plain
// struct with exported fields so that callers map AD's domain policy and PSO
// values into it themselves.
//
// Violations carry stable rule codes (the Rule constants), part of the public
// API: they are never renamed. A Violation never contains the password.
package policy
