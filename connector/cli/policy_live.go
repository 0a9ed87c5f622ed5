package cli

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/adwriteback/adwriteback/connector/app"
	"github.com/adwriteback/adwriteback/connector/config"
	"github.com/adwriteback/adwriteback/connector/engine"
	"github.com/adwriteback/adwriteback/connector/policy"
	"github.com/adwriteback/adwriteback/relay/protocol"
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
	d, err := pickDomain(cfg, ref)
	if err != nil {
		return policy.Policy{}, policy.User{}, none, Usage("policy check: %v", err)
	}
	lref, err := engine.UserRef(ref)
	if err != nil {
		return policy.Policy{}, policy.User{}, none, Usage("policy check: --user: %v", err)
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
	dom := &engine.Domain{OrgMinLength: d.OrgPolicy.MinLength, Banned: banned,
		BannedMode: policy.BannedMode(d.OrgPolicy.BannedMode), TenantName: d.OrgPolicy.TenantName}
	if idx != nil {
		dom.Breached = idx
	}
	return engine.LocalPolicy(dom, eff), policy.User{SAMAccountName: u.SAMAccountName, DisplayName: u.DisplayName,
		FirstName: u.GivenName, LastName: u.Surname, PwdLastSet: u.PwdLastSet}, cleanup, nil
}

// pickDomain routes ref to a configured domain the way the engine routes
// a command.
func pickDomain(cfg *config.Config, ref protocol.UserRef) (*config.Domain, error) {
	names := make([]*engine.Domain, len(cfg.Domains))
	for i, d := range cfg.Domains {
		names[i] = &engine.Domain{Name: d.Name, UPNSuffixes: d.UPNSuffixes}
	}
	picked, err := engine.Route(names, ref)
	if err != nil {
		return nil, err
	}
	for i, n := range names {
		if n == picked {
			return cfg.Domains[i], nil
		}
	}
	return nil, fmt.Errorf("domain %q is not in the configuration", ref.Domain)
}
