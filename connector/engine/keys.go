package engine

import (
	"errors"
	"fmt"

	"github.com/adwriteback/adwriteback/connector/policy"
	"github.com/adwriteback/adwriteback/relay/protocol"
)

// Keys are the key sets a command is handled with: the trusted senders'
// verify keys, the connector's open keys and the key results are signed
// with. SetKeys replaces them while the engine runs; a command keeps the
// set it was received with until it is answered.
type Keys struct {
	Senders protocol.VerifyKeys
	Open    protocol.OpenKeys
	Signer  protocol.SigningKey
}

// check lists what is missing from k.
func (k *Keys) check() error {
	var errs []error
	if len(k.Senders) == 0 {
		errs = append(errs, errors.New("engine: no sender key"))
	}
	if len(k.Open) == 0 {
		errs = append(errs, errors.New("engine: no connector key"))
	}
	if k.Signer.Key == nil {
		errs = append(errs, errors.New("engine: no result signing key"))
	}
	return errors.Join(errs...)
}

// SetKeys replaces the key sets for the commands received from now on;
// commands in flight finish with the set they started with. Incomplete
// sets are refused and the current ones stay.
func (e *Engine) SetKeys(k Keys) error {
	if err := k.check(); err != nil {
		return err
	}
	e.keys.Store(&k)
	return nil
}

// CurrentKeys returns the key sets in force.
func (e *Engine) CurrentKeys() Keys { return *e.keys.Load() }

// receiver is the protocol receiver with the key set k.
func (e *Engine) receiver(k *Keys) *protocol.Receiver {
	r := e.recv
	r.Senders, r.Keys = k.Senders, k.Open
	return &r
}

// OrgLists are a domain's organisation lists: its banned words and its
// breached-password index (nil: none). SetOrgLists replaces them while
// the engine runs.
type OrgLists struct {
	Banned   *policy.BannedList
	Breached policy.BreachChecker
}

// SetOrgLists replaces the organisation lists of the named domain for
// the checks made from now on. The caller keeps an old breached index
// open: a check in flight may still read it.
func (e *Engine) SetOrgLists(domain string, l OrgLists) error {
	for _, d := range e.cfg.Domains {
		if d.Name == domain {
			d.lists.Store(&l)
			return nil
		}
	}
	return fmt.Errorf("engine: no domain %q", domain)
}

// orgLists are the domain's lists in force: those SetOrgLists stored,
// else the Banned and Breached it was built with.
func (d *Domain) orgLists() OrgLists {
	if l := d.lists.Load(); l != nil {
		return *l
	}
	return OrgLists{Banned: d.Banned, Breached: d.Breached}
}
