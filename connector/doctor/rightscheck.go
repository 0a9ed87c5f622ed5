package doctor

import (
	"fmt"
	"slices"
	"strings"
)

// RightsInput is what the rights checks of one scoped OU judge.
type RightsInput struct {
	OU string
	// DACL of the OU, or DACLErr when it could not be read.
	DACL    *ACL
	DACLErr error
	Account *ServiceAccount
	// Sample is a user below the OU (nil when none): its own DACL (nil
	// when unreadable) and what allowedAttributesEffective says.
	Sample     *sampleUser
	SampleDACL *ACL
}

// CheckRights reports each required right on the OU as granted or missing
// (with samba-tool and dsacls fix lines), more privilege than needed, and
// the DC's own view of writable attributes on a sample user.
func CheckRights(in RightsInput) []Check {
	var out []Check
	tok := NewToken(in.Account.SID, in.Account.Groups)
	if in.DACLErr != nil {
		for _, r := range Required {
			out = append(out, warn("right "+r.ID, in.OU, fmt.Sprintf("%s: cannot tell, the OU's security descriptor is not readable: %v", r.Name, in.DACLErr),
				fmt.Sprintf("let the service account read permissions on the OU (Read Permissions, granted to Authenticated Users by default): dsacls %q /G \"%s:RC\"", in.OU, in.Account.Trustee())))
		}
	} else {
		var sample []Grant
		if in.Sample != nil && in.SampleDACL != nil {
			sample = ObjectRights(in.SampleDACL, tok)
		}
		for i, g := range InheritedRights(in.DACL, tok) {
			out = append(out, rightCheck(in, g, sample, i))
		}
		if ex := Excess(in.DACL, tok, DomainSIDOf(in.Account.SID)); len(ex) > 0 {
			out = append(out, warn("least privilege", in.OU,
				"the service account holds more than it needs: "+strings.Join(ex, "; "),
				"remove those grants and group memberships; it needs only Reset Password, Change Password, write pwdLastSet and write lockoutTime on user objects in the scoped OUs"))
		} else {
			out = append(out, ok("least privilege", in.OU, "no broader grant than needed found on the OU and no administrative group membership"))
		}
	}
	out = append(out, checkEffectiveAttributes(in))
	return out
}

func rightCheck(in RightsInput, g Grant, sample []Grant, i int) Check {
	name := "right " + g.Right.ID
	fix := SambaFix(g.Right, in.OU, in.Account.SID) + "\n" + DsaclsFix(g.Right, in.OU, in.Account.Trustee())
	switch {
	case g.Granted:
		return ok(name, in.OU, "%s: granted, inherited by user objects (%s)", g.Right.Name, g.ACE)
	case g.Denied:
		return fail(name, in.OU, fmt.Sprintf("%s: DENIED by %s, which comes first in the OU's DACL; %s", g.Right.Name, g.ACE, g.Right.Consequence),
			fmt.Sprintf("remove that deny ACE from %s (Active Directory Users and Computers > Security > Advanced), then grant the right:\n%s", in.OU, fix))
	}
	if sample != nil && sample[i].Granted {
		return warn(name, in.OU, fmt.Sprintf("%s: not granted on the OU, but %s has it from its own ACL (%s), e.g. the class's default security descriptor; users whose ACL lacks it will fail: %s",
			g.Right.Name, in.Sample.DN, sample[i].ACE, g.Right.Consequence), "grant it on the OU so every user in scope inherits it:\n"+fix)
	}
	return fail(name, in.OU, fmt.Sprintf("%s: MISSING: no ACE on the OU grants it to the service account for user objects; %s", g.Right.Name, g.Right.Consequence), fix)
}

// checkEffectiveAttributes corroborates the write rights with the DC's own
// answer: the constructed attribute allowedAttributesEffective on a sample
// user in scope.
func checkEffectiveAttributes(in RightsInput) Check {
	const name = "effective attributes"
	if in.Sample == nil {
		return skip(name, in.OU, "no non-protected user below the OU to sample")
	}
	if len(in.Sample.Writable) == 0 {
		return warn(name, in.OU, fmt.Sprintf("the DC returned no allowedAttributesEffective for %s: either it does not support the attribute, or the service account may write no attribute there", in.Sample.DN),
			"see the write_pwdlastset and write_lockouttime checks for this OU")
	}
	var missing []string
	for _, a := range []string{"pwdLastSet", "lockoutTime"} {
		if !slices.ContainsFunc(in.Sample.Writable, func(s string) bool { return strings.EqualFold(s, a) }) {
			missing = append(missing, a)
		}
	}
	if len(missing) > 0 {
		return warn(name, in.OU, fmt.Sprintf("the DC says the service account cannot write %s on %s (allowedAttributesEffective)", strings.Join(missing, ", "), in.Sample.DN),
			"see the write_pwdlastset and write_lockouttime checks for this OU")
	}
	return ok(name, in.OU, "the DC confirms pwdLastSet and lockoutTime are writable on %s", in.Sample.DN)
}
