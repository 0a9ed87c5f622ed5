package policy

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// DefaultMaxLength is Active Directory's longest password, in UTF-16 code units.
const DefaultMaxLength = 256

// Policy is the effective password policy for one user: the domain's (or the
// user's resultant PSO's) values plus the organisation's extras. The zero
// value checks only the maximum length.
type Policy struct {
	// MinLength is minPwdLength / msDS-MinimumPasswordLength, in UTF-16 code units.
	MinLength int
	// MaxLength is the longest password; 0 means DefaultMaxLength (256).
	MaxLength int
	// ComplexityEnabled is pwdProperties&1 / msDS-PasswordComplexityEnabled.
	// It switches on the category rule and both name rules.
	ComplexityEnabled bool
	// HistoryLength is pwdHistoryLength / msDS-PasswordHistoryLength. History
	// is only known to the DC: Check never reports RuleHistory.
	HistoryLength int
	// MinAge and MaxAge are minPwdAge / maxPwdAge as positive durations.
	// MinAge feeds PredictMinAge; Check does not use either.
	MinAge time.Duration
	MaxAge time.Duration

	// OrgMinLength is the organisation's minimum length; it applies when it is
	// above MinLength, and is reported under RuleMinLength.
	OrgMinLength int
	// Banned is the organisation's banned-word list; nil switches it off.
	Banned *BannedList
	// BannedMode is how the banned list decides: BannedStrict ("" too) or
	// BannedEntra.
	BannedMode BannedMode
	// TenantName is matched as a substring in entra mode, like the user's
	// first and last names; "" switches it off (Entra's DC agent does not
	// match it on premises).
	TenantName string
	// Breached is the breached-password list; nil switches it off.
	Breached BreachChecker
}

// EffectiveMinLength is the larger of the domain's and the organisation's minimum.
func (p *Policy) EffectiveMinLength() int { return max(p.MinLength, p.OrgMinLength, 0) }

// EffectiveMaxLength is MaxLength, or DefaultMaxLength when unset.
func (p *Policy) EffectiveMaxLength() int {
	if p.MaxLength <= 0 {
		return DefaultMaxLength
	}
	return p.MaxLength
}

// User is what the rules need to know about the account.
type User struct {
	SAMAccountName string
	DisplayName    string
	// FirstName and LastName are givenName and sn, matched as substrings in
	// the entra banned mode.
	FirstName string
	LastName  string
	// PwdLastSet is when the password was last set; the zero time means never
	// (or pwdLastSet=0, "must change at next logon").
	PwdLastSet time.Time
}

// BreachChecker answers whether a password is in a breached-password corpus.
// Implementations must not keep, log or return the password.
type BreachChecker interface {
	Breached(password string) (bool, error)
}

// ErrBreachCheck wraps a failed breached-password lookup.
var ErrBreachCheck = errors.New("policy: breached-password lookup failed")

// Check evaluates password against p for user u and returns every violation,
// in a stable order (min_length, max_length, complexity,
// contains_account_name, contains_display_name, banned, breached). It returns
// nil when the password passes. One exception to "every": a password longer
// than the maximum length is not scanned against the banned list.
//
// The error is non-nil only when p.Breached failed (it wraps ErrBreachCheck);
// the violations of every other rule are still returned then, and the caller
// decides whether to fail open or closed. Check itself does no I/O.
//
// A string that is not valid UTF-8 is read as Go reads it and as it would be
// converted to UTF-16: each invalid byte is one U+FFFD.
func Check(p Policy, u User, password string) ([]Violation, error) {
	var vs []Violation
	n := UTF16Len(password)
	if min := p.EffectiveMinLength(); n < min {
		vs = append(vs, Violation{Rule: RuleMinLength, Required: min, Got: n,
			Message: fmt.Sprintf("min_length: needs at least %d characters, got %d", min, n)})
	}
	if max := p.EffectiveMaxLength(); n > max {
		vs = append(vs, Violation{Rule: RuleMaxLength, Required: max, Got: n,
			Message: fmt.Sprintf("max_length: allows at most %d characters, got %d", max, n)})
	}
	if p.ComplexityEnabled {
		if v, bad := checkCategories(password); bad {
			vs = append(vs, v)
		}
		vs = append(vs, checkNames(u, password)...)
	}
	// The banned-list scan costs O(n) probes per term length: a password
	// already refused for its length (over 256 by default) is not scanned,
	// so that an oversized input cannot cost more than a normal check.
	if (p.Banned != nil || p.BannedMode == BannedEntra) && n <= p.EffectiveMaxLength() {
		if v, bad := checkBanned(p, u, password); bad {
			vs = append(vs, v)
		}
	}
	var err error
	if p.Breached != nil {
		breached, berr := p.Breached.Breached(password)
		switch {
		case berr != nil:
			err = fmt.Errorf("%w: %w", ErrBreachCheck, berr)
		case breached:
			vs = append(vs, Violation{Rule: RuleBreached,
				Message: "breached: this password appears in a list of passwords exposed in data breaches"})
		}
	}
	return vs, err
}

// UTF16Len is the length of s in UTF-16 code units, the unit Active Directory
// counts in: characters outside the Basic Multilingual Plane (most emoji)
// count 2. Each invalid UTF-8 byte counts 1 (it becomes U+FFFD).
func UTF16Len(s string) int {
	n := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			n++
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		if r >= 0x10000 {
			n += 2
		} else {
			n++
		}
	}
	return n
}

func checkCategories(password string) (Violation, bool) {
	var seen [5]bool
	for _, r := range password {
		if c := categoryOf(r); c != categoryNone {
			seen[c] = true
		}
	}
	var found, missing []Category
	for i, c := range allCategories {
		if seen[i] {
			found = append(found, c)
		} else {
			missing = append(missing, c)
		}
	}
	if len(found) >= ComplexityMinCategories {
		return Violation{}, false
	}
	return Violation{
		Rule:     RuleComplexity,
		Required: ComplexityMinCategories,
		Got:      len(found),
		Found:    found,
		Missing:  missing,
		Message: fmt.Sprintf("complexity: needs characters from %d of 5 categories, got %d (found: %s; missing: %s)",
			ComplexityMinCategories, len(found), joinCategories(found), joinCategories(missing)),
	}, true
}

func joinCategories(cs []Category) string {
	if len(cs) == 0 {
		return "none"
	}
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = string(c)
	}
	return strings.Join(s, ", ")
}
