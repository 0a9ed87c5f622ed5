package protocol_test

import (
	"errors"
	"testing"

	"github.com/adwriteback/adwriteback/relay/protocol"
)

// checkErr asserts the decoder contract: on failure a *protocol.Error with
// a Kind and an upstream code of invalid_command or expired.
func checkErr(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var pe *protocol.Error
	if !errors.As(err, &pe) || pe.Kind == nil {
		t.Fatalf("untyped error %T: %v", err, err)
	}
	if pe.Code != protocol.CodeInvalidCommand && pe.Code != protocol.CodeExpired {
		t.Fatalf("code %s for %v", pe.Code, err)
	}
}

func vectorSeeds(t testing.TB, typ string) (envs [][]byte, payloads [][]byte) {
	vs := readVectors(t)
	for _, v := range vs {
		if v.Type != typ {
			continue
		}
		envs = append(envs, v.raw())
		if v.Payload != nil {
			payloads = append(payloads, v.Payload)
		}
	}
	return envs, payloads
}

// FuzzDecodeCommand feeds arbitrary bytes both as a whole envelope (through
// the full Receiver) and as a payload signed by a trusted sender (so the
// fuzzer reaches the payload decoder and the opener).
func FuzzDecodeCommand(f *testing.F) {
	fx := loadFixture(f)
	envs, payloads := vectorSeeds(f, protocol.TypeCommand)
	for _, e := range envs {
		f.Add(e)
	}
	for _, p := range payloads {
		f.Add(p)
	}
	f.Add([]byte(`{"v":1,"type":"command","kid":"x","sig":"","payload":""}`))
	f.Add([]byte(`{"v":1,"id":"a","op":"unlock","user":{"sam":"a"},"actor":{"kind":"admin","id":"b"},"issuedAt":"2025-06-01T12:00:00Z","expiresAt":"2025-06-01T12:05:00Z"}`))
	f.Add([]byte(`{"v":1,"v":1}`))
	f.Add([]byte(`{"a":[[[[[[[[[[]]]]]]]]]]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		rcv := fx.receiver(testNow, fx.connA, fx.connB)
		got, err := receive(rcv, data)
		checkErr(t, err)
		if err == nil {
			got.Secrets.Zero()
		}
		c, err := protocol.ParseCommand(data)
		checkErr(t, err)
		if err == nil {
			if err := c.Validate(); err != nil {
				t.Fatalf("parsed command does not validate: %v", err)
			}
		}
		if len(data) < 48<<10 {
			got, err := receive(rcv, signRaw(t, protocol.TypeCommand, data, fx.sender.SigningKey()))
			checkErr(t, err)
			if err == nil {
				got.Secrets.Zero()
			}
		}
	})
}

func FuzzDecodeResult(f *testing.F) {
	fx := loadFixture(f)
	envs, payloads := vectorSeeds(f, protocol.TypeResult)
	for _, e := range envs {
		f.Add(e)
	}
	for _, p := range payloads {
		f.Add(p)
	}
	f.Add([]byte(`{"v":1,"commandId":"a","code":"rejected_by_dc","message":"m","dcReason":"history","receivedAt":"2025-06-01T12:00:00Z","completedAt":"2025-06-01T12:00:00Z"}`))
	f.Add([]byte(`{"v":1,"commandId":"a","code":"policy_violation","message":"m","violations":[{"rule":"r","message":"m","fields":{"a":1e999}}],"receivedAt":"2025-06-01T12:00:00Z","completedAt":"2025-06-01T12:00:00Z"}`))
	f.Add([]byte(`{"v":2,"commandId":"a","commandDigest":"BwAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","code":"succeeded","message":"m","policy":{"minLength":7,"maxLength":256,"complexity":true,"complexityRule":"3 of 5","historyLength":24,"minAge":86400,"maxAge":0,"nextChangeAt":"2025-06-02T12:00:00Z","source":"fine_grained","org":{"minLength":12,"banned":true,"breached":false}},"receivedAt":"2025-06-01T12:00:00Z","completedAt":"2025-06-01T12:00:00Z"}`))
	keys := fx.connectorResultKeys()
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := protocol.VerifyResult(data, keys)
		checkErr(t, err)
		r, err := protocol.ParseResult(data)
		checkErr(t, err)
		if err == nil {
			// A valid result re-signs and verifies.
			raw, err := protocol.SignResult(r, fx.connA.SigningKey())
			if err != nil {
				t.Fatalf("valid result does not sign: %v", err)
			}
			if _, err := protocol.VerifyResult(raw, keys); err != nil {
				t.Fatalf("re-signed result does not verify: %v", err)
			}
		}
	})
}

// FuzzOpen fuzzes the sealed secret: enc, new and old ciphertexts and the
// suite identifiers, in a command whose other fields are valid.
func FuzzOpen(f *testing.F) {
	fx := loadFixture(f)
	c := baseCommand(protocol.OpChange)
	if err := protocol.Seal(&c, fx.connA.Public().SealKey(), protocol.DefaultSuite(), protocol.SecretFromString(pwNew), protocol.SecretFromString(pwOld)); err != nil {
		f.Fatal(err)
	}
	s := c.Secret
	f.Add(s.KEM, s.KDF, s.AEAD, mustB64(f, s.Enc), mustB64(f, s.New), mustB64(f, s.Old))
	f.Add(s.KEM, s.KDF, s.AEAD, mustB64(f, s.Enc)[:10], mustB64(f, s.New), mustB64(f, s.Old))
	f.Add(protocol.KEMX25519, s.KDF, protocol.AEADChaCha20, make([]byte, 32), make([]byte, 16), []byte{})
	openKeys := protocol.OpenKeys{fx.connA.KID: fx.connA.HPKE, "x25519": mustX25519(f)}
	f.Fuzz(func(t *testing.T, kem, kdf, aead uint16, enc, ctNew, ctOld []byte) {
		cc := c
		cc.Secret = &protocol.Sealed{KID: fx.connA.KID, KEM: kem, KDF: kdf, AEAD: aead, Enc: b64(enc), New: b64(ctNew), Old: b64(ctOld)}
		if kem == protocol.KEMX25519 {
			cc.Secret.KID = "x25519"
		}
		sec, err := cc.Open(openKeys)
		if err != nil {
			var pe *protocol.Error
			if !errors.As(err, &pe) || pe.Code != protocol.CodeInvalidCommand {
				t.Fatalf("untyped or wrong code: %v", err)
			}
			noSecret(t, err.Error())
			return
		}
		defer sec.Zero()
		if err := protocol.ValidatePassword(sec.New); err != nil {
			t.Fatalf("opened an invalid password: %v", err)
		}
	})
}
