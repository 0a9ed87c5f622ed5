//go:build integration

package ldapx_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/go-ldap/ldap/v3"

	shared "github.com/adwriteback/adwriteback/integration/stack"
	"github.com/adwriteback/adwriteback/integration/testdc"
	"github.com/adwriteback/adwriteback/ldapx"
)

func newClient(t *testing.T, info *testdc.Info, mutate ...func(*ldapx.Config)) *ldapx.Client {
	t.Helper()
	cfg := ldapx.Config{
		Servers:      []string{info.LDAPSURL},
		BindDN:       info.ServiceDN,
		BindPassword: info.ServicePass,
		CAFile:       info.CAFile,
		// Generous: CI runs the fault suites against the same machine at
		// the same time, and a loaded Samba can take seconds to bind.
		DialTimeout: 20 * time.Second,
	}
	for _, m := range mutate {
		m(&cfg)
	}
	cl, err := ldapx.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// userBind tries a simple bind as the user and returns the decoded error.
func userBind(t *testing.T, info *testdc.Info, dn, pw string) error {
	t.Helper()
	c, err := testdc.Bind(ctxT(t), info, dn, pw)
	if err == nil {
		c.Close()
		return nil
	}
	var le *ldap.Error
	if !errors.As(err, &le) {
		t.Fatalf("bind as %s: not an LDAP error: %v", dn, err)
	}
	return err
}

func TestRootDSE(t *testing.T) {
	info := testdc.Ensure(t)
	cl := newClient(t, info)
	r, err := cl.RootDSE(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if r.DefaultNamingContext != info.BaseDN {
		t.Errorf("naming context %q, want %q", r.DefaultNamingContext, info.BaseDN)
	}
	if !strings.EqualFold(r.DNSHostName, info.Host) {
		t.Errorf("dnsHostName %q, want %q", r.DNSHostName, info.Host)
	}
	if len(r.SupportedControls) == 0 {
		t.Error("no supportedControl read")
	}
	// Samba 4.17 advertises neither policy-hints control (active-directory.md).
	if got := r.PolicyHintsOID(); got != "" {
		t.Errorf("PolicyHintsOID %q: Samba is not expected to advertise it", got)
	}
	if r.DC != info.LDAPSURL {
		t.Errorf("DC %q", r.DC)
	}
}

const newPass = "Fresh!Start.2027"

func TestResetThenUserCanBind(t *testing.T) {
	info := testdc.Ensure(t)
	cl := newClient(t, info)
	u := testdc.NewUser(t, info, "")
	before, err := cl.ReadUser(ctxT(t), u.DN)
	if err != nil {
		t.Fatal(err)
	}
	if before.PwdVersion == 0 {
		t.Fatal("unicodePwd's replication version not read with the service account")
	}
	sent := time.Now().Truncate(time.Second)
	a, err := cl.Reset(ctxT(t), u.DN, newPass, ldapx.ResetOptions{})
	if err != nil {
		t.Fatalf("reset: %v", err)
	}
	after, err := cl.ReadUser(ctxT(t), u.DN)
	if err != nil || after.PwdVersion != before.PwdVersion+1 {
		t.Fatalf("unicodePwd version %d -> %+v (%v): one write must raise it by one", before.PwdVersion, after, err)
	}
	// The DC runs on this machine's clock: the write's recorded time is
	// between the send and now.
	if w := after.PwdWrittenAt; w.Before(sent) || w.After(time.Now()) || w.Before(before.PwdWrittenAt) {
		t.Fatalf("password written at %v (before: %v), want within [%v, now]", w, before.PwdWrittenAt, sent)
	}
	if a.DC != info.LDAPSURL {
		t.Errorf("applied at %q", a.DC)
	}
	if err := userBind(t, info, u.DN, newPass); err != nil {
		t.Fatalf("bind with the new password: %v", err)
	}
	if err := userBind(t, info, u.DN, testdc.UserPass); err == nil {
		t.Fatal("the old password still binds")
	}
}

func TestResetRefusedByPolicy(t *testing.T) {
	info := testdc.Ensure(t)
	cl := newClient(t, info)
	u := testdc.NewUser(t, info, "")
	for _, tc := range []struct{ name, pw, reason string }{
		{"too short", "Ab1!", "too short"},
		{"too simple", "alllowercaseletters", "complexity"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := cl.Reset(ctxT(t), u.DN, tc.pw, ldapx.ResetOptions{})
			if !errors.Is(err, ldapx.ErrPasswordRestriction) {
				t.Fatalf("got %v, want a password restriction", err)
			}
			var e *ldapx.Error
			errors.As(err, &e)
			if e.WinCode != ldapx.WinPasswordRestriction || e.ResultCode != ldap.LDAPResultConstraintViolation {
				t.Errorf("codes %d/%08X", e.ResultCode, e.WinCode)
			}
			if !strings.Contains(e.Reason, tc.reason) {
				t.Errorf("Samba's reason %q lacks %q", e.Reason, tc.reason)
			}
			if strings.Contains(err.Error(), tc.pw) {
				t.Fatal("the password appears in the error text")
			}
		})
	}
}

func TestResetMustChangeAndUnlockInOneCall(t *testing.T) {
	info := testdc.Ensure(t)
	cl := newClient(t, info)
	// The change PSO locks out after 3 bad passwords.
	u := testdc.NewUser(t, info, "", info.ChangeGroupDN)
	for range 3 {
		if err := userBind(t, info, u.DN, "Wrong!Password.1"); err == nil {
			t.Fatal("wrong password bound")
		}
	}
	if code := testdc.BindData(userBind(t, info, u.DN, testdc.UserPass)); code != "775" {
		t.Fatalf("after 3 bad passwords bind says data %q, want 775 (locked)", code)
	}
	before, err := cl.ReadUser(ctxT(t), u.DN)
	if err != nil {
		t.Fatal(err)
	}
	if before.LockoutTime.IsZero() {
		t.Fatal("lockoutTime not set on a locked account")
	}
	// A reset alone does not unlock.
	if _, err := cl.Reset(ctxT(t), u.DN, newPass, ldapx.ResetOptions{}); err != nil {
		t.Fatal(err)
	}
	if code := testdc.BindData(userBind(t, info, u.DN, newPass)); code != "775" {
		t.Fatalf("reset without unlock: bind data %q, want still locked", code)
	}
	const third = "Third!Pass.2028"
	mid, err := cl.ReadUser(ctxT(t), u.DN)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Reset(ctxT(t), u.DN, third, ldapx.ResetOptions{Unlock: true, MustChange: true}); err != nil {
		t.Fatal(err)
	}
	after, err := cl.ReadUser(ctxT(t), u.DN)
	if err != nil {
		t.Fatal(err)
	}
	// pwdLastSet went to 0, so only the version shows this write landed.
	if after.PwdVersion != mid.PwdVersion+1 {
		t.Fatalf("must-change reset: unicodePwd version %d -> %d", mid.PwdVersion, after.PwdVersion)
	}
	if !after.LockoutTime.IsZero() || !after.MustChange {
		t.Fatalf("after reset+unlock+must-change: lockout %v mustChange %v", after.LockoutTime, after.MustChange)
	}
	if code := testdc.BindData(userBind(t, info, u.DN, third)); code != "773" {
		t.Fatalf("bind data %q, want 773 (must change)", code)
	}
	if _, err := cl.SetMustChange(ctxT(t), u.DN, false); err != nil {
		t.Fatal(err)
	}
	if err := userBind(t, info, u.DN, third); err != nil {
		t.Fatalf("after clearing must-change: %v", err)
	}
}

func TestUnlock(t *testing.T) {
	info := testdc.Ensure(t)
	cl := newClient(t, info)
	u := testdc.NewUser(t, info, "", info.ChangeGroupDN)
	for range 3 {
		_ = userBind(t, info, u.DN, "Wrong!Password.1")
	}
	err := userBind(t, info, u.DN, testdc.UserPass)
	if code := testdc.BindData(err); code != "775" {
		t.Fatalf("bind data %q, want 775", code)
	}
	if _, err := cl.Unlock(ctxT(t), u.DN); err != nil {
		t.Fatal(err)
	}
	if err := userBind(t, info, u.DN, testdc.UserPass); err != nil {
		t.Fatalf("after unlock: %v", err)
	}
}

func TestChangeOutcomesAreDistinct(t *testing.T) {
	info := testdc.Ensure(t)
	cl := newClient(t, info)

	t.Run("wrong old password", func(t *testing.T) {
		u := testdc.NewUser(t, info, "", info.ChangeGroupDN)
		_, err := cl.Change(ctxT(t), u.DN, "Not!The.Old1", newPass)
		if !errors.Is(err, ldapx.ErrWrongPassword) {
			t.Fatalf("got %v, want wrong password", err)
		}
	})
	t.Run("history", func(t *testing.T) {
		u := testdc.NewUser(t, info, "", info.ChangeGroupDN) // PSO: min age 0, history 5
		if _, err := cl.Change(ctxT(t), u.DN, testdc.UserPass, newPass); err != nil {
			t.Fatalf("first change: %v", err)
		}
		if err := userBind(t, info, u.DN, newPass); err != nil {
			t.Fatalf("bind after change: %v", err)
		}
		_, err := cl.Change(ctxT(t), u.DN, newPass, testdc.UserPass)
		var e *ldapx.Error
		if !errors.As(err, &e) || e.Kind != ldapx.KindPasswordRestriction {
			t.Fatalf("got %v, want a password restriction", err)
		}
		if e.Restriction != ldapx.RestrictionUnknown {
			t.Errorf("restriction %v: min age is 0 for this user, so not min age", e.Restriction)
		}
		if !strings.Contains(e.Reason, "history") {
			t.Errorf("Samba's reason %q should name the history", e.Reason)
		}
	})
	t.Run("minimum age", func(t *testing.T) {
		u := testdc.NewUser(t, info, "") // domain policy: min age 1 day
		if _, err := cl.Change(ctxT(t), u.DN, testdc.UserPass, newPass); err == nil {
			t.Fatal("change right after creation accepted; domain min age is 1 day")
		} else {
			var e *ldapx.Error
			if !errors.As(err, &e) || e.Kind != ldapx.KindPasswordRestriction {
				t.Fatalf("got %v, want a password restriction", err)
			}
			if e.Restriction != ldapx.RestrictionMinAge {
				t.Errorf("restriction %v, want min age (predicted from pwdLastSet + minPwdAge)", e.Restriction)
			}
			if !strings.Contains(e.Reason, "too young") {
				t.Errorf("Samba's reason %q", e.Reason)
			}
		}
	})
}

func TestServiceAccountLeastPrivilege(t *testing.T) {
	info := testdc.Ensure(t)
	cl := newClient(t, info)
	for _, tc := range []struct{ name, dn string }{
		{"outside its OU", info.Users["outsider"].DN},
		{"protected account", info.ProtectedDN},
		{"domain administrator", info.AdminDN},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := cl.Reset(ctxT(t), tc.dn, newPass, ldapx.ResetOptions{})
			if !errors.Is(err, ldapx.ErrAccessDenied) {
				t.Fatalf("got %v, want access denied", err)
			}
			if _, err := cl.Unlock(ctxT(t), tc.dn); !errors.Is(err, ldapx.ErrAccessDenied) {
				t.Fatalf("unlock: got %v, want access denied", err)
			}
		})
	}
	// The protected account is visible with adminCount=1 so the connector
	// can refuse it before touching AD.
	u, err := cl.FindUser(ctxT(t), ldapx.UserRef{Kind: ldapx.RefSAM, Value: "protected"})
	if err != nil {
		t.Fatal(err)
	}
	if !u.Protected() {
		t.Error("adminCount=1 not read")
	}
}

func TestPSOReadAndEnforced(t *testing.T) {
	info := testdc.Ensure(t)
	cl := newClient(t, info)
	u := testdc.NewUser(t, info, "", info.StrictGroupDN)
	usr, err := cl.ReadUser(ctxT(t), u.DN)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.EqualFold(usr.ResultantPSO, info.StrictPSODN) {
		t.Fatalf("msDS-ResultantPSO %q, want %q", usr.ResultantPSO, info.StrictPSODN)
	}
	p, err := cl.EffectivePolicy(ctxT(t), usr)
	if err != nil {
		t.Fatal(err)
	}
	if p.MinLength != 16 || !p.Complexity || p.HistoryLength != 24 || p.MinAge != 0 {
		t.Fatalf("PSO policy %+v", p)
	}
	dom, err := cl.DomainPolicy(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if dom.MinLength != 7 || !dom.Complexity || dom.MinAge != 24*time.Hour || dom.PSO != "" {
		t.Fatalf("domain policy %+v", dom)
	}
	// 12 characters, complex: fine for the domain, short for the PSO.
	_, err = cl.Reset(ctxT(t), u.DN, "Twelve!Char1", ldapx.ResetOptions{})
	var e *ldapx.Error
	if !errors.As(err, &e) || e.Kind != ldapx.KindPasswordRestriction || !strings.Contains(e.Reason, "16") {
		t.Fatalf("got %v, want the PSO's 16-character minimum", err)
	}
	if _, err := cl.Reset(ctxT(t), u.DN, "Sixteen!Chars.ok", ldapx.ResetOptions{}); err != nil {
		t.Fatalf("16 characters refused: %v", err)
	}
}

func TestFindUser(t *testing.T) {
	info := testdc.Ensure(t)
	cl := newClient(t, info)
	alice := info.Users["alice"]
	byUPN, err := cl.FindUser(ctxT(t), ldapx.UserRef{Kind: ldapx.RefUPN, Value: alice.UPN})
	if err != nil {
		t.Fatal(err)
	}
	if byUPN.DN != alice.DN || byUPN.DisplayName != alice.DisplayName || byUPN.SAMAccountName != "alice" {
		t.Fatalf("by UPN: %+v", byUPN)
	}
	domainSID, rid, ok := ldapx.DomainRID(byUPN.SID)
	if !ok || rid < 1000 {
		t.Errorf("objectSid %q: not a domain account's SID", byUPN.SID)
	}
	if !byUPN.NormalAccount() {
		t.Errorf("userAccountControl %#x: not a normal account", byUPN.UserAccountControl)
	}
	if byUPN.PwdLastSet.IsZero() || time.Since(byUPN.PwdLastSet) > 24*time.Hour || byUPN.PwdLastSet.After(time.Now().Add(time.Minute)) {
		t.Errorf("pwdLastSet %v is not a recent time", byUPN.PwdLastSet)
	}
	for _, ref := range []ldapx.UserRef{
		{Kind: ldapx.RefSAM, Value: "ALICE"},
		{Kind: ldapx.RefObjectGUID, Value: byUPN.ObjectGUID},
		{Kind: ldapx.RefObjectGUID, Value: "{" + strings.ToUpper(byUPN.ObjectGUID) + "}"},
		{Kind: ldapx.RefConsistencyGUID, Value: testdc.ConsistencyGUIDAlice},
	} {
		u, err := cl.FindUser(ctxT(t), ref)
		if err != nil || u.DN != alice.DN {
			t.Errorf("%v %q: %v %+v", ref.Kind, ref.Value, err, u)
		}
	}
	for _, ref := range []ldapx.UserRef{
		{Kind: ldapx.RefSAM, Value: "nobody"},
		{Kind: ldapx.RefSAM, Value: "*"},                    // escaped, not a wildcard
		{Kind: ldapx.RefUPN, Value: "alice@adw.test)(cn=*"}, // escaped, no injection
		{Kind: ldapx.RefObjectGUID, Value: "00000000-0000-0000-0000-000000000001"},
	} {
		if _, err := cl.FindUser(ctxT(t), ref); !errors.Is(err, ldapx.ErrNotFound) {
			t.Errorf("%v %q: got %v, want not found", ref.Kind, ref.Value, err)
		}
	}
	if _, err := cl.FindUser(ctxT(t), ldapx.UserRef{Kind: ldapx.RefConsistencyGUID, Value: testdc.ConsistencyGUIDDup}); !errors.Is(err, ldapx.ErrAmbiguous) {
		t.Errorf("duplicate immutable id: got %v, want ambiguous", err)
	}
	if _, err := cl.FindUser(ctxT(t), ldapx.UserRef{Kind: ldapx.RefObjectGUID, Value: "not-a-guid"}); !errors.Is(err, ldapx.ErrInvalidInput) {
		t.Errorf("bad GUID: got %v, want invalid input", err)
	}
	strictSID, err := cl.GroupSID(ctxT(t), info.StrictGroupDN)
	if err != nil {
		t.Fatalf("GroupSID %s: %v", info.StrictGroupDN, err)
	}
	if _, err := cl.GroupSID(ctxT(t), "CN=No Such Group,OU=Groups,"+info.BaseDN); !errors.Is(err, ldapx.ErrNoSuchObject) {
		t.Errorf("GroupSID of a missing group: got %v, want no such object", err)
	}
	if _, err := cl.GroupSID(ctxT(t), alice.DN); !errors.Is(err, ldapx.ErrNoSuchObject) {
		t.Errorf("GroupSID of a user: got %v, want no such object", err)
	}
	for _, tc := range []struct {
		dn     string
		member bool
	}{{info.Users["strict"].DN, true}, {alice.DN, false}} {
		token, err := cl.TokenGroups(ctxT(t), tc.dn)
		if err != nil {
			t.Fatalf("TokenGroups %s: %v", tc.dn, err)
		}
		if !slices.Contains(token, domainSID+"-513") {
			t.Errorf("TokenGroups %s: %v lacks the primary group Domain Users", tc.dn, token)
		}
		if slices.Contains(token, strictSID) != tc.member {
			t.Errorf("TokenGroups %s: %v, want %s in it: %v", tc.dn, token, strictSID, tc.member)
		}
	}
}

func TestStartTLS(t *testing.T) {
	info := testdc.Ensure(t)
	cl := newClient(t, info, func(c *ldapx.Config) {
		c.Servers = []string{info.LDAPURL}
		c.ServerName = info.Addr
	})
	if err := cl.Ping(ctxT(t)); err != nil {
		t.Fatalf("StartTLS: %v", err)
	}
	u := testdc.NewUser(t, info, "")
	if _, err := cl.Reset(ctxT(t), u.DN, newPass, ldapx.ResetOptions{}); err != nil {
		t.Fatalf("reset over StartTLS: %v", err)
	}
}

func TestTrustAndCredentials(t *testing.T) {
	info := testdc.Ensure(t)
	t.Run("untrusted certificate", func(t *testing.T) {
		cl := newClient(t, info, func(c *ldapx.Config) { c.CAFile = "" }) // system pool: test CA unknown
		err := cl.Ping(ctxT(t))
		if !errors.Is(err, ldapx.ErrTLS) {
			t.Fatalf("got %v, want a TLS trust error", err)
		}
	})
	t.Run("wrong bind password", func(t *testing.T) {
		cl := newClient(t, info, func(c *ldapx.Config) { c.BindPassword = "Wrong!Service.Pass" })
		err := cl.Ping(ctxT(t))
		if !errors.Is(err, ldapx.ErrInvalidCredentials) {
			t.Fatalf("got %v, want invalid credentials", err)
		}
		if strings.Contains(err.Error(), "Wrong!Service.Pass") {
			t.Fatal("bind password in error text")
		}
	})
}

func TestFailover(t *testing.T) {
	info := testdc.Ensure(t)
	hang, dead := shared.HangingListener(t), shared.FreeAddr(t) // dead: nothing listens there
	cl := newClient(t, info, func(c *ldapx.Config) {
		c.Servers = []string{"ldaps://" + dead, "ldaps://" + hang, info.LDAPSURL}
		c.ServerName = info.Addr
		c.DialTimeout = 3 * time.Second // the hanging address costs this much
	})
	u := testdc.NewUser(t, info, "")
	a, err := cl.Reset(ctxT(t), u.DN, newPass, ldapx.ResetOptions{})
	if err != nil {
		t.Fatalf("reset with two dead DCs first: %v", err)
	}
	if a.DC != info.LDAPSURL {
		t.Fatalf("applied at %q, want the live DC", a.DC)
	}
	st := cl.Servers()
	if len(st) != 3 || st[0].State != ldapx.DCDown || st[1].State != ldapx.DCDown || st[2].State != ldapx.DCUp {
		t.Fatalf("server health %+v", st)
	}
	if st[0].RetryAt.IsZero() || st[0].LastError == "" {
		t.Errorf("dead DC not in backoff: %+v", st[0])
	}
	if err := userBind(t, info, u.DN, newPass); err != nil {
		t.Fatal(err)
	}
}

func TestAllDCsDownIsTransient(t *testing.T) {
	testdc.Ensure(t)
	cl, err := ldapx.New(ldapx.Config{Servers: []string{"ldaps://" + shared.FreeAddr(t)}, BindDN: "x", BindPassword: "y"})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.Ping(ctxT(t)); !ldapx.IsTransient(err) {
		t.Fatalf("got %v, want transient", err)
	}
}

// freezeProxy forwards TCP to target until frozen; once frozen it stops
// forwarding server bytes, so requests hang.
type freezeProxy struct {
	l      net.Listener
	mu     sync.Mutex
	frozen bool
	conns  []net.Conn
	sawReq chan struct{}
}

func newFreezeProxy(t *testing.T, target string) *freezeProxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &freezeProxy{l: l, sawReq: make(chan struct{}, 1)}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go p.pipe(s, c, false) // client -> server
			go p.pipe(c, s, true)  // server -> client
		}
	}()
	t.Cleanup(func() {
		l.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
	})
	return p
}

func (p *freezeProxy) pipe(dst, src net.Conn, fromServer bool) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			frozen := p.frozen
			p.mu.Unlock()
			if frozen {
				if !fromServer {
					select {
					case p.sawReq <- struct{}{}:
					default:
					}
				}
				continue // swallow: the other side waits forever
			}
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			dst.Close()
			return
		}
	}
}

func (p *freezeProxy) freeze() { p.mu.Lock(); p.frozen = true; p.mu.Unlock() }
func (p *freezeProxy) thaw()   { p.mu.Lock(); p.frozen = false; p.mu.Unlock() }

func TestCancelEndsHungOperation(t *testing.T) {
	info := testdc.Ensure(t)
	proxy := newFreezeProxy(t, info.Addr+":636")
	cl := newClient(t, info, func(c *ldapx.Config) {
		c.Servers = []string{"ldaps://" + proxy.l.Addr().String()}
		c.ServerName = info.Addr
		c.OpTimeout = time.Hour // only the context may end the call
		c.PoolSize = 1
	})
	if err := cl.Ping(ctxT(t)); err != nil { // a bound connection is now idle in the pool
		t.Fatal(err)
	}
	proxy.freeze()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-proxy.sawReq // the request reached the (now silent) DC
		cancel()
	}()
	_, err := cl.FindUser(ctx, ldapx.UserRef{Kind: ldapx.RefSAM, Value: "alice"})
	if !errors.Is(err, ldapx.ErrCanceled) || !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want canceled", err)
	}
	// The hung connection was closed and dropped: after the DC answers
	// again, the next call dials afresh and succeeds. (Reusing the old
	// connection, whose request was swallowed, would fail or hang.)
	proxy.thaw()
	if _, err := cl.FindUser(ctxT(t), ldapx.UserRef{Kind: ldapx.RefSAM, Value: "alice"}); err != nil {
		t.Fatalf("after cancel: %v", err)
	}
}

func TestPolicyCacheRefresh(t *testing.T) {
	info := testdc.Ensure(t)
	clock := clockwork.NewFakeClock()
	cl := newClient(t, info, func(c *ldapx.Config) { c.Clock = clock; c.PolicyRefresh = time.Minute })

	admin, err := testdc.Admin(ctxT(t), info)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	u := testdc.NewUser(t, info, "")
	group := "CN=grp-" + u.SAM + ",OU=Groups," + info.BaseDN
	pso := "CN=pso-" + u.SAM + ",CN=Password Settings Container,CN=System," + info.BaseDN
	g := ldap.NewAddRequest(group, nil)
	g.Attribute("objectClass", []string{"group"})
	g.Attribute("sAMAccountName", []string{"grp-" + u.SAM})
	if err := admin.Add(g); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Del(ldap.NewDelRequest(group, nil)) })
	if err := testdc.AddToGroup(admin, group, u.DN); err != nil {
		t.Fatal(err)
	}
	p := ldap.NewAddRequest(pso, nil)
	for attr, v := range map[string]string{
		"objectClass": "msDS-PasswordSettings", "msDS-PasswordSettingsPrecedence": "5",
		"msDS-PasswordReversibleEncryptionEnabled": "FALSE", "msDS-PasswordHistoryLength": "3",
		"msDS-PasswordComplexityEnabled": "FALSE", "msDS-MinimumPasswordLength": "9",
		"msDS-MinimumPasswordAge": "0", "msDS-MaximumPasswordAge": "-36288000000000",
		"msDS-LockoutThreshold": "0", "msDS-LockoutObservationWindow": "-18000000000",
		"msDS-LockoutDuration": "-18000000000", "msDS-PSOAppliesTo": group,
	} {
		p.Attribute(attr, []string{v})
	}
	if err := admin.Add(p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Del(ldap.NewDelRequest(pso, nil)) })

	read := func() *ldapx.Policy {
		t.Helper()
		usr, err := cl.ReadUser(ctxT(t), u.DN)
		if err != nil {
			t.Fatal(err)
		}
		pol, err := cl.EffectivePolicy(ctxT(t), usr)
		if err != nil {
			t.Fatal(err)
		}
		return pol
	}
	if pol := read(); pol.MinLength != 9 || pol.Complexity || pol.HistoryLength != 3 || !strings.EqualFold(pol.PSO, pso) {
		t.Fatalf("policy %+v", pol)
	}
	m := ldap.NewModifyRequest(pso, nil)
	m.Replace("msDS-MinimumPasswordLength", []string{"11"})
	if err := admin.Modify(m); err != nil {
		t.Fatal(err)
	}
	if pol := read(); pol.MinLength != 9 {
		t.Fatalf("min length %d inside the refresh interval, want the cached 9", pol.MinLength)
	}
	clock.Advance(2 * time.Minute)
	if pol := read(); pol.MinLength != 11 {
		t.Fatalf("min length %d after the refresh interval, want 11", pol.MinLength)
	}
}
