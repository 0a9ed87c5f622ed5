package doctor

import (
	"errors"
	"fmt"

	"github.com/adwriteback/adwriteback/ldapx"
)

// Account is how the service account is configured, for fix lines.
type Account struct {
	DN string
	// PasswordSource names where the password comes from (the config key
	// and file or variable), never the password.
	PasswordSource string
}

// CheckBind judges the result of binding as the service account on one DC
// (err from ldapx's Ping). Bind failures are decoded from the DC's "data"
// sub-code.
func CheckBind(err error, dc string, acct Account) Check {
	const name = "bind"
	if err == nil {
		return ok(name, dc, "bound as %s", acct.DN)
	}
	var le *ldapx.Error
	errors.As(err, &le)
	var ke *ldapx.KerberosError
	switch {
	case errors.As(err, &ke):
		// A Kerberos bind: the classified cause and its fix (the kerberos
		// checks below say more).
		return fail(name, dc, fmt.Sprintf("%s: kerberos %s", acct.DN, ke.Reason), ke.Fix)
	case errors.Is(err, ldapx.ErrInvalidCredentials):
		var code uint32
		if le != nil {
			code = le.WinCode
		}
		return bindFailure(code, dc, acct)
	case errors.Is(err, ldapx.ErrTLS):
		return fail(name, dc, fmt.Sprintf("TLS failed before the bind: %v", err), "see the tls trust check for this DC")
	case errors.Is(err, ldapx.ErrTransient), errors.Is(err, ldapx.ErrCanceled):
		return fail(name, dc, fmt.Sprintf("the DC did not answer: %v", err), "see the tcp reachable check for this DC; raise domains[].dial_timeout if the DC is slow")
	case errors.Is(err, ldapx.ErrUnwilling):
		return fail(name, dc, fmt.Sprintf("the DC refused the bind: %v", err), "use ldaps:// (or ldap:// with StartTLS) and a DC that accepts simple binds over TLS")
	}
	return fail(name, dc, fmt.Sprintf("bind failed: %v", err), "check domains[].bind.dn and the DC's logs")
}

func bindFailure(code uint32, dc string, acct Account) Check {
	const name = "bind"
	d := func(what string) string { return fmt.Sprintf("%s: %s (LDAP 49, data %x)", acct.DN, what, code) }
	switch code {
	case ldapx.WinLogonFailure:
		return fail(name, dc, d("wrong password (or unknown account)"),
			fmt.Sprintf("put the service account's current password in %s; or reset it: Samba `samba-tool user setpassword <sAMAccountName>`, Windows `Set-ADAccountPassword -Identity <sAMAccountName> -Reset`", acct.PasswordSource))
	case 0x525:
		return fail(name, dc, d("no such account"),
			"set domains[].bind.dn to the service account's distinguished name (or its userPrincipalName)")
	case ldapx.WinAccountLocked:
		return fail(name, dc, d("the account is locked out (too many wrong passwords)"),
			fmt.Sprintf("unlock it (Samba `samba-tool user unlock <sAMAccountName>`, Windows `Unlock-ADAccount <sAMAccountName>`), then check %s holds the current password so it does not lock again", acct.PasswordSource))
	case ldapx.WinPasswordExpired:
		return fail(name, dc, d("the account's password has expired"),
			fmt.Sprintf("set a new password, put it in %s, and exempt the account from expiry (userAccountControl DONT_EXPIRE_PASSWORD, or a PSO) or plan its rotation", acct.PasswordSource))
	case ldapx.WinPasswordMustChange:
		return fail(name, dc, d("the account must change its password at next logon"),
			fmt.Sprintf("set a new password without \"must change\" (Samba `samba-tool user setpassword <sAMAccountName>`), put it in %s", acct.PasswordSource))
	case ldapx.WinAccountDisabled:
		return fail(name, dc, d("the account is disabled"),
			"enable it: Samba `samba-tool user enable <sAMAccountName>`, Windows `Enable-ADAccount <sAMAccountName>`")
	case ldapx.WinAccountExpired:
		return fail(name, dc, d("the account has expired (accountExpires)"),
			"extend or clear the account's expiry date (Windows `Clear-ADAccountExpiration`, Samba `samba-tool user setexpiry --noexpiry`)")
	case ldapx.WinInvalidLogonHours, ldapx.WinInvalidWorkstation, ldapx.WinAccountRestriction:
		return fail(name, dc, d("the account may not log on from here or now (logon hours, workstations or restrictions)"),
			"clear logonHours / userWorkstations restrictions on the service account")
	}
	return fail(name, dc, d("invalid credentials"),
		fmt.Sprintf("check domains[].bind.dn and the password in %s", acct.PasswordSource))
}
