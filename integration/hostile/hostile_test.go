//go:build integration

package hostile

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"github.com/adwriteback/adwriteback/integration/sbemu"
	"github.com/adwriteback/adwriteback/integration/stack"
	"github.com/adwriteback/adwriteback/integration/testdc"
	"github.com/adwriteback/adwriteback/relay/keys"
	"github.com/adwriteback/adwriteback/relay/protocol"
	"github.com/adwriteback/adwriteback/relay/sender"
)

// want is the acceptable fate of a hostile message: answered with one of
// codes (a signed result to its command id), or dead-lettered with reason.
type want struct {
	codes      []protocol.ResultCode
	deadReason string
}

// TestHostileInputThroughTheQueue sends hostile bodies through the real
// Service Bus client and emulator to a running connector: each is answered
// with the right code or dead-lettered with a reason, no password leaks,
// nothing is applied to the victim account, and the connector keeps
// serving afterwards. The namespace is Premium with 100 MB messages, so the
// oversized bodies reach the connector.
func TestHostileInputThroughTheQueue(t *testing.T) {
	s := newWorld(t, sbemu.TierPremium)
	victim := testdc.NewUser(t, s.DC, "")
	victimBefore := pwdLastSet(t, s.DC, victim.DN)
	good := protocol.UserRef{SAM: victim.SAM}
	invalid := want{codes: []protocol.ResultCode{protocol.CodeInvalidCommand}}
	dead := want{deadReason: string(protocol.CodeInvalidCommand)}

	type tc struct {
		name  string
		body  func() (body []byte, commandID string)
		want  want
		check func(t *testing.T, o stack.Outcome)
	}
	otherSender, err := keys.GenerateSender(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cases := []tc{
		{"forged signature", func() ([]byte, string) {
			c := command(good)
			b := s.signed(t, c, "Hostile!Forged.01")
			var env protocol.Envelope
			_ = json.Unmarshal(b, &env)
			sig, err := base64.StdEncoding.DecodeString(env.Sig)
			if err != nil {
				t.Fatal(err)
			}
			sig[3] ^= 0x01 // another signature, still well-formed
			env.Sig = base64.StdEncoding.EncodeToString(sig)
			out, _ := json.Marshal(env)
			return out, c.ID
		}, dead, nil},
		{"payload changed after signing", func() ([]byte, string) {
			c := command(good)
			b := s.signed(t, c, "Hostile!Tamper.02")
			var env protocol.Envelope
			_ = json.Unmarshal(b, &env)
			c.User = protocol.UserRef{SAM: "alice"}
			p, _ := json.Marshal(c)
			env.Payload = b64(p)
			out, _ := json.Marshal(env)
			return out, c.ID
		}, dead, nil},
		{"unknown signer key id", func() ([]byte, string) {
			c := command(good)
			pw := "Hostile!Unknown.03"
			s.SecretBytes([]byte(pw))
			if err := protocol.Seal(c, s.Keys.Connector.Public().SealKey(), protocol.DefaultSuite(), protocol.SecretFromString(pw), protocol.Secret{}); err != nil {
				t.Fatal(err)
			}
			p, _ := json.Marshal(c)
			return signRaw(p, otherSender.SigningKey()), c.ID
		}, dead, nil},
		{"unsigned", func() ([]byte, string) {
			c := command(good)
			b := s.signed(t, c, "Hostile!Unsigned.04")
			var env protocol.Envelope
			_ = json.Unmarshal(b, &env)
			env.Sig = ""
			out, _ := json.Marshal(env)
			return out, c.ID
		}, dead, nil},
		{"expired", func() ([]byte, string) {
			c := command(good)
			old := time.Now().Add(-time.Hour).UTC().Truncate(time.Millisecond)
			c.IssuedAt, c.ExpiresAt = protocol.At(old), protocol.At(old.Add(5*time.Minute))
			return s.signed(t, c, "Hostile!Expired.05"), c.ID
		}, want{codes: []protocol.ResultCode{protocol.CodeExpired}}, nil},
		{"issued far in the future", func() ([]byte, string) {
			c := command(good)
			fut := time.Now().Add(time.Hour).UTC().Truncate(time.Millisecond)
			c.IssuedAt, c.ExpiresAt = protocol.At(fut), protocol.At(fut.Add(5*time.Minute))
			return s.signed(t, c, "Hostile!Future.06"), c.ID
		}, want{codes: []protocol.ResultCode{protocol.CodeExpired, protocol.CodeInvalidCommand}}, nil},
		{"sealed to another connector key", func() ([]byte, string) {
			other, err := keys.GenerateConnector(keys.DefaultKEM, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			c := command(good)
			sealRaw(c, other.Public(), []byte("Hostile!OtherKey.07"))
			s.SecretBytes([]byte("Hostile!OtherKey.07"))
			p, _ := json.Marshal(c)
			return signRaw(p, s.Keys.Sender.SigningKey()), c.ID
		}, invalid, nil},
		{"oversized envelope (100 KB)", func() ([]byte, string) {
			return []byte(`{"v":1,"type":"command","kid":"x","sig":"","payload":"` + strings.Repeat("A", 100<<10) + `"}`), ""
		}, dead, nil},
		{"10 MB body", func() ([]byte, string) {
			return []byte(strings.Repeat("{", 10<<20)), ""
		}, dead, nil},
		{"deeply nested JSON body", func() ([]byte, string) {
			return []byte(strings.Repeat("[", 30000) + strings.Repeat("]", 30000)), ""
		}, dead, nil},
		{"deeply nested JSON inside a signed payload", func() ([]byte, string) {
			p := `{"v":1,"id":"nested-1","op":"reset","user":` + strings.Repeat(`{"sam":`, 5000) + `"x"` + strings.Repeat("}", 5000) + `}`
			return signRaw([]byte(p), s.Keys.Sender.SigningKey()), "nested-1"
		}, want{codes: []protocol.ResultCode{protocol.CodeInvalidCommand}, deadReason: string(protocol.CodeInvalidCommand)}, nil},
		{"malformed JSON", func() ([]byte, string) { return []byte(`{"v":1,"type":"command",`), "" }, dead, nil},
		{"not JSON at all", func() ([]byte, string) { return []byte("\x00\x01\xff\xfePK\x03\x04"), "" }, dead, nil},
		{"empty body", func() ([]byte, string) { return []byte{}, "" }, dead, nil},
		{"duplicate keys in the envelope", func() ([]byte, string) {
			c := command(good)
			b := s.signed(t, c, "Hostile!DupKey.08")
			return []byte(strings.Replace(string(b), `{`, `{"v":2,`, 1)), c.ID
		}, dead, nil},
		{"wrong types: v as a string (signed)", func() ([]byte, string) {
			id := newID()
			p := `{"v":"1","id":"` + id + `","op":"reset","user":{"sam":"x"}}`
			return signRaw([]byte(p), s.Keys.Sender.SigningKey()), id
		}, want{codes: []protocol.ResultCode{protocol.CodeInvalidCommand}, deadReason: string(protocol.CodeInvalidCommand)}, nil},
		{"wrong types: user as a number (signed)", func() ([]byte, string) {
			c := command(good)
			b, _ := json.Marshal(c)
			p := strings.Replace(string(b), `"user":{"sam":"`+victim.SAM+`"}`, `"user":12345`, 1)
			return signRaw([]byte(p), s.Keys.Sender.SigningKey()), c.ID
		}, want{codes: []protocol.ResultCode{protocol.CodeInvalidCommand}, deadReason: string(protocol.CodeInvalidCommand)}, nil},
		{"unknown field (signed)", func() ([]byte, string) {
			c := command(good)
			b, _ := json.Marshal(c)
			p := strings.Replace(string(b), `{`, `{"admin":true,`, 1)
			return signRaw([]byte(p), s.Keys.Sender.SigningKey()), c.ID
		}, want{codes: []protocol.ResultCode{protocol.CodeInvalidCommand}, deadReason: string(protocol.CodeInvalidCommand)}, nil},
		{"LDAP filter metacharacters in sam: *", func() ([]byte, string) {
			c := command(protocol.UserRef{SAM: "*"})
			return s.signed(t, c, "Hostile!Star.Sam.09"), c.ID
		}, want{codes: []protocol.ResultCode{protocol.CodeInvalidCommand, protocol.CodeUserNotFound}}, nil},
		{"LDAP filter injection in sam", func() ([]byte, string) {
			c := command(protocol.UserRef{SAM: victim.SAM + ")(|(sAMAccountName=*"})
			return s.signed(t, c, "Hostile!Inject.Sam.10"), c.ID
		}, want{codes: []protocol.ResultCode{protocol.CodeInvalidCommand, protocol.CodeUserNotFound}}, nil},
		{"LDAP filter metacharacters in upn", func() ([]byte, string) {
			c := command(protocol.UserRef{UPN: victim.SAM[:3] + "*@adw.test"})
			return s.signed(t, c, "Hostile!Star.Upn.11"), c.ID
		}, want{codes: []protocol.ResultCode{protocol.CodeInvalidCommand, protocol.CodeUserNotFound}}, nil},
		{"backslash escape in sam", func() ([]byte, string) {
			c := command(protocol.UserRef{SAM: `\2a`})
			return s.signed(t, c, "Hostile!Escape.12"), c.ID
		}, want{codes: []protocol.ResultCode{protocol.CodeInvalidCommand, protocol.CodeUserNotFound}}, nil},
		{"NUL in sam", func() ([]byte, string) {
			c := command(protocol.UserRef{SAM: victim.SAM + "\x00x"})
			return s.signed(t, c, "Hostile!Nul.Sam.13"), c.ID
		}, want{codes: []protocol.ResultCode{protocol.CodeInvalidCommand, protocol.CodeUserNotFound}}, nil},
		{"malformed objectGUID", func() ([]byte, string) {
			c := command(protocol.UserRef{ObjectGUID: "*)(objectClass=*"})
			return s.signed(t, c, "Hostile!Guid.14"), c.ID
		}, want{codes: []protocol.ResultCode{protocol.CodeInvalidCommand}}, nil},
		{"invalid UTF-8 in the password", func() ([]byte, string) {
			c := command(good)
			pw := []byte("Hostile!\xff\xfeUtf8.15")
			s.SecretBytes(pw)
			sealRaw(c, s.Keys.Connector.Public(), pw)
			p, _ := json.Marshal(c)
			return signRaw(p, s.Keys.Sender.SigningKey()), c.ID
		}, invalid, nil},
		{"lone UTF-16 surrogate in the password (CESU-style bytes)", func() ([]byte, string) {
			c := command(good)
			pw := []byte("Hostile!\xed\xa0\x80Surr.16")
			s.SecretBytes(pw)
			sealRaw(c, s.Keys.Connector.Public(), pw)
			p, _ := json.Marshal(c)
			return signRaw(p, s.Keys.Sender.SigningKey()), c.ID
		}, invalid, nil},
		{"NUL inside the password", func() ([]byte, string) {
			c := command(good)
			pw := []byte("Hostile!\x00Nul.Pw.17")
			s.SecretBytes([]byte("Nul.Pw.17"))
			sealRaw(c, s.Keys.Connector.Public(), pw)
			p, _ := json.Marshal(c)
			return signRaw(p, s.Keys.Sender.SigningKey()), c.ID
		}, invalid, nil},
		{"password longer than 256 UTF-16 units (sealed, 1 KB)", func() ([]byte, string) {
			c := command(good)
			pw := []byte("Aa1!" + strings.Repeat("x", 1020))
			s.SecretBytes(pw)
			sealRaw(c, s.Keys.Connector.Public(), pw)
			p, _ := json.Marshal(c)
			return signRaw(p, s.Keys.Sender.SigningKey()), c.ID
		}, invalid, nil},
	}

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body, id := c.body()
			// As the protocol binds it: a command's MessageId is its id
			// (a message with no trustworthy id gets a fresh one).
			msgID := cmp.Or(id, newID())
			if err := s.raw.Send(msgID, body); err != nil {
				t.Fatalf("send: %v", err)
			}
			o := s.raw.Await(t, msgID, id)
			switch {
			case o.Result != nil:
				if !containsCode(c.want.codes, o.Result.Code) {
					t.Fatalf("answered %s (%s), want one of %v / dead letter %q", o.Result.Code, o.Result.Detail, c.want.codes, c.want.deadReason)
				}
				if o.Result.CommandID != id {
					t.Fatalf("answer for %q, want %q", o.Result.CommandID, id)
				}
				t.Logf("answered %s: %s", o.Result.Code, o.Result.Detail)
			default:
				if c.want.deadReason == "" || o.DeadReason != c.want.deadReason {
					t.Fatalf("dead-lettered %q (%s), want %v / %q", o.DeadReason, o.DeadDesc, c.want.codes, c.want.deadReason)
				}
				if o.DeadDesc == "" {
					t.Fatal("dead-lettered without a description")
				}
				t.Logf("dead-lettered %s: %s", o.DeadReason, o.DeadDesc)
			}
			s.running(t)
		})
	}

	t.Run("replayed id is answered with its first result and applied once", func(t *testing.T) {
		u := testdc.NewUser(t, s.DC, "")
		c := command(protocol.UserRef{SAM: u.SAM})
		body := s.signed(t, c, "Hostile!Replay.Pw18")
		v0 := testdc.PwdVersion(t, s.DC, u.DN)
		if err := s.raw.Send(c.ID, body); err != nil {
			t.Fatal(err)
		}
		first := s.raw.Await(t, "-", c.ID)
		if first.Result.Code != protocol.CodeSucceeded {
			t.Fatalf("first: %s %s", first.Result.Code, first.Result.Detail)
		}
		s.raw.Forget(c.ID)
		if err := s.raw.Send(c.ID, body); err != nil {
			t.Fatal(err)
		}
		second := s.raw.Await(t, "-", c.ID)
		if string(second.RawResult) != string(first.RawResult) {
			t.Fatalf("replay answered differently: %s vs %s", second.Result.Code, first.Result.Code)
		}
		if d := testdc.PwdVersion(t, s.DC, u.DN) - v0; d != 1 {
			t.Fatalf("unicodePwd written %d times, want 1", d)
		}
		// The same id for a different command (another password) is refused.
		c2 := command(protocol.UserRef{SAM: u.SAM})
		c2.ID = c.ID
		if err := s.raw.Send(c.ID, s.signed(t, c2, "Hostile!Reuse.Pw19")); err != nil {
			t.Fatal(err)
		}
		third := s.raw.Await(t, "-", c.ID)
		if third.Result.Code == protocol.CodeSucceeded && string(third.RawResult) != string(first.RawResult) {
			t.Fatalf("a different command reusing an id was applied: %+v", third.Result.Result)
		}
		if d := testdc.PwdVersion(t, s.DC, u.DN) - v0; d != 1 {
			t.Fatalf("unicodePwd written %d times after the id reuse, want 1", d)
		}
	})

	t.Run("still serving, and the victim untouched", func(t *testing.T) {
		if got := pwdLastSet(t, s.DC, victim.DN); got != victimBefore {
			t.Fatalf("the victim's pwdLastSet changed: %s -> %s", victimBefore, got)
		}
		s.serving(t, "Hostile!Still.Up20")
	})
	_ = sender.ContentTypeCommand
}

func containsCode(cs []protocol.ResultCode, c protocol.ResultCode) bool {
	for _, x := range cs {
		if x == c {
			return true
		}
	}
	return false
}

// TestHugeSealedPassword sends a reset whose sealed password is 10 MB (an
// ~18 MB message), and checks what Service Bus and the connector make of it.
//
// Premium, queue of 100 MB messages: Service Bus delivers it, and the
// connector's bounded decoder (protocol.MaxEnvelopeSize) refuses it as too
// large: dead-lettered invalid_command (no command id can be read, so there
// is nothing to answer), the account untouched, the connector still serving.
//
// Standard: Service Bus caps a message at 256 KB, so the send itself fails
// with ErrMessageTooLarge and nothing reaches the queue.
//
// Either way no part of the password shows in logs, audit, results, dead
// letters or the status pages (the stack's leak scan).
func TestHugeSealedPassword(t *testing.T) {
	for _, tier := range []sbemu.Tier{sbemu.TierPremium, sbemu.TierStandard} {
		t.Run(string(tier), func(t *testing.T) {
			s := newWorld(t, tier)
			victim := testdc.NewUser(t, s.DC, "")
			v0 := testdc.PwdVersion(t, s.DC, victim.DN)
			c := command(protocol.UserRef{SAM: victim.SAM})
			pw := append([]byte("Aa1!Huge."), bytes.Repeat([]byte("y"), 10<<20)...)
			s.SecretBytes(pw[:64]) // any 64 bytes of it in the scanned text is a leak
			sealRaw(c, s.Keys.Connector.Public(), pw)
			p, err := json.Marshal(c)
			if err != nil {
				t.Fatal(err)
			}
			msgID := c.ID
			err = s.raw.Send(msgID, signRaw(p, s.Keys.Sender.SigningKey()))

			switch tier {
			case sbemu.TierPremium:
				if err != nil {
					t.Fatalf("send to a 100 MB queue: %v", err)
				}
				o := s.raw.Await(t, msgID, c.ID)
				switch {
				case o.Result != nil:
					if o.Result.Code != protocol.CodeInvalidCommand {
						t.Fatalf("answered %s (%s), want %s for a message too large", o.Result.Code, o.Result.Detail, protocol.CodeInvalidCommand)
					}
					// The result gives a fixed phrase; the audit record says why.
					stack.WaitFor(t, time.Minute, "the audit record saying too large", func() bool {
						return strings.Contains(strings.Join(s.AuditLines(c.ID), "\n"), "too large")
					})
				case o.DeadReason != string(protocol.CodeInvalidCommand) || !strings.Contains(o.DeadDesc, "too large"):
					t.Fatalf("dead-lettered %q (%s), want %s for a message too large", o.DeadReason, o.DeadDesc, protocol.CodeInvalidCommand)
				default:
					t.Logf("dead-lettered %s: %s", o.DeadReason, o.DeadDesc)
				}
			case sbemu.TierStandard:
				if !errors.Is(err, azservicebus.ErrMessageTooLarge) {
					t.Fatalf("send of ~18 MB on Standard: got %v, want ErrMessageTooLarge", err)
				}
				st, err := s.Emu.Queue(t.Context(), s.Queue)
				if err != nil {
					t.Fatal(err)
				}
				if st.Stats.Enqueued != 0 {
					t.Fatalf("%d messages reached the queue, want none", st.Stats.Enqueued)
				}
			}
			if d := testdc.PwdVersion(t, s.DC, victim.DN) - v0; d != 0 {
				t.Fatalf("the victim's unicodePwd was written %d times", d)
			}
			s.serving(t, "Hostile!After.Huge21")
		})
	}
}
