package app

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/jonboulle/clockwork"

	"github.com/adwriteback/adwriteback/connector/config"
	"github.com/adwriteback/adwriteback/connector/policy"
	"github.com/adwriteback/adwriteback/connector/policy/breach"
	"github.com/adwriteback/adwriteback/ldapx"
)

// NewDirectory builds the LDAP client of one configured domain (it does not
// dial), on the real clock.
func NewDirectory(d *config.Domain, log *slog.Logger) (*ldapx.Client, error) {
	return newDirectory(d, log, nil)
}

// newDirectory is NewDirectory on the app's clock (nil: the real one): the
// pool's timers and the Kerberos pre-authentication time read it.
func newDirectory(d *config.Domain, log *slog.Logger, clock clockwork.Clock) (*ldapx.Client, error) {
	cl, err := ldapx.New(ldapx.Config{
		Servers: d.Servers, Domain: d.Name, Discover: d.Discover, DiscoverAllow: d.DiscoverAllow,
		BindMethod: ldapx.BindMethod(d.Bind.Method), BindDN: d.Bind.DN, BindPassword: d.Bind.Password,
		Kerberos: ldapx.Kerberos{Principal: d.Bind.Principal, KeytabFile: d.Bind.KeytabFile,
			Realm: d.Bind.Realm, KDCs: d.Bind.KDCs, Krb5Conf: d.Bind.Krb5Conf},
		CAFile: d.TLS.CAFile, ServerName: d.TLS.ServerName, InsecureSkipVerify: d.TLS.InsecureSkipVerify,
		BaseDN: d.BaseDN, PoolSize: d.PoolSize, DialTimeout: d.DialTimeout, OpTimeout: d.OpTimeout,
		PolicyRefresh: d.PolicyRefresh, ProbeInterval: d.DCProbeInterval, Logger: log.With("domain", d.Name),
		Clock: clock,
	})
	if err != nil {
		return nil, fmt.Errorf("domain %s: %w", d.Name, err)
	}
	return cl, nil
}

// OrgExtras loads a domain's organisation rules: the banned-word list and
// the breached-password index (close the returned index when done; nil
// when none).
func OrgExtras(d *config.Domain) (*policy.BannedList, *breach.Index, error) {
	var banned *policy.BannedList
	if d.OrgPolicy.BannedWordsFile != "" {
		f, err := os.Open(d.OrgPolicy.BannedWordsFile)
		if err != nil {
			return nil, nil, fmt.Errorf("domain %s banned words: %w", d.Name, err)
		}
		banned, err = policy.ReadBannedList(f)
		f.Close()
		if err != nil {
			return nil, nil, fmt.Errorf("domain %s banned words: %w", d.Name, err)
		}
	}
	var idx *breach.Index
	if d.OrgPolicy.BreachedIndex != "" {
		var err error
		if idx, err = breach.Open(d.OrgPolicy.BreachedIndex); err != nil {
			return nil, nil, fmt.Errorf("domain %s breached index: %w", d.Name, err)
		}
	}
	return banned, idx, nil
}
