package policy

import (
	"encoding/json"
	"time"
)

// Rule is a stable rule code, part of the public API: never renamed.
type Rule string

// The rule codes.
const (
	RuleMinLength           Rule = "min_length"
	RuleMaxLength           Rule = "max_length"
	RuleComplexity          Rule = "complexity"
	RuleContainsAccountName Rule = "contains_account_name"
	RuleContainsDisplayName Rule = "contains_display_name"
	RuleBanned              Rule = "banned"
	RuleBreached            Rule = "breached"
	// RuleMinAge is predicted by PredictMinAge, or reported by the DC.
	RuleMinAge Rule = "min_age"
	// RuleHistory is only ever reported by the DC; Check never returns it.
	RuleHistory Rule = "history"
)

// Violation is one failed rule. Nothing in it is the password or derived
// from it: Token is a name token, the account name or a banned-list term.
type Violation struct {
	Rule Rule
	// Message is safe to show the user, e.g. "min_length: needs at least 12
	// characters, got 9".
	Message string
	// Required and Got: characters for min_length/max_length, categories for
	// complexity.
	Required int
	Got      int
	// Found and Missing are the complexity categories present and absent.
	Found   []Category
	Missing []Category
	// Token is the account name (contains_account_name), the display-name
	// token (contains_display_name) or the banned-list term (banned).
	Token string
	// NotBefore is the earliest time a change is allowed (min_age).
	NotBefore time.Time
	// Matches names the matched terms, up to MaxNamedMatches, and how each
	// matched where it was found (banned); Token is the first. Mode is the
	// banned mode; in entra mode, Score is the password's points and
	// ScoreNeeded the points it needs.
	Matches []BannedMatch
	// MoreMatches is a lower bound on the terms matched beyond those named
	// (see MaxNamedMatches): 0 when there are none, else at least 1. Strict
	// mode stops looking at the first term past those named, so it is not
	// a count.
	MoreMatches int
	Mode        BannedMode
	Score       int
	ScoreNeeded int
}

// MarshalJSON writes the rule, the message and only the fields the rule uses,
// with snake_case names.
func (v Violation) MarshalJSON() ([]byte, error) {
	type out struct {
		Rule        Rule          `json:"rule"`
		Message     string        `json:"message"`
		Required    *int          `json:"required,omitempty"`
		Got         *int          `json:"got,omitempty"`
		Found       *[]Category   `json:"found,omitempty"`
		Missing     *[]Category   `json:"missing,omitempty"`
		Token       string        `json:"token,omitempty"`
		NotBefore   *time.Time    `json:"not_before,omitempty"`
		Mode        BannedMode    `json:"mode,omitempty"`
		Matches     []BannedMatch `json:"matches,omitempty"`
		MoreMatches int           `json:"more_matches,omitempty"`
		Score       *int          `json:"score,omitempty"`
		ScoreNeeded *int          `json:"score_needed,omitempty"`
	}
	o := out{Rule: v.Rule, Message: v.Message, Token: v.Token}
	switch v.Rule {
	case RuleMinLength, RuleMaxLength:
		o.Required, o.Got = &v.Required, &v.Got
	case RuleComplexity:
		o.Required, o.Got = &v.Required, &v.Got
		found, missing := nonNil(v.Found), nonNil(v.Missing)
		o.Found, o.Missing = &found, &missing
	case RuleBanned:
		o.Mode, o.Matches, o.MoreMatches = v.Mode, v.Matches, v.MoreMatches
		if v.Mode == BannedEntra {
			o.Score, o.ScoreNeeded = &v.Score, &v.ScoreNeeded
		}
	case RuleMinAge:
		if !v.NotBefore.IsZero() {
			t := v.NotBefore.UTC()
			o.NotBefore = &t
		}
	}
	return json.Marshal(o)
}

func nonNil(c []Category) []Category {
	if c == nil {
		return []Category{}
	}
	return c
}
