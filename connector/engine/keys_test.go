package engine

import (
	"context"
	"maps"
	"strings"
	"testing"

	"github.com/jonboulle/clockwork"

	"github.com/adwriteback/adwriteback/connector/policy"
	"github.com/adwriteback/adwriteback/ldapx"
	"github.com/adwriteback/adwriteback/relay/keys"
	"github.com/adwriteback/adwriteback/relay/protocol"
	"github.com/adwriteback/adwriteback/relay/sender"
	"github.com/adwriteback/adwriteback/relay/transport"
)

// secondSender is a sender client with a new key, sealing to the rig's
// connector key; it returns the client and the key's public half.
func (r *rig) secondSender() (*sender.Client, *keys.SenderPublic) {
	r.t.Helper()
	snd, err := keys.GenerateSender(r.now)
	if err != nil {
		r.t.Fatal(err)
	}
	cfg, err := sender.ConfigFromKeys(snd, r.conn.Public())
	if err != nil {
		r.t.Fatal(err)
	}
	cfg.Clock = clockwork.NewFakeClockAt(r.now)
	sc, err := sender.New(cfg)
	if err != nil {
		r.t.Fatal(err)
	}
	return sc, snd.Public()
}

func TestSetKeysAcceptsANewSenderAndRefusesAnIncompleteSet(t *testing.T) {
	r := newRig(t)
	sc2, pub2 := r.secondSender()
	first := r.snd
	r.snd = sc2
	d := r.build(reset("alice", goodPw))
	if disp := r.handle(d); disp.Action != transport.DeadLetter("", "").Action {
		t.Fatalf("a command of an unknown sender key: %+v, want a dead letter", disp)
	}

	old := r.eng.CurrentKeys()
	both := old
	both.Senders = maps.Clone(old.Senders)
	both.Senders[pub2.KID] = pub2.Verify
	if err := r.eng.SetKeys(both); err != nil {
		t.Fatal(err)
	}
	d = r.build(reset("alice", goodPw))
	wantAction(t, r.handle(d), transport.Complete())
	if res := r.result(d.MessageID); res.Code != protocol.CodeSucceeded {
		t.Fatalf("new sender key after SetKeys: %s", res.Code)
	}

	err := r.eng.SetKeys(Keys{Open: old.Open, Signer: old.Signer})
	if err == nil || !strings.Contains(err.Error(), "no sender key") {
		t.Fatalf("SetKeys without senders: %v", err)
	}
	r.snd = first
	d = r.build(sender.Request{Op: protocol.OpUnlock, User: protocol.UserRef{SAM: "alice"},
		Actor: protocol.Actor{Kind: protocol.ActorAdmin, ID: "h"}})
	wantAction(t, r.handle(d), transport.Complete())
	if res := r.result(d.MessageID); res.Code != protocol.CodeSucceeded {
		t.Fatalf("first sender key after a refused SetKeys: %s", res.Code)
	}
}

// swapDir swaps the engine's keys while a write is in flight.
type swapDir struct {
	Directory
	during func()
}

func (s swapDir) Reset(ctx context.Context, dn, pw string, opts ldapx.ResetOptions) (ldapx.Applied, error) {
	s.during()
	return s.Directory.Reset(ctx, dn, pw, opts)
}

func TestCommandInFlightKeepsItsKeys(t *testing.T) {
	var during func()
	swapped := false
	r := newRig(t, func(_ *Config, d *Domain) {
		d.Dir = swapDir{d.Dir, func() { during() }}
	})
	during = func() {
		other, err := keys.GenerateConnector(keys.DefaultKEM, r.now)
		if err != nil {
			t.Error(err)
			return
		}
		k := r.eng.CurrentKeys()
		open, _ := keys.OpenKeysOf(other)
		k.Open, k.Signer = open, other.SigningKey()
		if err := r.eng.SetKeys(k); err != nil {
			t.Error(err)
		}
		swapped = true
	}
	d := r.build(reset("alice", goodPw))
	wantAction(t, r.handle(d), transport.Complete())
	if !swapped {
		t.Fatal("the keys were not swapped during the write")
	}
	// r.result verifies the result with the first connector key: the
	// command was signed with the set it was received with.
	if res := r.result(d.MessageID); res.Code != protocol.CodeSucceeded {
		t.Fatalf("code %s", res.Code)
	}
}

func TestSetOrgListsAppliesToTheNextCheck(t *testing.T) {
	r := newRig(t)
	d := r.build(reset("alice", "Tangerine!Pony77"))
	wantAction(t, r.handle(d), transport.Complete())
	if res := r.result(d.MessageID); res.Code != protocol.CodeSucceeded {
		t.Fatalf("before the list: %s", res.Code)
	}
	banned, err := policy.ReadBannedList(strings.NewReader("tangerine\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.eng.SetOrgLists("adw.test", OrgLists{Banned: banned}); err != nil {
		t.Fatal(err)
	}
	if err := r.eng.SetOrgLists("nowhere.test", OrgLists{}); err == nil {
		t.Error("SetOrgLists of an unknown domain succeeded")
	}
	d = r.build(reset("alice", "Tangerine!Pony78"))
	wantAction(t, r.handle(d), transport.Complete())
	if res := r.result(d.MessageID); res.Code != protocol.CodePolicyViolation {
		t.Fatalf("after the list: %s", res.Code)
	}
}
