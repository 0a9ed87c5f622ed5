package protocol_test

import (
	"context"
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/adwriteback/adwriteback/relay/keys"
	"github.com/adwriteback/adwriteback/relay/protocol"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// testNow is the fixed clock of the tests and golden vectors.
var testNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// The deterministic test keys (checked in under testdata/keys, derived from
// these labels so that a test can prove the files are what they say).
var keyCreated = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func seed(label string) []byte {
	s := sha256.Sum256([]byte(label))
	return s[:]
}

type fixture struct {
	connA, connB *keys.ConnectorPrivate
	sender       *keys.SenderPrivate
	other        *keys.SenderPrivate // a second, untrusted-by-default sender
}

func deriveFixture(t testing.TB) fixture {
	t.Helper()
	var f fixture
	var err error
	if f.connA, err = keys.DeriveConnector(0, seed("adwriteback test connector A"), keyCreated); err != nil {
		t.Fatal(err)
	}
	if f.connB, err = keys.DeriveConnector(0, seed("adwriteback test connector B"), keyCreated); err != nil {
		t.Fatal(err)
	}
	if f.sender, err = keys.DeriveSender(seed("adwriteback test sender"), keyCreated); err != nil {
		t.Fatal(err)
	}
	if f.other, err = keys.DeriveSender(seed("adwriteback test other sender"), keyCreated); err != nil {
		t.Fatal(err)
	}
	return f
}

// loadFixture reads the checked-in test keys.
func loadFixture(t testing.TB) fixture {
	t.Helper()
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", "keys", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var f fixture
	var err error
	if f.connA, err = keys.ParseConnectorPrivate(read("connector-a.key.json")); err != nil {
		t.Fatal(err)
	}
	if f.connB, err = keys.ParseConnectorPrivate(read("connector-b.key.json")); err != nil {
		t.Fatal(err)
	}
	if f.sender, err = keys.ParseSenderPrivate(read("sender.key.json")); err != nil {
		t.Fatal(err)
	}
	if f.other, err = keys.ParseSenderPrivate(read("other-sender.key.json")); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f fixture) senders() protocol.VerifyKeys {
	return protocol.VerifyKeys{f.sender.KID: f.sender.Public().Verify}
}

func (f fixture) connectorResultKeys() protocol.VerifyKeys {
	return protocol.VerifyKeys{f.connA.KID: f.connA.Public().Verify, f.connB.KID: f.connB.Public().Verify}
}

func (f fixture) receiver(now time.Time, open ...*keys.ConnectorPrivate) *protocol.Receiver {
	if len(open) == 0 {
		open = []*keys.ConnectorPrivate{f.connA}
	}
	ok, err := keys.OpenKeysOf(open...)
	if err != nil {
		panic(err)
	}
	return &protocol.Receiver{
		Senders: f.senders(),
		Keys:    ok,
		Replay:  protocol.NewMemoryReplayCache(func() time.Time { return now }, 0),
		Clock:   clockwork.NewFakeClockAt(now),
	}
}

const (
	pwNew = "Correct-Horse-Battery-9!"
	pwOld = "Tr0ub4dor&3-old"
)

func baseCommand(op protocol.Op) protocol.Command {
	c := protocol.Command{
		V:         protocol.Version,
		ID:        "3f1c9e0a-6c47-4c1e-9d8e-2b7a4f0c1d21",
		Op:        op,
		User:      protocol.UserRef{UPN: "ada.lovelace@corp.example.com", Domain: "corp.example.com"},
		Actor:     protocol.Actor{Kind: protocol.ActorSelfService, ID: "sspr-session-8841"},
		IssuedAt:  protocol.At(testNow.Add(-10 * time.Second)),
		ExpiresAt: protocol.At(testNow.Add(5 * time.Minute)),
	}
	if op == protocol.OpReset {
		c.Options = protocol.Options{MustChange: true, Unlock: true}
	}
	return c
}

// buildCommand seals (to connA unless to is given) and signs.
func buildCommand(t testing.TB, f fixture, c protocol.Command, to ...*keys.ConnectorPrivate) []byte {
	t.Helper()
	target := f.connA
	if len(to) > 0 {
		target = to[0]
	}
	if c.Op.HasSecret() {
		old := protocol.Secret{}
		if c.Op == protocol.OpChange {
			old = protocol.SecretFromString(pwOld)
		}
		if err := protocol.Seal(&c, target.Public().SealKey(), protocol.DefaultSuite(), protocol.SecretFromString(pwNew), old); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := protocol.SignCommand(&c, f.sender.SigningKey())
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// splitEnvelope returns the envelope as a generic map and its payload bytes.
func splitEnvelope(t testing.TB, raw []byte) (map[string]any, []byte) {
	t.Helper()
	var env map[string]any
	if err := json.Unmarshal(raw, &env); err != nil {
		t.Fatal(err)
	}
	p, err := base64.StdEncoding.DecodeString(env["payload"].(string))
	if err != nil {
		t.Fatal(err)
	}
	return env, p
}

// signRaw makes an envelope around arbitrary payload bytes, correctly
// signed with k: it lets tests get past the signature to the payload checks.
func signRaw(t testing.TB, typ string, payload []byte, k protocol.SigningKey) []byte {
	t.Helper()
	var pv struct{ V int }
	if json.Unmarshal(payload, &pv) != nil || pv.V == 0 {
		pv.V = protocol.Version
	}
	env := map[string]any{
		"v": pv.V, "type": typ, "kid": k.KID,
		"sig":     base64.StdEncoding.EncodeToString(ed25519.Sign(k.Key, protocol.SigningInput(typ, payload))),
		"payload": base64.StdEncoding.EncodeToString(payload),
	}
	b, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// resignPayload decodes a signed command's payload into a map, lets mutate
// change it, and signs the result validly.
func resignPayload(t testing.TB, f fixture, raw []byte, mutate func(m map[string]any)) []byte {
	t.Helper()
	_, p := splitEnvelope(t, raw)
	var m map[string]any
	if err := json.Unmarshal(p, &m); err != nil {
		t.Fatal(err)
	}
	mutate(m)
	np, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return signRaw(t, protocol.TypeCommand, np, f.sender.SigningKey())
}

// wantKind asserts err is a *protocol.Error of the given kind, with no
// password in its text.
func wantKind(t testing.TB, err error, kind error) *protocol.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %v", kind)
	}
	if !errors.Is(err, kind) {
		t.Fatalf("got %v, want kind %v", err, kind)
	}
	var pe *protocol.Error
	if !errors.As(err, &pe) {
		t.Fatalf("got %T, want *protocol.Error", err)
	}
	noSecret(t, err.Error())
	return pe
}

func noSecret(t testing.TB, s string) {
	t.Helper()
	for _, pw := range []string{pwNew, pwOld, "Horse", "Tr0ub"} {
		if strings.Contains(s, pw) {
			t.Fatalf("text contains a password: %q", s)
		}
	}
}

// receive receives raw as a transport would that carried it under the
// command's own id (as a correct sender sends it).
func receive(r *protocol.Receiver, raw []byte) (*protocol.Received, error) {
	return r.Receive(context.Background(), raw, commandIDOf(raw))
}

// commandIDOf is the id in raw's payload, read without any check ("" when
// there is none).
func commandIDOf(raw []byte) string {
	var env struct{ Payload string }
	if json.Unmarshal(raw, &env) != nil {
		return ""
	}
	p, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		return ""
	}
	var c struct{ ID string }
	if json.Unmarshal(p, &c) != nil {
		return ""
	}
	return c.ID
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

var base64Std = base64.StdEncoding

func ed25519Sign(k protocol.SigningKey, msg []byte) []byte { return ed25519.Sign(k.Key, msg) }

func mustX25519(t testing.TB) hpke.PrivateKey {
	t.Helper()
	k, err := keys.DeriveConnector(protocol.KEMX25519, seed("adwriteback test x25519"), keyCreated)
	if err != nil {
		t.Fatal(err)
	}
	return k.HPKE
}
