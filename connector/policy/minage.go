package policy

import (
	"fmt"
	"time"
)

// PredictMinAge predicts the DC's min_age refusal of a user password change:
// a change is refused until pwdLastSet + minPwdAge. It returns the violation
// and true when now is before that. No violation when minAge is not positive
// or pwdLastSet is the zero time (never set, or "must change at next logon").
// now comes from the caller's clock. Admin resets skip the minimum age unless
// the policy-hints control is sent; whether to call this is the caller's
// decision.
func PredictMinAge(pwdLastSet time.Time, minAge time.Duration, now time.Time) (Violation, bool) {
	if minAge <= 0 || pwdLastSet.IsZero() {
		return Violation{}, false
	}
	notBefore := pwdLastSet.Add(minAge)
	if !now.Before(notBefore) {
		return Violation{}, false
	}
	return Violation{
		Rule:      RuleMinAge,
		NotBefore: notBefore,
		Message: fmt.Sprintf("min_age: the password was changed less than %s ago; it can be changed again after %s",
			humanDuration(minAge), notBefore.UTC().Format(time.RFC3339)),
	}, true
}

// humanDuration prints whole days when the duration is a number of days
// (minPwdAge usually is), else Go's form.
func humanDuration(d time.Duration) string {
	const day = 24 * time.Hour
	if d%day == 0 {
		if d == day {
			return "1 day"
		}
		return fmt.Sprintf("%d days", d/day)
	}
	return d.String()
}
