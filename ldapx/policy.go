package ldapx

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// Policy is a user's effective password policy: the domain's, overlaid by
// the resultant fine-grained policy (PSO) when one applies.
type Policy struct {
	MinLength            int
	Complexity           bool
	ReversibleEncryption bool
	HistoryLength        int
	MinAge               time.Duration // 0: none
	MaxAge               time.Duration // 0: never expires
	LockoutThreshold     int
	LockoutDuration      time.Duration
	LockoutWindow        time.Duration
	// PSO is the DN of the fine-grained policy in force, "" for the domain's.
	PSO string
	// ReadAt is when the values were read from the DC.
	ReadAt time.Time
}

// pwdProperties bits (domain root).
const (
	PwdPropComplex        = 0x1
	PwdPropStoreCleartext = 0x10
)

type cachedPolicy struct {
	p  Policy
	at time.Time
}

var domainPolicyAttrs = []string{"minPwdLength", "pwdProperties", "pwdHistoryLength", "minPwdAge",
	"maxPwdAge", "lockoutThreshold", "lockoutDuration", "lockOutObservationWindow"}

var psoAttrs = []string{"msDS-MinimumPasswordLength", "msDS-PasswordComplexityEnabled",
	"msDS-PasswordReversibleEncryptionEnabled", "msDS-PasswordHistoryLength", "msDS-MinimumPasswordAge",
	"msDS-MaximumPasswordAge", "msDS-LockoutThreshold", "msDS-LockoutDuration",
	"msDS-LockoutObservationWindow", "msDS-PasswordSettingsPrecedence"}

// DomainPolicy returns the domain's default password policy (cached for
// PolicyRefresh).
func (cl *Client) DomainPolicy(ctx context.Context) (*Policy, error) {
	r, err := cl.RootDSE(ctx)
	if err != nil {
		return nil, err
	}
	return cl.cachedRead(ctx, "domain:"+r.DefaultNamingContext, func() (*Policy, error) {
		e, err := cl.readEntry(ctx, "ldapx.DomainPolicy", r.DefaultNamingContext, "(objectClass=domain)", domainPolicyAttrs)
		if err != nil {
			return nil, err
		}
		var p Policy
		var perr parseErrs
		p.MinLength = perr.int(e, "minPwdLength")
		props := perr.int(e, "pwdProperties")
		p.Complexity = props&PwdPropComplex != 0
		p.ReversibleEncryption = props&PwdPropStoreCleartext != 0
		p.HistoryLength = perr.int(e, "pwdHistoryLength")
		p.MinAge = perr.interval(e, "minPwdAge")
		p.MaxAge = perr.interval(e, "maxPwdAge")
		p.LockoutThreshold = perr.int(e, "lockoutThreshold")
		p.LockoutDuration = perr.interval(e, "lockoutDuration")
		p.LockoutWindow = perr.interval(e, "lockOutObservationWindow")
		if perr.err != nil {
			return nil, &Error{Op: "ldapx.DomainPolicy", Kind: KindOther, Err: perr.err}
		}
		return &p, nil
	})
}

// EffectivePolicy returns u's policy: the resultant PSO's settings when one
// applies (a PSO carries every setting, so it replaces the domain's), else
// the domain's.
func (cl *Client) EffectivePolicy(ctx context.Context, u *User) (*Policy, error) {
	if u.ResultantPSO == "" {
		return cl.DomainPolicy(ctx)
	}
	dom, err := cl.DomainPolicy(ctx)
	if err != nil {
		return nil, err
	}
	return cl.cachedRead(ctx, "pso:"+strings.ToLower(u.ResultantPSO), func() (*Policy, error) {
		const op = "ldapx.EffectivePolicy"
		e, err := cl.readEntry(ctx, op, u.ResultantPSO, "(objectClass=msDS-PasswordSettings)", psoAttrs)
		if err != nil {
			return nil, fmt.Errorf("read the resultant PSO (the service account needs read access to the Password Settings Container): %w", err)
		}
		p := *dom // overlay: a value absent from the entry keeps the domain's
		var perr parseErrs
		if e.GetAttributeValue("msDS-MinimumPasswordLength") != "" {
			p.MinLength = perr.int(e, "msDS-MinimumPasswordLength")
		}
		if v := e.GetAttributeValue("msDS-PasswordComplexityEnabled"); v != "" {
			p.Complexity = strings.EqualFold(v, "TRUE")
		}
		if v := e.GetAttributeValue("msDS-PasswordReversibleEncryptionEnabled"); v != "" {
			p.ReversibleEncryption = strings.EqualFold(v, "TRUE")
		}
		if e.GetAttributeValue("msDS-PasswordHistoryLength") != "" {
			p.HistoryLength = perr.int(e, "msDS-PasswordHistoryLength")
		}
		if e.GetAttributeValue("msDS-MinimumPasswordAge") != "" {
			p.MinAge = perr.interval(e, "msDS-MinimumPasswordAge")
		}
		if e.GetAttributeValue("msDS-MaximumPasswordAge") != "" {
			p.MaxAge = perr.interval(e, "msDS-MaximumPasswordAge")
		}
		if e.GetAttributeValue("msDS-LockoutThreshold") != "" {
			p.LockoutThreshold = perr.int(e, "msDS-LockoutThreshold")
		}
		if e.GetAttributeValue("msDS-LockoutDuration") != "" {
			p.LockoutDuration = perr.interval(e, "msDS-LockoutDuration")
		}
		if e.GetAttributeValue("msDS-LockoutObservationWindow") != "" {
			p.LockoutWindow = perr.interval(e, "msDS-LockoutObservationWindow")
		}
		if perr.err != nil {
			return nil, &Error{Op: op, Kind: KindOther, Err: perr.err}
		}
		p.PSO = e.DN
		return &p, nil
	})
}

// InvalidatePolicies drops cached policies so the next read goes to the DC.
func (cl *Client) InvalidatePolicies() {
	cl.mu.Lock()
	clear(cl.policies)
	cl.mu.Unlock()
}

func (cl *Client) cachedRead(ctx context.Context, key string, read func() (*Policy, error)) (*Policy, error) {
	now := cl.cfg.Clock.Now()
	cl.mu.Lock()
	c, ok := cl.policies[key]
	cl.mu.Unlock()
	if ok && now.Sub(c.at) < cl.cfg.PolicyRefresh {
		p := c.p
		return &p, nil
	}
	p, err := read()
	if err != nil {
		return nil, err
	}
	p.ReadAt = now
	cl.mu.Lock()
	cl.policies[key] = cachedPolicy{p: *p, at: now}
	cl.mu.Unlock()
	return p, nil
}

func (cl *Client) readEntry(ctx context.Context, op, dn, filter string, attrs []string) (*ldap.Entry, error) {
	res, dc, err := cl.search(ctx, op, ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases,
		1, 0, false, filter, attrs, nil))
	if err != nil {
		return nil, err
	}
	if len(res.Entries) != 1 {
		return nil, &Error{Op: op, Kind: KindNoSuchObject, DC: dc, Err: fmt.Errorf("%s not readable", dn)}
	}
	return res.Entries[0], nil
}

// parseErrs collects the first attribute parse error.
type parseErrs struct{ err error }

func (p *parseErrs) int(e *ldap.Entry, attr string) int {
	s := e.GetAttributeValue(attr)
	if s == "" {
		return 0
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil && p.err == nil {
		p.err = fmt.Errorf("%s: %w", attr, err)
	}
	return int(v)
}

func (p *parseErrs) interval(e *ldap.Entry, attr string) time.Duration {
	d, err := Interval(e.GetAttributeValue(attr))
	if err != nil && p.err == nil {
		p.err = fmt.Errorf("%s: %w", attr, err)
	}
	return d
}
