//go:build integration

package hostile

import (
	"context"
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"testing"
	"time"

	"github.com/adwriteback/adwriteback/integration/sbemu"
	"github.com/adwriteback/adwriteback/integration/stack"
	"github.com/adwriteback/adwriteback/integration/testdc"
	"github.com/adwriteback/adwriteback/relay/keys"
	"github.com/adwriteback/adwriteback/relay/protocol"
)

// world: the shared test DC, an emulator of its own, and one connector
// running in this process, fed raw bodies through azservicebus (a
// stack.RawClient).
//
// On a Premium namespace the command queue takes messages up to 100 MB (the
// largest Service Bus allows), so a hostile body far over the connector's own
// envelope limit reaches it and must be refused by its bounded decoder. On
// Standard, Service Bus caps a message at 256 KB and refuses a larger send.
type world struct {
	*stack.Env
	conn *stack.Connector
	raw  *stack.RawClient
}

func newWorld(t *testing.T, tier sbemu.Tier) *world {
	t.Helper()
	qo := sbemu.QueueOptions{LockDuration: 20 * time.Second, MaxDeliveryCount: 5}
	if tier == sbemu.TierPremium {
		qo.MaxMessageSizeInKilobytes = sbemu.PremiumMaxMaxMessageSizeKB
	}
	w := &world{Env: stack.New(t, stack.WithTier(tier), stack.WithCommandQueue("commands", qo))}
	w.conn = w.Start("a", stack.Configure(func(c *stack.ConfigSpec) { c.PerUser = 100 }))
	w.raw = w.Raw()
	return w
}

// running fails the test if the connector has stopped.
func (s *world) running(t *testing.T) {
	t.Helper()
	if !s.conn.Running() {
		t.Fatalf("the connector stopped: %v", s.conn.Err())
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// signRaw signs any payload bytes as a command envelope with key k.
func signRaw(payload []byte, k protocol.SigningKey) []byte {
	env := protocol.Envelope{V: protocol.Version, Type: protocol.TypeCommand, KID: k.KID,
		Sig: b64(ed25519.Sign(k.Key, protocol.SigningInput(protocol.TypeCommand, payload))), Payload: b64(payload)}
	b, err := json.Marshal(env)
	if err != nil {
		panic(err)
	}
	return b
}

// command is a fresh, valid, unsealed reset command for ref.
func command(ref protocol.UserRef) *protocol.Command {
	now := time.Now().UTC().Truncate(time.Millisecond)
	return &protocol.Command{V: protocol.Version, ID: newID(), Op: protocol.OpReset, User: ref,
		Actor: protocol.Actor{Kind: protocol.ActorSelfService, ID: "hostile"}, IssuedAt: protocol.At(now), ExpiresAt: protocol.At(now.Add(5 * time.Minute))}
}

// newID is a fresh command or message id.
func newID() string { return "hostile-" + rand.Text() }

// sealRaw seals arbitrary password bytes exactly as protocol.Seal does
// (same HPKE info binding and padding) but without its validation, to
// deliver passwords a correct sender would refuse to send.
func sealRaw(c *protocol.Command, to *keys.ConnectorPublic, pw []byte) {
	kind, value := c.User.Kind()
	info := []byte("adwriteback-v1-secret\x00")
	for _, f := range []string{c.ID, string(c.Op), kind, value, c.User.Domain} {
		info = binary.BigEndian.AppendUint16(info, uint16(len(f)))
		info = append(info, f...)
	}
	enc, snd, err := hpke.NewSender(to.HPKE, hpke.HKDFSHA256(), hpke.AES256GCM(), info)
	if err != nil {
		panic(err)
	}
	buf := make([]byte, max(protocol.MaxPasswordBytes, len(pw)))
	copy(buf, pw)
	ct, err := snd.Seal([]byte("new"), buf)
	if err != nil {
		panic(err)
	}
	c.Secret = &protocol.Sealed{KID: to.KID, KEM: to.HPKE.KEM().ID(), KDF: protocol.KDFHKDFSHA256, AEAD: protocol.AEADAES256GCM,
		Enc: b64(enc), New: b64(ct)}
}

// signed seals pw (validated, via protocol.Seal) and signs c without
// validating c, so hostile user references reach the connector.
func (s *world) signed(t *testing.T, c *protocol.Command, pw string) []byte {
	t.Helper()
	sec := s.Secret(pw)
	if err := protocol.Seal(c, s.Keys.Connector.Public().SealKey(), protocol.DefaultSuite(), sec, protocol.Secret{}); err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return signRaw(payload, s.Keys.Sender.SigningKey())
}

// serving checks the connector is up and still applies a valid command:
// a fresh user's password is reset and binds.
func (s *world) serving(t *testing.T, pw string) {
	t.Helper()
	s.running(t)
	u := testdc.NewUser(t, s.DC, "")
	c := command(protocol.UserRef{SAM: u.SAM})
	if err := s.raw.Send(c.ID, s.signed(t, c, pw)); err != nil {
		t.Fatal(err)
	}
	o := s.raw.Await(t, "-", c.ID)
	if o.Result == nil || o.Result.Code != protocol.CodeSucceeded {
		t.Fatalf("a valid command: %+v", o)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := testdc.Bind(ctx, s.DC, u.DN, pw)
	if err != nil {
		t.Fatalf("bind with the new password: %v", err)
	}
	conn.Close()
}
