//go:build integration

// Package trust holds the integration tests of issue 14's trust
// boundaries (TestTrust...): each tries, through the real stack (the
// sender SDK, the emulator's queue, the connector and the Samba DC), to
// make the connector write where it must not, and checks that it
// refuses and that nothing changed in AD.
package trust

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/adwriteback/adwriteback/integration/stack"
	"github.com/adwriteback/adwriteback/integration/testca"
	"github.com/adwriteback/adwriteback/integration/testdc"
	"github.com/adwriteback/adwriteback/relay/protocol"
	"github.com/adwriteback/adwriteback/relay/sender"
)

// TestTrustScopeEscapedComma: an account directly under the domain root
// whose CN is "evil,OU=Managed" has the DN
// CN=evil\,OU=Managed,DC=adw,DC=test, which ends in the scope OU's DN as
// a string; it is not inside the OU, so a reset of it is out_of_scope
// and its password is not written. (Samba answers this DN with '=' as
// \3D, CN=evil\,OU\3DManaged,..., which a string suffix already missed;
// the unit test TestInScope in connector/engine has the form AD and
// RFC 4514 also allow, with '=' unescaped.)
func TestTrustScopeEscapedComma(t *testing.T) {
	s := stack.New(t)
	var rnd [3]byte
	_, _ = rand.Read(rnd[:])
	// The in-scope OU's own RDN, after an escaped comma in the CN.
	cn := "evil" + hex.EncodeToString(rnd[:]) + ",OU=Managed"
	u := testdc.NewUserCN(t, s.DC, cn, s.DC.BaseDN)
	t.Logf("created %s", u.DN)
	before := testdc.PwdVersion(t, s.DC, u.DN)
	lastSet := string(testdc.ReadAttr(t, s.DC, u.DN, "pwdLastSet"))
	s.Start("a")

	pw := "Trust!Scope.Comma1"
	res := s.Sender().Do(sender.Request{Op: protocol.OpReset, User: protocol.UserRef{SAM: u.SAM},
		NewPassword: s.Secret(pw)})
	if res.Code != protocol.CodeOutOfScope {
		t.Errorf("reset of %s: %s (%s), want %s", u.DN, res.Code, res.Detail, protocol.CodeOutOfScope)
	}
	if now := testdc.PwdVersion(t, s.DC, u.DN); now != before {
		t.Errorf("the password's version moved from %d to %d: written", before, now)
	}
	if now := string(testdc.ReadAttr(t, s.DC, u.DN, "pwdLastSet")); now != lastSet {
		t.Errorf("pwdLastSet moved from %s to %s: written", lastSet, now)
	}
}

// TestTrustUnreadablePSO: a fine-grained policy the service account may
// not read (an explicit deny, as where read on the Password Settings
// Container was never granted) applies to a user. The connector cannot
// determine the user's effective policy: the reset is answered
// access_denied, not user_not_found (the user exists), its audit record
// naming the PSO and the result not, and nothing is written.
func TestTrustUnreadablePSO(t *testing.T) {
	s := stack.New(t)
	var rnd [3]byte
	_, _ = rand.Read(rnd[:])
	name := "pso-hidden-" + hex.EncodeToString(rnd[:])
	groupDN := "CN=" + name + ",OU=Groups," + s.DC.BaseDN
	psoDN := "CN=" + name + ",CN=Password Settings Container,CN=System," + s.DC.BaseDN

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := testdc.Admin(ctx, s.DC)
	if err != nil {
		t.Fatalf("admin bind: %v", err)
	}
	defer c.Close()
	g := ldap.NewAddRequest(groupDN, nil)
	g.Attribute("objectClass", []string{"group"})
	g.Attribute("sAMAccountName", []string{name})
	if err := c.Add(g); err != nil {
		t.Fatalf("add %s: %v", groupDN, err)
	}
	p := ldap.NewAddRequest(psoDN, nil)
	p.Attribute("objectClass", []string{"msDS-PasswordSettings"})
	p.Attribute("msDS-PasswordSettingsPrecedence", []string{"1"})
	p.Attribute("msDS-PasswordReversibleEncryptionEnabled", []string{"FALSE"})
	p.Attribute("msDS-PasswordHistoryLength", []string{"0"})
	p.Attribute("msDS-PasswordComplexityEnabled", []string{"TRUE"})
	p.Attribute("msDS-MinimumPasswordLength", []string{"8"})
	p.Attribute("msDS-MinimumPasswordAge", []string{"0"})
	p.Attribute("msDS-MaximumPasswordAge", []string{"0"})
	p.Attribute("msDS-LockoutThreshold", []string{"0"})
	p.Attribute("msDS-LockoutObservationWindow", []string{"-18000000000"})
	p.Attribute("msDS-LockoutDuration", []string{"-18000000000"})
	p.Attribute("msDS-PSOAppliesTo", []string{groupDN})
	if err := c.Add(p); err != nil {
		t.Fatalf("add %s: %v", psoDN, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		c, err := testdc.Admin(ctx, s.DC)
		if err != nil {
			t.Logf("cleanup: admin bind: %v", err)
			return
		}
		defer c.Close()
		for _, dn := range []string{psoDN, groupDN} {
			if err := c.Del(ldap.NewDelRequest(dn, nil)); err != nil {
				t.Logf("cleanup: delete %s: %v", dn, err)
			}
		}
	})
	svcSID, err := testdc.SIDString(testdc.ReadAttr(t, s.DC, s.DC.ServiceDN, "objectSid"))
	if err != nil {
		t.Fatal(err)
	}
	// Deny the service account what the seed grants on the container.
	testdc.DSACL(t, s.DC, psoDN, "(D;;RPLCLORC;;;"+svcSID+")")

	u := testdc.NewUser(t, s.DC, "", groupDN)
	if got := string(testdc.ReadAttr(t, s.DC, u.DN, "msDS-ResultantPSO")); !strings.EqualFold(got, psoDN) {
		t.Fatalf("msDS-ResultantPSO of %s is %q, want %s", u.DN, got, psoDN)
	}
	before := testdc.PwdVersion(t, s.DC, u.DN)
	s.Start("a")

	for _, op := range []protocol.Op{protocol.OpReset, protocol.OpCheck} {
		res := s.Sender().Do(sender.Request{Op: op, User: protocol.UserRef{SAM: u.SAM},
			NewPassword: s.Secret("Trust!Hidden.Pso1")})
		if res.Code != protocol.CodeAccessDenied {
			t.Errorf("%s of %s: %s (%s), want %s", op, u.DN, res.Code, res.Detail, protocol.CodeAccessDenied)
		}
		if strings.Contains(strings.ToLower(res.Detail), strings.ToLower(name)) {
			t.Errorf("%s: the result's detail %q names the PSO", op, res.Detail)
		}
		want := strings.ToLower("cannot read the fine-grained policy " + psoDN)
		stack.WaitFor(t, time.Minute, "the audit record naming "+psoDN, func() bool {
			return strings.Contains(strings.ToLower(strings.Join(s.AuditLines(res.CommandID), "\n")), want)
		})
	}
	if now := testdc.PwdVersion(t, s.DC, u.DN); now != before {
		t.Errorf("the password's version moved from %d to %d: written", before, now)
	}
}

// TestTrustStatusClientCert: a connector whose listener has a client CA
// (http.client_ca_file, client_names [prometheus]) answers /livez to
// anyone, but /status, /metrics and /readyz only to a client presenting a
// certificate from that CA: without one they are 401 and show no user DN
// nor metric, with one not named prometheus 403, and a certificate from
// another CA (here the stack's own, which the server certificate chains
// to) does not get through the handshake. The stack reads the pages for
// its leak scan with the trusted client.
func TestTrustStatusClientCert(t *testing.T) {
	s := stack.New(t)
	clients, err := testca.New("status clients CA")
	if err != nil {
		t.Fatal(err)
	}
	caFile := s.WriteFile("status-clients-ca.pem", clients.PEM(), 0o644)
	certFile, keyFile := s.IssueCert("status", "127.0.0.1")
	trusted := pageClient(t, s, clients, "prometheus")
	c := s.Start("a", stack.Configure(func(c *stack.ConfigSpec) {
		c.HTTPTLSCertFile, c.HTTPTLSKeyFile, c.HTTPClientCAFile = certFile, keyFile, caFile
		c.HTTPClientNames = []string{"prometheus"}
	}), stack.ReadPagesWith(trusted))
	c.WaitReady(200)

	u := testdc.NewUser(t, s.DC, "")
	res := s.Sender().Do(sender.Request{Op: protocol.OpReset, User: protocol.UserRef{SAM: u.SAM},
		NewPassword: s.Secret("Trust!Status.Cert1")})
	if res.Code != protocol.CodeSucceeded {
		t.Fatalf("reset: %s (%s)", res.Code, res.Detail)
	}
	stack.WaitFor(t, 30*time.Second, "/status to list the reset", func() bool {
		code, body := getPage(t, trusted, c.URL("/status"))
		return code == http.StatusOK && strings.Contains(body, u.DN)
	})

	anon := pageClient(t, s, nil, "")
	if code, body := getPage(t, anon, c.URL("/livez")); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/livez without a certificate: %d %q, want 200", code, body)
	}
	stranger := pageClient(t, s, clients, "intruder")
	for _, path := range []string{"/status", "/", "/metrics", "/readyz"} {
		code, body := getPage(t, anon, c.URL(path))
		if code != http.StatusUnauthorized || body != "client certificate required\n" {
			t.Errorf("%s without a certificate: %d %.80q, want 401", path, code, body)
		}
		if code, body := getPage(t, stranger, c.URL(path)); code != http.StatusForbidden {
			t.Errorf("%s with a certificate not named prometheus: %d %.80q, want 403", path, code, body)
		}
		if code, _ := getPage(t, trusted, c.URL(path)); code != http.StatusOK {
			t.Errorf("%s with the prometheus certificate: %d, want 200", path, code)
		}
	}
	if _, err := pageClient(t, s, s.CA(), "prometheus").Get(c.URL("/metrics")); err == nil {
		t.Error("/metrics with another CA's certificate: answered, want the handshake refused")
	}
}

// pageClient is an HTTPS client trusting the stack's CA that presents a
// client certificate named name from ca (none if ca is nil), whatever CAs
// the server asks for.
func pageClient(t *testing.T, s *stack.Env, ca *testca.CA, name string) *http.Client {
	t.Helper()
	cfg := &tls.Config{RootCAs: s.CA().Pool()}
	if ca != nil {
		cert, err := ca.ClientCert(name)
		if err != nil {
			t.Fatal(err)
		}
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
}

// getPage fetches url with c: status and body (0 and the error's text if
// there is no answer).
func getPage(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b)
}
