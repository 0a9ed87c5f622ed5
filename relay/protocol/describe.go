package protocol

import "fmt"

// OpDescribe (v2) asks for the user's effective password requirements
// without a password: the connector resolves the user and refuses what a
// check would refuse, then answers succeeded with Result.Policy. It
// carries no secret. A v1 command with this op is invalid (v1 defines
// four operations).
const OpDescribe Op = "describe"

// opSince is the protocol version that introduced an op (1 if absent).
var opSince = map[Op]int{OpDescribe: 2}

// ValidIn reports whether o is an operation of protocol version v.
func (o Op) ValidIn(v int) bool {
	switch o {
	case OpReset, OpChange, OpUnlock, OpCheck, OpDescribe:
		return max(opSince[o], 1) <= v
	}
	return false
}

// opsText names the operations of version v, for an error.
func opsText(v int) string {
	if OpDescribe.ValidIn(v) {
		return "must be reset, change, unlock, check or describe"
	}
	return "must be reset, change, unlock or check"
}

// PolicySource says where the user's AD password settings come from.
type PolicySource string

// The stable policy sources. A fine-grained policy is not named: its
// name and DN are the directory's, not the sender's.
const (
	// SourceDomain: the domain's default password policy.
	SourceDomain PolicySource = "domain"
	// SourceFineGrained: a fine-grained password policy (PSO) that applies
	// to the user.
	SourceFineGrained PolicySource = "fine_grained"
)

// Policy (v2) is the answer to OpDescribe: the password requirements in
// force for the user, so that a password page can show them before the
// user types. The AD values are those of the user's effective policy
// (the domain's or a fine-grained one's); Org holds the connector's own
// rules on top. A new password needs at least max(MinLength,
// Org.MinLength) characters.
type Policy struct {
	// MinLength is the AD policy's minimum length, in UTF-16 code units.
	MinLength int `json:"minLength"`
	// MaxLength is the longest password accepted, in UTF-16 code units.
	MaxLength int `json:"maxLength"`
	// Complexity is AD's "must meet complexity requirements".
	Complexity bool `json:"complexity"`
	// ComplexityRule says what complexity means, for the user (present
	// when Complexity is true, absent otherwise).
	ComplexityRule string `json:"complexityRule,omitempty"`
	// HistoryLength is how many earlier passwords may not be reused.
	HistoryLength int `json:"historyLength"`
	// MinAge is the minimum password age in seconds (0: none): a user
	// change is refused until then. An administrative reset is not bound
	// by it.
	MinAge int64 `json:"minAge"`
	// MaxAge is the maximum password age in seconds (0: never expires).
	MaxAge int64 `json:"maxAge"`
	// NextChangeAt is when the user may next change the password, present
	// only while the minimum age holds a change back now.
	NextChangeAt *Timestamp `json:"nextChangeAt,omitempty"`
	// Source is where the AD values come from.
	Source PolicySource `json:"source"`
	// Org are the connector's organisation rules.
	Org OrgPolicy `json:"org"`
}

// OrgPolicy are the organisation's rules the connector adds to AD's.
type OrgPolicy struct {
	// MinLength is the organisation's minimum length (0: none).
	MinLength int `json:"minLength"`
	// Banned: banned terms are checked: a banned-word list, or in entra
	// mode (BannedMode) the user's first and last names and the tenant
	// name, with or without a list.
	Banned bool `json:"banned"`
	// BannedMode is how the banned list decides, with Banned only:
	// BannedStrict or BannedEntra ("": not said).
	BannedMode string `json:"bannedMode,omitempty"`
	// Breached: a breached-password list is checked.
	Breached bool `json:"breached"`
}

// policySchema is the result schema's part for Result.Policy.
var policySchema = schema{
	"policy": keys("minLength", "maxLength", "complexity", "complexityRule", "historyLength", "minAge", "maxAge",
		"nextChangeAt", "source", "org"),
	"org": keys("minLength", "banned", "bannedMode", "breached"),
}

// Bounds of the policy's numbers: generous, so that whatever a directory
// holds fits (AD itself stops at 255 characters, 1024 remembered
// passwords and about 29 000 years).
const (
	maxPolicyCount = 65535
	maxPolicyAge   = 1<<53 - 1 // seconds; JSON's exact integers
)

// validPolicy checks Result.Policy against the result carrying it: only a
// v2 succeeded result may carry one.
func (r *Result) validPolicy() error {
	switch {
	case r.Policy == nil:
		return nil
	case r.V < 2:
		return invalid("policy", "not a v1 member")
	case r.Code != CodeSucceeded:
		return invalid("policy", "only allowed with succeeded")
	}
	return r.Policy.validate()
}

func (p *Policy) validate() error {
	for _, n := range []struct {
		field string
		v     int
	}{{"policy.minLength", p.MinLength}, {"policy.historyLength", p.HistoryLength}, {"policy.org.minLength", p.Org.MinLength}} {
		if n.v < 0 || n.v > maxPolicyCount {
			return invalid(n.field, fmt.Sprintf("must be 0 to %d", maxPolicyCount))
		}
	}
	if p.MaxLength < 1 || p.MaxLength > maxPolicyCount {
		return invalid("policy.maxLength", fmt.Sprintf("must be 1 to %d", maxPolicyCount))
	}
	for _, a := range []struct {
		field string
		v     int64
	}{{"policy.minAge", p.MinAge}, {"policy.maxAge", p.MaxAge}} {
		if a.v < 0 || a.v > maxPolicyAge {
			return invalid(a.field, "must be 0 to 2^53-1 seconds")
		}
	}
	switch {
	case p.Complexity && p.ComplexityRule == "":
		return invalid("policy.complexityRule", "required with complexity")
	case !p.Complexity && p.ComplexityRule != "":
		return invalid("policy.complexityRule", "only allowed with complexity")
	case p.ComplexityRule != "":
		if err := validText("policy.complexityRule", p.ComplexityRule, maxMessageBytes); err != nil {
			return err
		}
	}
	if p.NextChangeAt != nil && p.NextChangeAt.IsZero() {
		return invalid("policy.nextChangeAt", "must be a timestamp")
	}
	if p.Source != SourceDomain && p.Source != SourceFineGrained {
		return invalid("policy.source", "must be domain or fine_grained")
	}
	switch {
	case p.Org.BannedMode == "":
	case !p.Org.Banned:
		return invalid("policy.org.bannedMode", "only allowed with banned")
	case p.Org.BannedMode != BannedStrict && p.Org.BannedMode != BannedEntra:
		return invalid("policy.org.bannedMode", "must be strict or entra")
	}
	return nil
}

// The policy's org.bannedMode values (PROTOCOL.md §7.3).
const (
	BannedStrict = "strict"
	BannedEntra  = "entra"
)

// ValidFor checks what the result of a command with op must carry beyond
// Validate: a succeeded describe carries a Policy, and a result of any
// other op none. A sender calls it with the op it sent (relay/sender
// does); the connector signs nothing else.
func (r *Result) ValidFor(op Op) error {
	switch {
	case op == OpDescribe && r.Code == CodeSucceeded && r.V >= 2 && r.Policy == nil:
		return invalid("policy", "required with op describe and succeeded")
	case op != OpDescribe && r.Policy != nil:
		return invalid("policy", "only allowed with op describe")
	}
	return nil
}
