//go:build integration

// Package trust holds the integration tests of issue 14's trust
// boundaries (TestTrust...): each tries, through the real stack (the
// sender SDK, the emulator's queue, the connector and the Samba DC), to
// make the connector write where it must not, and checks that it
// refuses and that nothing changed in AD.
package trust

import (
	"crypto/rand"
	"encoding/hex"
	"testing"

	"github.com/adwriteback/adwriteback/integration/stack"
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
