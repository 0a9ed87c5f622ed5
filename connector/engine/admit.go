package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/go-ldap/ldap/v3"

	"github.com/adwriteback/adwriteback/ldapx"
	"github.com/adwriteback/adwriteback/relay/protocol"
)

// admit is the stage that refuses, before anything is written, an account
// this connector must not touch, each check in turn:
//
//	outside the scope OUs                            out_of_scope
//	a built-in account (RID below 1000) or krbtgt    protected_account
//	not a normal user account (computer, DC, trust)  out_of_scope
//	in a tier-0 group (built-in or scope.tier0_groups)  protected_account
//	in an excluded group (scope.exclude_groups)      out_of_scope
//	adminCount=1, unless allow_protected             protected_account
//	disabled                                         account_disabled
//
// Group membership is the account's tokenGroups (one base read): every
// group it is in, nested or primary, matched by SID, so a group's members
// are refused whether or not SDProp has stamped adminCount on them. The
// configured groups are resolved to SIDs once (ResolveGroups); until they
// are, a command is transient. allow_protected lets through only a stale
// adminCount=1, never a member of a tier-0 group.
func (e *Engine) admit(ctx context.Context, c *command) *outcome {
	u, dom := c.user, c.dom
	if !inScope(u.DN, dom.ScopeOUs) {
		return stop(protocol.CodeOutOfScope, "the account is outside the configured OUs")
	}
	if o := admitAccount(u); o != nil {
		return o
	}
	if o := e.admitGroups(ctx, c); o != nil {
		return o
	}
	if u.Protected() && !dom.AllowProtected {
		return stop(protocol.CodeProtectedAccount, "adminCount=1: protected accounts are never written")
	}
	if u.Disabled() {
		return stop(protocol.CodeAccountDisabled, "userAccountControl has ACCOUNTDISABLE")
	}
	return nil
}

// admitAccount refuses what the account itself says it is: a built-in
// account (RID below 1000: Administrator, krbtgt, Guest), a krbtgt
// account (also an RODC's krbtgt_NNNNN) or anything but a normal user
// account. An objectSid the service account cannot read is refused too:
// nothing can be decided without it.
func admitAccount(u *ldapx.User) *outcome {
	if u.SID == "" {
		return stop(protocol.CodeAccessDenied, "cannot read the account's objectSid")
	}
	_, rid, ok := ldapx.DomainRID(u.SID)
	if !ok || rid < 1000 {
		return stop(protocol.CodeProtectedAccount, "a built-in account is never written")
	}
	if sam := strings.ToLower(u.SAMAccountName); sam == "krbtgt" || strings.HasPrefix(sam, "krbtgt_") {
		return stop(protocol.CodeProtectedAccount, "a krbtgt account is never written")
	}
	if !u.NormalAccount() {
		return stop(protocol.CodeOutOfScope, "not a normal user account")
	}
	return nil
}

// admitGroups reads the account's groups and refuses a member of a
// tier-0 or an excluded group.
func (e *Engine) admitGroups(ctx context.Context, c *command) *outcome {
	dom := c.dom
	sets, err := dom.groups.get(ctx, dom, e.cfg.Logger)
	if err != nil {
		level := slog.LevelWarn
		if errors.Is(err, ErrScopeGroup) {
			level = slog.LevelError
		}
		e.cfg.Logger.Log(ctx, level, "scope groups not resolved: commands in this domain wait", "domain", dom.Name, "err", err)
		return stop(protocol.CodeTransient, "the configured scope groups are not resolved yet")
	}
	token, err := dom.Dir.TokenGroups(ctx, c.user.DN)
	if err != nil {
		return dirFailure(err)
	}
	if len(token) == 0 {
		// Every account is in its primary group: nothing means unreadable.
		return stop(protocol.CodeAccessDenied, "cannot read the account's group memberships (tokenGroups)")
	}
	for _, sid := range token {
		_, builtin := tier0Group(sid)
		if _, configured := sets.tier0[sid]; builtin || configured {
			return stop(protocol.CodeProtectedAccount, "member of a tier-0 group")
		}
	}
	for _, sid := range token {
		if _, ok := sets.exclude[sid]; ok {
			return stop(protocol.CodeOutOfScope, "the account is in an excluded group")
		}
	}
	return nil
}

// The built-in tier-0 groups: those whose members control the domain or
// its DCs. Members are refused by SID, in every domain of the forest (the
// domain-relative ones by RID, so the forest root's Enterprise and Schema
// Admins count in a child domain too).
var (
	tier0Builtin = map[string]string{
		"S-1-5-32-544": "Administrators",
		"S-1-5-32-548": "Account Operators",
		"S-1-5-32-549": "Server Operators",
		"S-1-5-32-550": "Print Operators",
		"S-1-5-32-551": "Backup Operators",
		"S-1-5-32-552": "Replicator",
	}
	tier0RIDs = map[uint32]string{
		498: "Enterprise Read-only Domain Controllers",
		512: "Domain Admins",
		516: "Domain Controllers",
		517: "Cert Publishers",
		518: "Schema Admins",
		519: "Enterprise Admins",
		520: "Group Policy Creator Owners",
		521: "Read-only Domain Controllers",
		526: "Key Admins",
		527: "Enterprise Key Admins",
	}
)

// tier0Group reports whether sid is a built-in tier-0 group, and its name.
func tier0Group(sid string) (string, bool) {
	if name, ok := tier0Builtin[sid]; ok {
		return name, true
	}
	if _, rid, ok := ldapx.DomainRID(sid); ok {
		name, ok := tier0RIDs[rid]
		return name, ok
	}
	return "", false
}

// ErrScopeGroup is wrapped by a GroupError that retrying will not cure:
// the configured DN names no group the service account can read.
var ErrScopeGroup = errors.New("a configured scope group does not resolve")

// GroupError is a configured group (scope.exclude_groups or
// scope.tier0_groups) that could not be resolved to its SID.
type GroupError struct {
	Domain string
	Key    string // "exclude_groups" or "tier0_groups"
	DN     string
	Err    error
}

func (e *GroupError) Error() string {
	return fmt.Sprintf("domain %s: scope.%s %q: %v", e.Domain, e.Key, e.DN, e.Err)
}

func (e *GroupError) Unwrap() error { return e.Err }

// ResolveGroups resolves every domain's configured groups to their SIDs,
// once. An error wrapping ErrScopeGroup is a group that does not exist (a
// configuration error: the connector should not start); any other error
// is a DC that could not be asked, and the domain's groups are resolved
// again before its next command, which waits (transient) until they are.
func (e *Engine) ResolveGroups(ctx context.Context) error {
	var errs []error
	for _, d := range e.cfg.Domains {
		if _, err := d.groups.get(ctx, d, e.cfg.Logger); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// groupSIDs are a domain's configured groups, resolved to SIDs (each SID
// mapped to the DN it came from) on first use.
type groupSIDs struct {
	mu       sync.Mutex
	resolved bool
	exclude  map[string]string
	tier0    map[string]string
}

// get returns the resolved groups, resolving them first if needed (and
// logging each group with its SID).
func (g *groupSIDs) get(ctx context.Context, d *Domain, log *slog.Logger) (*groupSIDs, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.resolved {
		return g, nil
	}
	exclude, err := resolveGroups(ctx, d, "exclude_groups", d.ExcludeGroups)
	if err != nil {
		return nil, err
	}
	tier0, err := resolveGroups(ctx, d, "tier0_groups", d.Tier0Groups)
	if err != nil {
		return nil, err
	}
	g.exclude, g.tier0, g.resolved = exclude, tier0, true
	for what, m := range map[string]map[string]string{"excluded": exclude, "tier-0": tier0} {
		for sid, dn := range m {
			log.Info("scope group resolved", "domain", d.Name, "kind", what, "group", dn, "sid", sid)
		}
	}
	return g, nil
}

// resolveGroups reads the SID of each group DN under the key. It stops at
// the first failure: a DC that does not answer will not for the next.
func resolveGroups(ctx context.Context, d *Domain, key string, dns []string) (map[string]string, error) {
	out := make(map[string]string, len(dns))
	for _, dn := range dns {
		sid, err := d.Dir.GroupSID(ctx, dn)
		if err != nil {
			if !retryable(err) {
				err = fmt.Errorf("%w: %w", ErrScopeGroup, err)
			}
			return nil, &GroupError{Domain: d.Name, Key: key, DN: dn, Err: err}
		}
		out[sid] = dn
	}
	return out, nil
}

// retryable reports whether a directory failure may go away by itself
// (no DC, a timeout, the service account's bind or TLS, shutdown).
func retryable(err error) bool {
	switch ldapx.KindOf(err) {
	case ldapx.KindTransient, ldapx.KindCanceled, ldapx.KindTLS, ldapx.KindInvalidCredentials:
		return true
	}
	return false
}

// inScope reports whether dn is at or below one of the OUs, comparing
// the parsed DNs RDN by RDN (attribute types and values without regard
// to case, as AD compares them), so an escaped comma in a value never
// passes for a separator. A DN or OU that does not parse is not in
// scope.
func inScope(dn string, ous []string) bool {
	if len(ous) == 0 {
		return true
	}
	d, err := ldap.ParseDN(dn)
	if err != nil || len(d.RDNs) == 0 {
		return false
	}
	for _, ou := range ous {
		o, err := ldap.ParseDN(ou)
		if err != nil || len(o.RDNs) == 0 {
			continue
		}
		if o.EqualFold(d) || o.AncestorOfFold(d) {
			return true
		}
	}
	return false
}
