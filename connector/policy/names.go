package policy

import (
	"fmt"
	"strings"
	"unicode"
)

// MinNameLength: an account name or display-name token shorter than this (in
// UTF-16 code units) is not checked.
const MinNameLength = 3

// displayNameDelimiters are the characters Windows splits displayName on.
const displayNameDelimiters = ",.-_ \t#"

// DisplayNameTokens returns the display-name tokens the name rule checks: the
// displayName split on comma, period, hyphen, underscore, space, tab and '#',
// keeping tokens of at least MinNameLength characters, in order, without
// duplicates (compared case-insensitively). "Erin M. Hagens" gives "Erin"
// and "Hagens".
func DisplayNameTokens(displayName string) []string {
	var out []string
	seen := map[string]bool{}
	for _, tok := range strings.FieldsFunc(displayName, func(r rune) bool {
		return strings.ContainsRune(displayNameDelimiters, r)
	}) {
		if UTF16Len(tok) < MinNameLength {
			continue
		}
		k := string(fold(tok))
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, tok)
	}
	return out
}

// checkNames applies the two name rules (only called when complexity is on).
func checkNames(u User, password string) []Violation {
	var vs []Violation
	if u.SAMAccountName == "" && u.DisplayName == "" {
		return nil
	}
	pw := fold(password)
	if UTF16Len(u.SAMAccountName) >= MinNameLength && containsRunes(pw, fold(u.SAMAccountName)) {
		vs = append(vs, Violation{Rule: RuleContainsAccountName, Token: u.SAMAccountName,
			Message: fmt.Sprintf("contains_account_name: must not contain the account name %q", u.SAMAccountName)})
	}
	for _, tok := range DisplayNameTokens(u.DisplayName) {
		if containsRunes(pw, fold(tok)) {
			vs = append(vs, Violation{Rule: RuleContainsDisplayName, Token: tok,
				Message: fmt.Sprintf("contains_display_name: must not contain %q from the display name", tok)})
		}
	}
	return vs
}

// fold maps s to runes compared case-insensitively. Windows compares names
// with an ordinal, upper-casing comparison, so each rune is upper-cased on
// its own (one rune to one rune: sharp-s stays sharp-s).
func fold(s string) []rune {
	out := make([]rune, 0, len(s))
	for _, r := range s {
		out = append(out, unicode.ToUpper(r))
	}
	return out
}

// containsRunes reports whether needle occurs in hay.
func containsRunes(hay, needle []rune) bool {
	if len(needle) == 0 {
		return true
	}
outer:
	for i := 0; i+len(needle) <= len(hay); i++ {
		for j, r := range needle {
			if hay[i+j] != r {
				continue outer
			}
		}
		return true
	}
	return false
}
