package ldapx

import (
	"context"
	"time"
)

// KerberosProbe runs the Kerberos bind's KDC exchanges one at a time and
// with one KDC at a time, for a diagnosis (the doctor): the same
// exchanges, built from the same settings, failing with the same
// *KerberosError the bind would.
type KerberosProbe struct {
	c       krbClient
	timeout time.Duration
}

// KerberosTGT is a ticket-granting ticket a probe got from one KDC.
type KerberosTGT struct {
	// KDC answered, host:port.
	KDC string
	// KVNO and EType are the key version and encryption type of the
	// account's key the KDC encrypted its reply with.
	KVNO  int
	EType int32
	// KDCTime is the KDC's clock as it said it.
	KDCTime time.Time

	t *tgt
}

// NewKerberosProbe builds a probe from the bind's settings: c.Kerberos
// (principal, keytab, realm, KDCs, krb5.conf), c.Dialer and c.Clock (the
// pre-authentication's time). timeout bounds each exchange (0: only the
// caller's context). It loads the keytab: an error is a *KerberosError.
func NewKerberosProbe(c Config, timeout time.Duration) (*KerberosProbe, error) {
	c.setDefaults()
	b, err := newKerberosBinder(&c)
	if err != nil {
		return nil, &KerberosError{Reason: KerberosOther, Stage: "KDC", Err: err,
			Fix: "check bind.krb5_conf and bind.kdcs"}
	}
	if err := b.reloadKeytab(); err != nil {
		return nil, err
	}
	return &KerberosProbe{c: b.krbClient, timeout: timeout}, nil
}

// Login is the AS exchange with kdc (host[:port]): a TGT for the
// principal with the keytab's key. Its error is a *KerberosError, with
// the KDC's time when the KDC said it.
func (p *KerberosProbe) Login(ctx context.Context, kdc string) (*KerberosTGT, error) {
	c, err := p.with(kdc)
	if err != nil {
		return nil, err
	}
	ctx, cancel := p.bound(ctx)
	defer cancel()
	t, err := c.login(ctx)
	if err != nil {
		return nil, err
	}
	return &KerberosTGT{KDC: c.kdcs[0], KVNO: t.kvno, EType: t.etype, KDCTime: t.kdcTime, t: t}, nil
}

// ServiceTicket is the TGS exchange with the KDC that gave tgt: a ticket
// for spn (ldap/<DC host>). Its error is a *KerberosError.
func (p *KerberosProbe) ServiceTicket(ctx context.Context, tgt *KerberosTGT, spn string) error {
	c, err := p.with(tgt.KDC)
	if err != nil {
		return err
	}
	ctx, cancel := p.bound(ctx)
	defer cancel()
	_, _, err = c.serviceTicket(ctx, tgt.t, spn)
	return err
}

// with is the probe's client asking kdc alone.
func (p *KerberosProbe) with(kdc string) (krbClient, error) {
	a, err := kdcAddr(kdc)
	if err != nil {
		return krbClient{}, &KerberosError{Reason: KerberosKDCUnreachable, Stage: "KDC", Err: err,
			Fix: "check bind.kdcs: each is host[:port]"}
	}
	c := p.c
	c.kdcs = []string{a}
	return c, nil
}

func (p *KerberosProbe) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if p.timeout > 0 {
		return context.WithTimeout(ctx, p.timeout)
	}
	return context.WithCancel(ctx)
}
