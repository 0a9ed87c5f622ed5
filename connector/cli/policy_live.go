package cli

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/adwriteback/adwriteback/connector/app"
	"github.com/adwriteback/adwriteback/connector/config"
	"github.com/adwriteback/adwriteback/connector/engine"
	"github.com/adwriteback/adwriteback/connector/policy"
	"github.com/adwriteback/adwriteback/ldapx"
	"github.com/adwriteback/adwriteback/relay/sender"
)

// livePolicy reads the effective policy of a user from AD, as the connector
// would for a command: the domain is chosen by --domain, the UPN suffix, or
// the only configured one; the organisation rules come from the config. It
// returns the policy, the user, and a cleanup.
func livePolicy(ctx context.Context, env *Env, cfgPath, userArg, domainArg string) (policy.Policy, policy.User, func(), error) {
	none := func() {}
	cfg, err := config.Load(cfgPath, env.Getenv)
	if err != nil {
		return policy.Policy{}, policy.User{}, none, &ExitError{Code: 2, Err: err}
	}
	ref, err := sender.ParseUser(userArg, domainArg)
	if err != nil {
		return policy.Policy{}, policy.User{}, none, Usage("policy check: --user: %v", err)
	}
	d, err := pickDomain(cfg, ref.Domain, ref.UPN)
	if err != nil {
		return policy.Policy{}, policy.User{}, none, Usage("policy check: %v", err)
	}
	log := env.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cl, err := app.NewDirectory(d, log)
	if err != nil {
		return policy.Policy{}, policy.User{}, none, err
	}
	banned, idx, err := app.OrgExtras(d)
	if err != nil {
		cl.Close()
		return policy.Policy{}, policy.User{}, none, err
	}
	cleanup := func() {
		cl.Close()
		if idx != nil {
			idx.Close()
		}
	}
	kind, value := ref.Kind()
	lref := ldapx.UserRef{Value: value}
	switch kind {
	case "objectGUID":
		lref.Kind = ldapx.RefObjectGUID
	case "immutableId":
		lref.Kind = ldapx.RefConsistencyGUID
	case "upn":
		lref.Kind = ldapx.RefUPN
	default:
		lref.Kind = ldapx.RefSAM
	}
	u, err := cl.FindUser(ctx, lref)
	if err != nil {
		cleanup()
		return policy.Policy{}, policy.User{}, none, fmt.Errorf("policy check: %w", err)
	}
	eff, err := cl.EffectivePolicy(ctx, u)
	if err != nil {
		cleanup()
		return policy.Policy{}, policy.User{}, none, fmt.Errorf("policy check: %w", err)
	}
	src := "the domain policy"
	if eff.PSO != "" {
		src = eff.PSO
	}
	fmt.Fprintf(env.Stderr, "policy of %s (%s) from %s: min length %d, complexity %v\n", u.SAMAccountName, u.DN, src, eff.MinLength, eff.Complexity)
	dom := &engine.Domain{OrgMinLength: d.OrgPolicy.MinLength, Banned: banned}
	if idx != nil {
		dom.Breached = idx
	}
	return engine.LocalPolicy(dom, eff), policy.User{SAMAccountName: u.SAMAccountName, DisplayName: u.DisplayName, PwdLastSet: u.PwdLastSet}, cleanup, nil
}

func pickDomain(cfg *config.Config, domain, upn string) (*config.Domain, error) {
	want := strings.ToLower(domain)
	if want == "" && upn != "" {
		if i := strings.LastIndexByte(upn, '@'); i >= 0 {
			suffix := strings.ToLower(upn[i+1:])
			for _, d := range cfg.Domains {
				if strings.EqualFold(d.Name, suffix) {
					return d, nil
				}
				for _, s := range d.UPNSuffixes {
					if strings.EqualFold(s, suffix) {
						return d, nil
					}
				}
			}
		}
	}
	if want == "" {
		if len(cfg.Domains) == 1 {
			return cfg.Domains[0], nil
		}
		return nil, fmt.Errorf("several domains are configured: name one with --domain")
	}
	for _, d := range cfg.Domains {
		if strings.EqualFold(d.Name, want) {
			return d, nil
		}
	}
	return nil, fmt.Errorf("domain %q is not in the configuration", domain)
}
