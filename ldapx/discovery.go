package ldapx

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strings"
	"time"
)

// SRVResolver looks up DNS SRV records (net.Resolver satisfies it).
type SRVResolver interface {
	LookupSRV(ctx context.Context, service, proto, name string) (string, []*net.SRV, error)
}

const discoveryTTL = 5 * time.Minute

// servers returns the DCs to try, in order: the configured ones, then those
// discovered from DNS (refreshed every few minutes; a failed lookup keeps
// the previous answer).
func (cl *Client) servers(ctx context.Context) ([]*server, error) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.cfg.Discover && cl.cfg.Domain != "" && cl.cfg.Clock.Now().Sub(cl.discAt) > discoveryTTL {
		found, err := Discover(ctx, cl.cfg.Resolver, cl.cfg.Domain)
		if err != nil {
			cl.cfg.Logger.Warn("DC discovery failed", "domain", cl.cfg.Domain, "err", err)
			if len(cl.static) == 0 && len(cl.discovered) == 0 {
				return nil, &Error{Op: "ldapx.discover", Kind: KindTransient, Err: err}
			}
		} else {
			cl.discAt = cl.cfg.Clock.Now()
			known := map[string]*server{}
			for _, s := range cl.discovered {
				known[s.url.raw] = s
			}
			cl.discovered = cl.discovered[:0]
			for _, u := range found {
				if s, ok := known[u]; ok {
					cl.discovered = append(cl.discovered, s)
					continue
				}
				su, err := parseServer(u)
				if err == nil {
					cl.discovered = append(cl.discovered, cl.newServer(su))
				}
			}
		}
	}
	out := make([]*server, 0, len(cl.static)+len(cl.discovered))
	out = append(out, cl.static...)
	seen := map[string]bool{}
	for _, s := range cl.static {
		seen[s.url.addr] = true
	}
	for _, s := range cl.discovered {
		if !seen[s.url.addr] {
			out = append(out, s)
		}
	}
	return out, nil
}

// Discover returns ldaps:// URLs for the DCs that DNS advertises under
// _ldap._tcp.dc._msdcs.<domain>, ordered by priority then weight (highest
// first within a priority).
func Discover(ctx context.Context, r SRVResolver, domain string) ([]string, error) {
	_, srvs, err := r.LookupSRV(ctx, "ldap", "tcp", "dc._msdcs."+domain)
	if err != nil {
		return nil, fmt.Errorf("SRV _ldap._tcp.dc._msdcs.%s: %w", domain, err)
	}
	sort.SliceStable(srvs, func(i, j int) bool {
		if srvs[i].Priority != srvs[j].Priority {
			return srvs[i].Priority < srvs[j].Priority
		}
		return srvs[i].Weight > srvs[j].Weight
	})
	var out []string
	for _, s := range srvs {
		host := strings.TrimSuffix(s.Target, ".")
		if host == "" {
			continue
		}
		out = append(out, "ldaps://"+net.JoinHostPort(host, "636"))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("SRV _ldap._tcp.dc._msdcs.%s: no targets", domain)
	}
	return out, nil
}
