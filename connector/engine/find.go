package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/adwriteback/adwriteback/ldapx"
	"github.com/adwriteback/adwriteback/relay/protocol"
)

// findUser is the stage that finds the command's account in its domain.
func (e *Engine) findUser(ctx context.Context, c *command) *outcome {
	ref, err := UserRef(c.rec.User)
	if err != nil {
		return stop(protocol.CodeInvalidCommand, err.Error())
	}
	u, err := c.dom.Dir.FindUser(ctx, ref)
	if err != nil {
		return dirFailure(err)
	}
	c.user = u
	return nil
}

// dirFailure maps a lookup or read failure. Its detail, the error with
// the DC and the DNs it names, is the audit record's (disclose.go).
func dirFailure(err error) *outcome {
	if retryable(err) {
		// TLS and bind failures need an admin, but the command is not at
		// fault: retry, and answer "transient" when attempts run out.
		return stop(protocol.CodeTransient, err.Error())
	}
	switch ldapx.KindOf(err) {
	case ldapx.KindNotFound, ldapx.KindNoSuchObject:
		return stop(protocol.CodeUserNotFound, err.Error())
	case ldapx.KindAmbiguous:
		return stop(protocol.CodeAmbiguousUser, err.Error())
	case ldapx.KindInvalidInput:
		return stop(protocol.CodeInvalidCommand, err.Error())
	case ldapx.KindAccessDenied:
		return stop(protocol.CodeAccessDenied, err.Error())
	}
	return stop(protocol.CodeInternal, err.Error())
}

// UserRef turns the wire protocol's user reference into the directory's.
func UserRef(r protocol.UserRef) (ldapx.UserRef, error) {
	switch {
	case r.ObjectGUID != "":
		return ldapx.UserRef{Kind: ldapx.RefObjectGUID, Value: r.ObjectGUID}, nil
	case r.ImmutableID != "":
		return ldapx.UserRef{Kind: ldapx.RefConsistencyGUID, Value: r.ImmutableID}, nil
	case r.UPN != "":
		return ldapx.UserRef{Kind: ldapx.RefUPN, Value: r.UPN}, nil
	case r.SAM != "":
		return ldapx.UserRef{Kind: ldapx.RefSAM, Value: r.SAM}, nil
	}
	return ldapx.UserRef{}, errors.New("no user reference")
}

// route picks the domain for a user reference.
func (e *Engine) route(ref protocol.UserRef) (*Domain, error) { return Route(e.cfg.Domains, ref) }

// Route picks, among domains, the one a user reference belongs to: the
// domain it names, else the one whose name or UPN suffixes match its UPN,
// else the only one. Only Name and UPNSuffixes are read.
func Route(domains []*Domain, ref protocol.UserRef) (*Domain, error) {
	want := strings.ToLower(ref.Domain)
	if want == "" && ref.UPN != "" {
		if i := strings.LastIndexByte(ref.UPN, '@'); i >= 0 {
			suffix := strings.ToLower(ref.UPN[i+1:])
			for _, d := range domains {
				if strings.EqualFold(d.Name, suffix) {
					return d, nil
				}
				for _, s := range d.UPNSuffixes {
					if strings.EqualFold(s, suffix) {
						return d, nil
					}
				}
			}
			if len(domains) > 1 {
				return nil, fmt.Errorf("no configured domain has the UPN suffix %q", suffix)
			}
		}
	}
	if want == "" {
		if len(domains) == 1 {
			return domains[0], nil
		}
		return nil, errors.New("several domains are configured and the command names none")
	}
	for _, d := range domains {
		if strings.EqualFold(d.Name, want) {
			return d, nil
		}
	}
	return nil, fmt.Errorf("domain %q is not served by this connector", ref.Domain)
}
