//go:build integration

package trust

import (
	"context"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/adwriteback/adwriteback/integration/sbemu"
	"github.com/adwriteback/adwriteback/integration/stack"
	"github.com/adwriteback/adwriteback/integration/testdc"
	"github.com/adwriteback/adwriteback/relay/protocol"
	"github.com/adwriteback/adwriteback/relay/sender"
)

// TestTrustCopiedCommand: a signed reset is applied by instance a; the
// user then changes the password. A copy of the command (taken from the
// queue, the dead-letter queue or the sender's storage) is put on the
// queue again while a is down and instance b, with a journal of its own,
// is up. Neither copy may write: one under a new MessageId is
// dead-lettered (the MessageId must be the command id), one under the
// command's own id (the queue's duplicate detection off or its window
// over) finds the account's password written after the command was
// issued and is answered "superseded" without writing. The user's own
// password still binds afterwards.
func TestTrustCopiedCommand(t *testing.T) {
	s := stack.New(t)
	u := testdc.NewUser(t, s.DC, "")
	a := s.Start("a")
	raw := s.Raw()

	first, changed := "Trust!Copy.First1", "Trust!Copy.Mine22"
	p, err := s.Sender().Client.Build(sender.Request{Op: protocol.OpReset, User: protocol.UserRef{SAM: u.SAM},
		NewPassword: s.Secret(first), Actor: protocol.Actor{Kind: protocol.ActorSelfService, ID: "harness"}})
	if err != nil {
		t.Fatal(err)
	}
	id, body := p.Command.ID, p.Envelope.Body
	if err := raw.Send(id, body); err != nil {
		t.Fatal(err)
	}
	if out := raw.Await(t, id, id); out.Result == nil || out.Result.Code != protocol.CodeSucceeded {
		t.Fatalf("the original reset: %+v", out)
	}
	s.Secret(changed)
	setPassword(t, s.DC, u.DN, changed)
	version := testdc.PwdVersion(t, s.DC, u.DN)
	a.Stop()
	s.Start("b")

	raw.Forget(id)
	copyID := "copy-of-" + id
	if err := raw.Send(copyID, body); err != nil {
		t.Fatal(err)
	}
	out := raw.Await(t, copyID, id)
	if out.Result != nil || out.DeadReason != "message_id_mismatch" {
		t.Errorf("copy under a new MessageId: result %+v, dead letter %q (%s); want dead-lettered message_id_mismatch",
			resultOf(out), out.DeadReason, out.DeadDesc)
	}
	assertUnwritten(t, s.DC, u.DN, version, changed, first)

	raw.Forget(id)
	if err := raw.Send(id, body); err != nil {
		t.Fatal(err)
	}
	out = raw.Await(t, id, id)
	if out.Result == nil || out.Result.Code != protocol.CodeSuperseded {
		t.Errorf("copy under the command's id: result %+v, dead letter %q; want %s", resultOf(out), out.DeadReason, protocol.CodeSuperseded)
	}
	assertUnwritten(t, s.DC, u.DN, version, changed, first)
}

// TestTrustDuplicateDetectionDropsCopies: with duplicate detection on the
// command queue (docs/azure-setup.md), a copy under the command's id is
// dropped by the queue itself, because the sender's MessageId is the
// command id.
func TestTrustDuplicateDetectionDropsCopies(t *testing.T) {
	s := stack.New(t, stack.WithCommandQueue("commands", sbemu.QueueOptions{DuplicateDetectionWindow: 10 * time.Minute}))
	u := testdc.NewUser(t, s.DC, "")
	s.Start("a")
	snd := s.Sender()
	res := snd.Do(sender.Request{Op: protocol.OpCheck, User: protocol.UserRef{SAM: u.SAM}, NewPassword: s.Secret("Trust!Dup.Check1")})
	if res.Code != protocol.CodeSucceeded {
		t.Fatalf("check: %s", res.Code)
	}
	p, err := snd.Client.Build(sender.Request{Op: protocol.OpCheck, User: protocol.UserRef{SAM: u.SAM},
		NewPassword: s.Secret("Trust!Dup.Check2"), Actor: protocol.Actor{Kind: protocol.ActorAdmin, ID: "h"}})
	if err != nil {
		t.Fatal(err)
	}
	raw := s.Raw()
	for range 2 {
		if err := raw.Send(p.Command.ID, p.Envelope.Body); err != nil {
			t.Fatal(err)
		}
	}
	if out := raw.Await(t, p.Command.ID, p.Command.ID); out.Result == nil || out.Result.Code != protocol.CodeSucceeded {
		t.Fatalf("the command: %+v", out)
	}
	if st := s.QueueState(s.Queue); st.Stats.Duplicates != 1 {
		t.Errorf("the queue dropped %d duplicates, want 1", st.Stats.Duplicates)
	}
}

// TestTrustReplyToIgnored: a copy of a command that names another reply
// queue (one the copier reads) gets no answer there: results go only to
// the configured reply queue.
func TestTrustReplyToIgnored(t *testing.T) {
	s := stack.New(t)
	s.AddQueue("copier", sbemu.QueueOptions{})
	u := testdc.NewUser(t, s.DC, "")
	s.Start("a")
	raw := s.Raw()
	p, err := s.Sender().Client.Build(sender.Request{Op: protocol.OpCheck, User: protocol.UserRef{SAM: u.SAM},
		NewPassword: s.Secret("Trust!Reply.To1"), Actor: protocol.Actor{Kind: protocol.ActorAdmin, ID: "h"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := raw.SendTo(p.Command.ID, p.Envelope.Body, "copier"); err != nil {
		t.Fatal(err)
	}
	out := raw.Await(t, p.Command.ID, p.Command.ID)
	if out.Result == nil || out.Result.Code != protocol.CodeSucceeded {
		t.Errorf("the command: %+v; want its result on the configured reply queue", out)
	}
	if st := s.QueueState("copier"); st.Active != 0 {
		t.Errorf("the copier's queue got %d message(s)", st.Active)
	}
}

// TestTrustExpiredCopyAnsweredFromJournal: a copy of an applied command
// that arrives after the command expired is answered with the stored
// result (byte for byte), never re-evaluated into a contradicting signed
// "expired".
func TestTrustExpiredCopyAnsweredFromJournal(t *testing.T) {
	s := stack.New(t)
	u := testdc.NewUser(t, s.DC, "")
	a := s.Start("a")
	raw := s.Raw()
	p, err := s.Sender().Client.Build(sender.Request{Op: protocol.OpReset, User: protocol.UserRef{SAM: u.SAM},
		NewPassword: s.Secret("Trust!Late.Copy1"), Actor: protocol.Actor{Kind: protocol.ActorAdmin, ID: "h"}})
	if err != nil {
		t.Fatal(err)
	}
	id := p.Command.ID
	if err := raw.Send(id, p.Envelope.Body); err != nil {
		t.Fatal(err)
	}
	first := raw.Await(t, id, id)
	if first.Result == nil || first.Result.Code != protocol.CodeSucceeded {
		t.Fatalf("the reset: %+v", first)
	}
	a.Stop()
	a.Start(stack.ClockAhead(time.Hour))
	raw.Forget(id)
	if err := raw.Send(id, p.Envelope.Body); err != nil {
		t.Fatal(err)
	}
	late := raw.Await(t, id, id)
	if late.Result == nil || late.Result.Code != protocol.CodeSucceeded || string(late.RawResult) != string(first.RawResult) {
		t.Errorf("the expired copy: %+v; want the stored result again", resultOf(late))
	}
}

// TestTrustUnverifiedAuditedApart: a message that fails before its
// signature is checked, sent under a real command's id, writes no audit
// record under that id: it is recorded apart, as unverified.
func TestTrustUnverifiedAuditedApart(t *testing.T) {
	s := stack.New(t)
	u := testdc.NewUser(t, s.DC, "")
	c := s.Start("a")
	res := s.Sender().Do(sender.Request{Op: protocol.OpCheck, User: protocol.UserRef{SAM: u.SAM}, NewPassword: s.Secret("Trust!Audit.Apart1")})
	id := res.CommandID
	raw := s.Raw()
	if err := raw.Send(id, []byte(`{"v":1,"type":"command","kid":"nobody","sig":"AA==","payload":"AA=="}`)); err != nil {
		t.Fatal(err)
	}
	if out := raw.Await(t, id, ""); out.DeadReason != string(protocol.CodeInvalidCommand) {
		t.Fatalf("the forged message: %+v", out)
	}
	var mine, apart int
	stack.WaitFor(t, 30*time.Second, "the forged message's audit record", func() bool {
		mine, apart = 0, 0
		for _, r := range c.AuditRecords() {
			switch {
			case r.CommandID == id:
				mine++
			case r.Event == "unverified_message" && r.MessageID == id:
				apart++
			}
		}
		return apart == 1
	})
	if mine != 1 {
		t.Errorf("%d audit records under the real command's id, want 1 (its own)", mine)
	}
}

func resultOf(o stack.Outcome) any {
	if o.Result == nil {
		return nil
	}
	return o.Result.Result
}

// setPassword sets dn's password as an administrator would (the user's
// own change, as far as the connector can tell).
func setPassword(t *testing.T, dc *testdc.Info, dn, pw string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := testdc.Admin(ctx, dc)
	if err != nil {
		t.Fatalf("admin bind: %v", err)
	}
	defer c.Close()
	m := ldap.NewModifyRequest(dn, nil)
	m.Replace("unicodePwd", []string{testdc.EncodePassword(pw)})
	if err := c.Modify(m); err != nil {
		t.Fatalf("set the password of %s: %v", dn, err)
	}
}

// assertUnwritten checks that dn's password was not written again: its
// version is still version, mine binds and old does not.
func assertUnwritten(t *testing.T, dc *testdc.Info, dn string, version int, mine, old string) {
	t.Helper()
	if now := testdc.PwdVersion(t, dc, dn); now != version {
		t.Errorf("the password's version moved from %d to %d: written again", version, now)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if c, err := testdc.Bind(ctx, dc, dn, mine); err != nil {
		t.Errorf("the user's own password no longer binds: %v", err)
	} else {
		c.Close()
	}
	if c, err := testdc.Bind(ctx, dc, dn, old); err == nil {
		c.Close()
		t.Errorf("the copied command's password binds: the copy was applied")
	}
}
