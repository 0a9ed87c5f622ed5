package ldapx

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
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
		if err := cl.rediscoverLocked(ctx); err != nil && len(cl.static) == 0 && len(cl.discovered) == 0 {
			return nil, &Error{Op: "ldapx.discover", Kind: KindTransient, Err: err}
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

// rediscoverLocked asks DNS again and replaces the discovered DCs, keeping
// the record (and health) of those still advertised. cl.mu is held.
func (cl *Client) rediscoverLocked(ctx context.Context) error {
	found, err := Discover(ctx, cl.cfg.Resolver, cl.cfg.Domain, cl.cfg.DiscoverAllow)
	if len(found.Dropped) > 0 {
		cl.cfg.Logger.Warn("DC discovery: SRV targets outside the domain and not allowed were dropped",
			"domain", cl.cfg.Domain, "dropped", found.Dropped)
	}
	if err != nil {
		cl.cfg.Logger.Warn("DC discovery failed", "domain", cl.cfg.Domain, "err", err)
		return err
	}
	cl.discAt = cl.cfg.Clock.Now()
	known := map[string]*server{}
	for _, s := range cl.discovered {
		known[s.url.raw] = s
	}
	cl.discovered = cl.discovered[:0]
	for _, u := range found.URLs {
		if s, ok := known[u]; ok {
			cl.discovered = append(cl.discovered, s)
			continue
		}
		if su, err := parseServer(u); err == nil {
			s := cl.newServer(su)
			s.discovered = true
			cl.discovered = append(cl.discovered, s)
		}
	}
	return nil
}

// Discovery is what DNS advertised for a domain: the DCs that may be used,
// as ldaps:// URLs in the order to try them, and the targets dropped
// because they are neither the domain nor under it nor allowed.
type Discovery struct {
	URLs    []string
	Dropped []string
}

// Discover returns ldaps:// URLs for the DCs that DNS advertises under
// _ldap._tcp.dc._msdcs.<domain>, ordered by priority then weight (highest
// first within a priority). Only targets that are the domain or under it,
// or an allow entry or under one, are returned; the others are listed in
// Dropped. It is an error when no target is left.
func Discover(ctx context.Context, r SRVResolver, domain string, allow []string) (Discovery, error) {
	_, srvs, err := r.LookupSRV(ctx, "ldap", "tcp", "dc._msdcs."+domain)
	if err != nil {
		return Discovery{}, fmt.Errorf("SRV _ldap._tcp.dc._msdcs.%s: %w", domain, err)
	}
	sort.SliceStable(srvs, func(i, j int) bool {
		if srvs[i].Priority != srvs[j].Priority {
			return srvs[i].Priority < srvs[j].Priority
		}
		return srvs[i].Weight > srvs[j].Weight
	})
	var d Discovery
	for _, s := range srvs {
		host := strings.TrimSuffix(s.Target, ".")
		switch {
		case host == "":
		case !TargetAllowed(host, domain, allow):
			d.Dropped = append(d.Dropped, host)
		default:
			d.URLs = append(d.URLs, "ldaps://"+net.JoinHostPort(host, "636"))
		}
	}
	if len(d.URLs) == 0 {
		if len(d.Dropped) > 0 {
			return d, fmt.Errorf("SRV _ldap._tcp.dc._msdcs.%s: no target under %s or allowed (dropped %s)",
				domain, domain, strings.Join(d.Dropped, ", "))
		}
		return d, fmt.Errorf("SRV _ldap._tcp.dc._msdcs.%s: no targets", domain)
	}
	return d, nil
}

// TargetAllowed reports whether a DC that DNS names may be used: host is
// the domain or under it, or an allow entry or under one, compared label
// by label without case and ignoring a trailing dot ("dc1.evil-adw.test"
// is not under "adw.test"). An IP address never is.
func TargetAllowed(host, domain string, allow []string) bool {
	if !IsDNSName(host) {
		return false
	}
	for _, zone := range append([]string{domain}, allow...) {
		if underZone(host, zone) {
			return true
		}
	}
	return false
}

// underZone: host equals zone or ends in "."+zone, both as DNS names.
func underZone(host, zone string) bool {
	h, z := canonicalName(host), canonicalName(zone)
	if h == "" || z == "" {
		return false
	}
	return h == z || strings.HasSuffix(h, "."+z)
}

func canonicalName(s string) string { return strings.ToLower(strings.TrimSuffix(s, ".")) }

// IsDNSName accepts a host name (letters, digits, '-' and '_' in
// non-empty labels, an optional trailing dot) and refuses IP addresses.
func IsDNSName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 || net.ParseIP(s) != nil {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}

// DomainDN is the naming context of a domain's DNS name:
// "corp.example.com" is "DC=corp,DC=example,DC=com".
func DomainDN(domain string) string {
	labels := strings.Split(canonicalName(domain), ".")
	for i, l := range labels {
		labels[i] = "DC=" + ldap.EscapeDN(l)
	}
	return strings.Join(labels, ",")
}

// errNotTheDC: a discovered DC's rootDSE does not say it is the DC that
// DNS named, of this domain.
var errNotTheDC = errors.New("not the domain controller DNS named")

// checkIdentity reads the rootDSE over a new, verified connection, before
// the bind: the DC must name itself as the host dialled (dnsHostName) and
// hold the domain's naming context (defaultNamingContext). The certificate
// already proved the name; this proves the holder is that domain's DC and
// not another host the same CA certified (a web server, a relay).
func (cl *Client) checkIdentity(l *ldap.Conn, s *server) error {
	res, err := l.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 0, false,
		"(objectClass=*)", []string{"dnsHostName", "defaultNamingContext"}, nil))
	if err != nil {
		return err
	}
	if len(res.Entries) != 1 {
		return &Error{Op: "ldapx.dial", Kind: KindTLS, DC: s.url.raw, Err: fmt.Errorf("%w: no rootDSE", errNotTheDC)}
	}
	host := res.Entries[0].GetAttributeValue("dnsHostName")
	nc := res.Entries[0].GetAttributeValue("defaultNamingContext")
	if canonicalName(host) != canonicalName(s.url.host) || !sameDN(nc, DomainDN(cl.cfg.Domain)) {
		return &Error{Op: "ldapx.dial", Kind: KindTLS, DC: s.url.raw,
			Err: fmt.Errorf("%w: its rootDSE says dnsHostName %q and defaultNamingContext %q, want %q and %q",
				errNotTheDC, host, nc, canonicalName(s.url.host), DomainDN(cl.cfg.Domain))}
	}
	return nil
}

// sameDN compares two DNs as DNs (case and spacing aside).
func sameDN(a, b string) bool {
	da, err := ldap.ParseDN(a)
	if err != nil {
		return false
	}
	db, err := ldap.ParseDN(b)
	if err != nil {
		return false
	}
	return da.EqualFold(db)
}
