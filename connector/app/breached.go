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
	cfg := d.LDAP()
	cfg.Logger, cfg.Clock = log.With("domain", d.Name), clock
	cl, err := ldapx.New(cfg)
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
		mode, err := policy.ParseBannedMode(d.OrgPolicy.BannedMode)
		if err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("domain %s banned words: %w", d.Name, err)
		}
		banned, err = policy.ReadBannedListMode(f, mode)
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
