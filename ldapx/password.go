package ldapx

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-ldap/ldap/v3"
)

// ResetOptions go with an admin reset, applied in the same modify.
type ResetOptions struct {
	// MustChange sets pwdLastSet=0: the user must change the password at
	// next logon.
	MustChange bool
	// Unlock sets lockoutTime=0 (a reset alone does not unlock).
	Unlock bool
	// NoPolicyHints skips the policy-hints control even when the DC
	// advertises it (history and minimum age are then not enforced).
	NoPolicyHints bool
}

// Applied says where and how a write happened.
type Applied struct {
	DC          string
	PolicyHints string // OID of the policy-hints control sent, "" if none
}

// policyHintsValue is the control value: BER SEQUENCE { INTEGER 1 }.
const policyHintsValue = "\x30\x03\x02\x01\x01"

// policyHintsControl is sent non-critical: Samba misreads go-ldap's
// criticality encoding, and a DC that advertises the control honours it
// either way.
func policyHintsControl(oid string) ldap.Control {
	return ldap.NewControlString(oid, false, policyHintsValue)
}

// Reset sets dn's password as an administrator (one replace of
// unicodePwd), with must-change and unlock in the same modify. When the
// DC advertises the policy-hints control it is sent (non-critical), so
// history and minimum age are enforced as for a user change.
func (cl *Client) Reset(ctx context.Context, dn, newPassword string, opts ResetOptions) (Applied, error) {
	const op = "ldapx.Reset"
	if dn == "" {
		return Applied{}, &Error{Op: op, Kind: KindInvalidInput, Err: errors.New("empty DN")}
	}
	var controls []ldap.Control
	var hints string
	if !opts.NoPolicyHints {
		r, err := cl.RootDSE(ctx)
		if err != nil {
			return Applied{}, err
		}
		if hints = r.PolicyHintsOID(); hints != "" {
			controls = append(controls, policyHintsControl(hints))
		}
	}
	m := ldap.NewModifyRequest(dn, controls)
	pw := EncodePassword(newPassword)
	defer clear(pw)
	m.Replace("unicodePwd", []string{string(pw)})
	if opts.MustChange {
		m.Replace("pwdLastSet", []string{"0"})
	}
	if opts.Unlock {
		m.Replace("lockoutTime", []string{"0"})
	}
	dc, err := cl.modify(ctx, op, m)
	if err != nil && hints != "" {
		// With policy hints, minimum age applies to resets too.
		cl.explainRestriction(ctx, dn, err)
	}
	return Applied{DC: dc, PolicyHints: hints}, err
}

// Change is a user password change: one modify deleting the old value and
// adding the new one. The DC checks the old password (wrong: 00000056),
// history and minimum age. The service account needs the Change Password
// right on the user.
func (cl *Client) Change(ctx context.Context, dn, oldPassword, newPassword string) (Applied, error) {
	const op = "ldapx.Change"
	if dn == "" {
		return Applied{}, &Error{Op: op, Kind: KindInvalidInput, Err: errors.New("empty DN")}
	}
	oldv, newv := EncodePassword(oldPassword), EncodePassword(newPassword)
	defer clear(oldv)
	defer clear(newv)
	m := ldap.NewModifyRequest(dn, nil)
	m.Delete("unicodePwd", []string{string(oldv)})
	m.Add("unicodePwd", []string{string(newv)})
	dc, err := cl.modify(ctx, op, m)
	if err != nil {
		cl.explainRestriction(ctx, dn, err)
	}
	return Applied{DC: dc}, err
}

// explainRestriction sets Restriction on a password-restriction error from
// what the directory holds, never from the DC's text: when the user's
// pwdLastSet plus the effective minimum age is in the future, the refusal
// is the minimum age.
func (cl *Client) explainRestriction(ctx context.Context, dn string, err error) {
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindPasswordRestriction {
		return
	}
	u, uerr := cl.ReadUser(ctx, dn)
	if uerr != nil || u.PwdLastSet.IsZero() {
		return
	}
	p, perr := cl.EffectivePolicy(ctx, u)
	if perr != nil || p.MinAge <= 0 {
		return
	}
	if cl.cfg.Clock.Now().Before(u.PwdLastSet.Add(p.MinAge)) {
		e.Restriction = RestrictionMinAge
	}
}

// Unlock clears a lockout (lockoutTime=0).
func (cl *Client) Unlock(ctx context.Context, dn string) (Applied, error) {
	m := ldap.NewModifyRequest(dn, nil)
	m.Replace("lockoutTime", []string{"0"})
	dc, err := cl.modify(ctx, "ldapx.Unlock", m)
	return Applied{DC: dc}, err
}

// SetMustChange sets (pwdLastSet=0) or clears (pwdLastSet=-1, "now") the
// must-change-at-next-logon state.
func (cl *Client) SetMustChange(ctx context.Context, dn string, must bool) (Applied, error) {
	v := "-1"
	if must {
		v = "0"
	}
	m := ldap.NewModifyRequest(dn, nil)
	m.Replace("pwdLastSet", []string{v})
	dc, err := cl.modify(ctx, "ldapx.SetMustChange", m)
	return Applied{DC: dc}, err
}

func (cl *Client) modify(ctx context.Context, op string, m *ldap.ModifyRequest) (string, error) {
	if m.DN == "" {
		return "", &Error{Op: op, Kind: KindInvalidInput, Err: fmt.Errorf("empty DN")}
	}
	return cl.with(ctx, op, false, func(c *conn) error {
		return c.do(ctx, cl.cfg.OpTimeout, func(l *ldap.Conn) error { return l.Modify(m) })
	})
}
