package protocol_test

import (
	"bytes"
	"context"
	"crypto/hpke"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/adwriteback/adwriteback/relay/keys"
	"github.com/adwriteback/adwriteback/relay/protocol"
)

func TestRoundTripEveryOp(t *testing.T) {
	f := loadFixture(t)
	for _, op := range []protocol.Op{protocol.OpReset, protocol.OpChange, protocol.OpUnlock, protocol.OpCheck} {
		t.Run(string(op), func(t *testing.T) {
			c := baseCommand(op)
			raw := buildCommand(t, f, c)
			got, err := receive(f.receiver(testNow), raw)
			if err != nil {
				t.Fatal(err)
			}
			defer got.Secrets.Zero()
			if got.ID != c.ID || got.Op != op || got.User != c.User || got.Options != c.Options || got.Actor != c.Actor ||
				!got.IssuedAt.Equal(c.IssuedAt.Time) || !got.ExpiresAt.Equal(c.ExpiresAt.Time) {
				t.Fatalf("decoded command differs: %+v", got.Command)
			}
			if got.SignerKID != f.sender.KID {
				t.Fatalf("signer %q", got.SignerKID)
			}
			wantNew, wantOld := "", ""
			if op.HasSecret() {
				wantNew = pwNew
			}
			if op == protocol.OpChange {
				wantOld = pwOld
			}
			if string(got.Secrets.New.Bytes()) != wantNew || string(got.Secrets.Old.Bytes()) != wantOld {
				t.Fatal("opened secrets differ")
			}
		})
	}
}

func TestRoundTripSuitesAndKEMs(t *testing.T) {
	f := loadFixture(t)
	for _, kem := range []uint16{protocol.KEMMLKEM768X25519, protocol.KEMMLKEM768, protocol.KEMX25519} {
		for _, aead := range []hpke.AEAD{hpke.AES256GCM(), hpke.ChaCha20Poly1305()} {
			t.Run(fmt.Sprintf("kem%04x-aead%d", kem, aead.ID()), func(t *testing.T) {
				ck, err := keys.GenerateConnector(kem, testNow)
				if err != nil {
					t.Fatal(err)
				}
				c := baseCommand(protocol.OpReset)
				suite := protocol.Suite{KDF: hpke.HKDFSHA256(), AEAD: aead}
				if err := protocol.Seal(&c, ck.Public().SealKey(), suite, protocol.SecretFromString(pwNew), protocol.Secret{}); err != nil {
					t.Fatal(err)
				}
				if c.Secret.KEM != kem || c.Secret.AEAD != aead.ID() {
					t.Fatalf("suite on the wire: %+v", c.Secret)
				}
				raw, err := protocol.SignCommand(&c, f.sender.SigningKey())
				if err != nil {
					t.Fatal(err)
				}
				got, err := receive(f.receiver(testNow, ck), raw)
				if err != nil {
					t.Fatal(err)
				}
				if string(got.Secrets.New.Bytes()) != pwNew {
					t.Fatal("wrong password")
				}
			})
		}
	}
}

// TestSealedLengthHidesPassword: every password seals to the same length.
func TestSealedLengthHidesPassword(t *testing.T) {
	f := loadFixture(t)
	lengths := map[int]bool{}
	for _, pw := range []string{"a", pwNew, strings.Repeat("é", 200), strings.Repeat("x", 256)} {
		c := baseCommand(protocol.OpReset)
		if err := protocol.Seal(&c, f.connA.Public().SealKey(), protocol.DefaultSuite(), protocol.SecretFromString(pw), protocol.Secret{}); err != nil {
			t.Fatal(err)
		}
		lengths[len(c.Secret.New)] = true
	}
	if len(lengths) != 1 {
		t.Fatalf("ciphertext lengths vary with the password: %v", lengths)
	}
}

// leafPaths lists the paths of every scalar in a decoded JSON object.
func leafPaths(m map[string]any, prefix []string, out *[][]string) {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		p := append(append([]string(nil), prefix...), k)
		if sub, ok := m[k].(map[string]any); ok {
			leafPaths(sub, p, out)
			continue
		}
		*out = append(*out, p)
	}
}

func setPath(m map[string]any, path []string, mutate func(any) any) {
	for _, k := range path[:len(path)-1] {
		m = m[k].(map[string]any)
	}
	last := path[len(path)-1]
	m[last] = mutate(m[last])
}

func mutateValue(v any) any {
	switch x := v.(type) {
	case string:
		if x == "" {
			return "x"
		}
		b := []byte(x)
		b[len(b)/2] ^= 0x01
		return string(b)
	case float64:
		return x + 1
	case bool:
		return !x
	}
	panic(fmt.Sprintf("unexpected %T", v))
}

// TestTamperEveryField changes every field of a signed command (keeping the
// signature) and requires the signature check to fail; it also flips every
// byte of the payload and every field of the envelope.
func TestTamperEveryField(t *testing.T) {
	f := loadFixture(t)
	raw := buildCommand(t, f, baseCommand(protocol.OpChange))
	if _, err := protocol.VerifyCommand(raw, f.senders()); err != nil {
		t.Fatal(err)
	}
	env, payload := splitEnvelope(t, raw)

	var m map[string]any
	if err := json.Unmarshal(payload, &m); err != nil {
		t.Fatal(err)
	}
	var paths [][]string
	leafPaths(m, nil, &paths)
	if len(paths) < 15 {
		t.Fatalf("only %d leaves", len(paths))
	}
	for _, p := range paths {
		t.Run("payload."+strings.Join(p, "."), func(t *testing.T) {
			var mm map[string]any
			json.Unmarshal(payload, &mm)
			setPath(mm, p, mutateValue)
			np, _ := json.Marshal(mm)
			_, err := protocol.VerifyCommand(signRawWithSig(t, cloneMap(env), np), f.senders())
			wantKind(t, err, protocol.ErrBadSignature)
		})
	}
	t.Run("payload.every-byte", func(t *testing.T) {
		for i := range payload {
			p := bytes.Clone(payload)
			p[i] ^= 0x20
			_, err := protocol.VerifyCommand(signRawWithSig(t, cloneMap(env), p), f.senders())
			if !errors.Is(err, protocol.ErrBadSignature) {
				t.Fatalf("byte %d: %v", i, err)
			}
		}
	})
	t.Run("payload.reserialised", func(t *testing.T) {
		// Same JSON value, different bytes: the signature is over bytes.
		var buf bytes.Buffer
		json.Indent(&buf, payload, "", " ")
		_, err := protocol.VerifyCommand(signRawWithSig(t, cloneMap(env), buf.Bytes()), f.senders())
		wantKind(t, err, protocol.ErrBadSignature)
	})
	cases := []struct {
		name   string
		mutate func(e map[string]any)
		kind   error
	}{
		{"sig-bit", func(e map[string]any) {
			// One bit of the signature itself (flipping a bit of its base64
			// text may leave the alphabet, a different failure).
			sig, err := base64Std.DecodeString(e["sig"].(string))
			if err != nil {
				t.Fatal(err)
			}
			sig[3] ^= 0x01
			e["sig"] = b64(sig)
		}, protocol.ErrBadSignature},
		{"sig-other-key", func(e map[string]any) {
			k := f.other.SigningKey()
			e["sig"] = b64(ed25519Sign(k, protocol.SigningInput("command", payload)))
		}, protocol.ErrBadSignature},
		{"sig-as-result", func(e map[string]any) {
			k := f.sender.SigningKey()
			e["sig"] = b64(ed25519Sign(k, protocol.SigningInput("result", payload)))
		}, protocol.ErrBadSignature},
		{"kid-unknown", func(e map[string]any) { e["kid"] = f.other.KID }, protocol.ErrUnknownSigner},
		{"kid-empty", func(e map[string]any) { e["kid"] = "" }, protocol.ErrUnsigned},
		{"sig-missing", func(e map[string]any) { delete(e, "sig") }, protocol.ErrUnsigned},
		{"sig-short", func(e map[string]any) { e["sig"] = b64([]byte("short")) }, protocol.ErrBadSignature},
		{"type", func(e map[string]any) { e["type"] = "result" }, protocol.ErrInvalidField},
		{"v", func(e map[string]any) { e["v"] = 3 }, protocol.ErrUnsupportedVersion},
		// A v2 payload in a v1 envelope: signed, but the versions differ.
		{"v-differs", func(e map[string]any) { e["v"] = 1 }, protocol.ErrInvalidField},
		{"extra", func(e map[string]any) { e["note"] = "hi" }, protocol.ErrUnknownField},
	}
	for _, tc := range cases {
		t.Run("envelope."+tc.name, func(t *testing.T) {
			e := cloneMap(env)
			tc.mutate(e)
			b, _ := json.Marshal(e)
			_, err := protocol.VerifyCommand(b, f.senders())
			wantKind(t, err, tc.kind)
		})
	}
}

func cloneMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// TestSecretBoundToCommand: a sealed secret moved into another, validly
// signed command does not open.
func TestSecretBoundToCommand(t *testing.T) {
	f := loadFixture(t)
	orig := baseCommand(protocol.OpReset)
	if err := protocol.Seal(&orig, f.connA.Public().SealKey(), protocol.DefaultSuite(), protocol.SecretFromString(pwNew), protocol.Secret{}); err != nil {
		t.Fatal(err)
	}
	changes := map[string]func(c *protocol.Command){
		"id":     func(c *protocol.Command) { c.ID = "another-id" },
		"op":     func(c *protocol.Command) { c.Op = protocol.OpCheck; c.Options = protocol.Options{} },
		"user":   func(c *protocol.Command) { c.User.UPN = "mallory@corp.example.com" },
		"kind":   func(c *protocol.Command) { c.User = protocol.UserRef{SAM: "ada.lovelace", Domain: c.User.Domain} },
		"domain": func(c *protocol.Command) { c.User.Domain = "other.example.com" },
	}
	for name, change := range changes {
		t.Run(name, func(t *testing.T) {
			c := orig
			s := *orig.Secret
			c.Secret = &s
			change(&c)
			raw, err := protocol.SignCommand(&c, f.sender.SigningKey())
			if err != nil {
				t.Fatal(err)
			}
			_, err = receive(f.receiver(testNow), raw)
			pe := wantKind(t, err, protocol.ErrDecrypt)
			if pe.Code != protocol.CodeInvalidCommand || pe.CommandID != c.ID {
				t.Fatalf("code %s id %q", pe.Code, pe.CommandID)
			}
		})
	}
	t.Run("new-and-old-swapped", func(t *testing.T) {
		c := baseCommand(protocol.OpChange)
		if err := protocol.Seal(&c, f.connA.Public().SealKey(), protocol.DefaultSuite(), protocol.SecretFromString(pwNew), protocol.SecretFromString(pwOld)); err != nil {
			t.Fatal(err)
		}
		c.Secret.New, c.Secret.Old = c.Secret.Old, c.Secret.New
		raw, _ := protocol.SignCommand(&c, f.sender.SigningKey())
		_, err := receive(f.receiver(testNow), raw)
		wantKind(t, err, protocol.ErrDecrypt)
	})
}

func TestWrongConnectorKey(t *testing.T) {
	f := loadFixture(t)
	raw := buildCommand(t, f, baseCommand(protocol.OpReset)) // sealed to A
	_, err := receive(f.receiver(testNow, f.connB), raw)
	wantKind(t, err, protocol.ErrUnknownRecipient)

	// Sealed to A but labelled B (and validly signed): does not open with B.
	c := baseCommand(protocol.OpReset)
	if err := protocol.Seal(&c, f.connA.Public().SealKey(), protocol.DefaultSuite(), protocol.SecretFromString(pwNew), protocol.Secret{}); err != nil {
		t.Fatal(err)
	}
	c.Secret.KID = f.connB.KID
	raw, _ = protocol.SignCommand(&c, f.sender.SigningKey())
	_, err = receive(f.receiver(testNow, f.connA, f.connB), raw)
	wantKind(t, err, protocol.ErrDecrypt)

	// A KEM id that does not match the key.
	c = baseCommand(protocol.OpReset)
	protocol.Seal(&c, f.connA.Public().SealKey(), protocol.DefaultSuite(), protocol.SecretFromString(pwNew), protocol.Secret{})
	c.Secret.KEM = protocol.KEMX25519
	raw, _ = protocol.SignCommand(&c, f.sender.SigningKey())
	_, err = receive(f.receiver(testNow), raw)
	wantKind(t, err, protocol.ErrDecrypt)
}

func TestKeyRotation(t *testing.T) {
	f := loadFixture(t)
	rcv := f.receiver(testNow, f.connA, f.connB)
	for i, to := range []*keys.ConnectorPrivate{f.connA, f.connB} {
		c := baseCommand(protocol.OpReset)
		c.ID = fmt.Sprintf("rotation-%d", i)
		got, err := receive(rcv, buildCommand(t, f, c, to))
		if err != nil {
			t.Fatalf("sealed to %s: %v", to.KID, err)
		}
		if got.Secret.KID != to.KID || string(got.Secrets.New.Bytes()) != pwNew {
			t.Fatalf("opened with %s", got.Secret.KID)
		}
	}
	// After A is retired, commands still sealed to A are refused clearly.
	c := baseCommand(protocol.OpReset)
	c.ID = "rotation-late"
	_, err := receive(f.receiver(testNow, f.connB), buildCommand(t, f, c, f.connA))
	wantKind(t, err, protocol.ErrUnknownRecipient)
}

func TestTimeChecks(t *testing.T) {
	f := loadFixture(t)
	c := baseCommand(protocol.OpReset) // issued now-10s, expires now+5m
	raw := buildCommand(t, f, c)
	skew := protocol.DefaultSkew
	cases := []struct {
		name string
		now  time.Time
		kind error // nil = accepted
	}{
		{"at-issue", c.IssuedAt.Time, nil},
		{"skew-before-issue", c.IssuedAt.Add(-skew), nil},
		{"beyond-skew-before-issue", c.IssuedAt.Add(-skew - time.Second), protocol.ErrNotYetValid},
		{"after-expiry-within-skew", c.ExpiresAt.Add(skew - time.Millisecond), nil},
		{"expiry-plus-skew", c.ExpiresAt.Add(skew), protocol.ErrExpired},
		{"long-expired", c.ExpiresAt.Add(24 * time.Hour), protocol.ErrExpired},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := receive(f.receiver(tc.now), raw)
			if tc.kind == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			pe := wantKind(t, err, tc.kind)
			if pe.Code != protocol.CodeExpired || pe.CommandID != c.ID {
				t.Fatalf("code %s, id %q", pe.Code, pe.CommandID)
			}
		})
	}
	t.Run("lifetime-too-long", func(t *testing.T) {
		c := baseCommand(protocol.OpReset)
		c.ExpiresAt = protocol.At(c.IssuedAt.Add(protocol.DefaultMaxLifetime + time.Second))
		_, err := receive(f.receiver(testNow), buildCommand(t, f, c))
		wantKind(t, err, protocol.ErrInvalidField)
	})
	t.Run("custom-skew", func(t *testing.T) {
		r := f.receiver(c.ExpiresAt.Add(10 * time.Second))
		r.Skew = 5 * time.Second
		_, err := receive(r, raw)
		wantKind(t, err, protocol.ErrExpired)
	})
}

func TestReplay(t *testing.T) {
	f := loadFixture(t)
	rcv := f.receiver(testNow)
	c := baseCommand(protocol.OpReset)
	raw := buildCommand(t, f, c)
	if _, err := receive(rcv, raw); err != nil {
		t.Fatal(err)
	}
	_, err := receive(rcv, raw)
	pe := wantKind(t, err, protocol.ErrReplayed)
	if pe.CommandID != c.ID || pe.Code != protocol.CodeInvalidCommand {
		t.Fatalf("id %q code %s", pe.CommandID, pe.Code)
	}
	// Same id, freshly sealed (different bytes): a conflict, not a redelivery.
	_, err = receive(rcv, buildCommand(t, f, c))
	wantKind(t, err, protocol.ErrIDConflict)

	// A command that fails a check does not consume its id.
	rcv2 := f.receiver(testNow, f.connB)
	if _, err := receive(rcv2, raw); !errors.Is(err, protocol.ErrUnknownRecipient) {
		t.Fatal(err)
	}
	rcv2.Keys[f.connA.KID] = f.connA.HPKE
	if _, err := receive(rcv2, raw); err != nil {
		t.Fatalf("id consumed by a failed attempt: %v", err)
	}
}

type failingCache struct{}

func (failingCache) Claim(context.Context, string, [32]byte, time.Time) (protocol.ClaimStatus, error) {
	return 0, errors.New("disk on fire")
}

func TestReplayCacheFailureIsTransient(t *testing.T) {
	f := loadFixture(t)
	rcv := f.receiver(testNow)
	rcv.Replay = failingCache{}
	_, err := receive(rcv, buildCommand(t, f, baseCommand(protocol.OpReset)))
	pe := wantKind(t, err, protocol.ErrReplayCache)
	if pe.Code != protocol.CodeTransient {
		t.Fatalf("code %s", pe.Code)
	}
}

func TestMemoryReplayCacheExpiry(t *testing.T) {
	now := testNow
	m := protocol.NewMemoryReplayCache(func() time.Time { return now }, 2)
	ctx := context.Background()
	d1, d2 := [32]byte{1}, [32]byte{2}
	claim := func(id string, d [32]byte, until time.Time) protocol.ClaimStatus {
		t.Helper()
		s, err := m.Claim(ctx, id, d, until)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if claim("a", d1, now.Add(time.Minute)) != protocol.ClaimNew {
		t.Fatal("first claim")
	}
	if claim("a", d1, now.Add(time.Minute)) != protocol.ClaimDuplicate {
		t.Fatal("duplicate")
	}
	if claim("a", d2, now.Add(time.Minute)) != protocol.ClaimConflict {
		t.Fatal("conflict")
	}
	if claim("b", d1, now.Add(time.Hour)) != protocol.ClaimNew {
		t.Fatal("b")
	}
	// Full of live ids: fail closed.
	if _, err := m.Claim(ctx, "c", d1, now.Add(time.Hour)); err == nil {
		t.Fatal("full cache accepted a new id")
	}
	now = now.Add(2 * time.Minute) // "a" has expired, "b" has not
	if claim("a", d2, now.Add(time.Minute)) != protocol.ClaimNew {
		t.Fatal("expired id not forgotten")
	}
	if _, err := m.Claim(ctx, "c", d1, now.Add(time.Hour)); err == nil {
		t.Fatal("full cache accepted a new id")
	}
	now = now.Add(2 * time.Hour) // everything has expired
	if claim("c", d1, now.Add(time.Hour)) != protocol.ClaimNew {
		t.Fatal("c")
	}
	if m.Len() > 2 {
		t.Fatalf("cache holds %d ids, bound is 2", m.Len())
	}
}

func TestOversize(t *testing.T) {
	f := loadFixture(t)
	t.Run("envelope", func(t *testing.T) {
		big := make([]byte, protocol.MaxEnvelopeSize+1)
		for i := range big {
			big[i] = ' '
		}
		_, err := protocol.VerifyCommand(big, f.senders())
		wantKind(t, err, protocol.ErrTooLarge)
	})
	t.Run("envelope-10MB-stream", func(t *testing.T) {
		r := &countingReader{n: 10 << 20}
		_, err := protocol.ReadEnvelope(r)
		wantKind(t, err, protocol.ErrTooLarge)
		if r.read > protocol.MaxEnvelopeSize+1 {
			t.Fatalf("read %d bytes of a 10 MB stream", r.read)
		}
	})
	t.Run("signed-large-payload", func(t *testing.T) {
		payload := []byte(`{"v":1,"id":"` + strings.Repeat("x", 50000) + `"}`)
		_, err := protocol.VerifyCommand(signRaw(t, protocol.TypeCommand, payload, f.sender.SigningKey()), f.senders())
		wantKind(t, err, protocol.ErrTooLarge)
	})
	t.Run("password-10MB-seal", func(t *testing.T) {
		c := baseCommand(protocol.OpReset)
		err := protocol.Seal(&c, f.connA.Public().SealKey(), protocol.DefaultSuite(), protocol.NewSecret(bytes.Repeat([]byte("a"), 10<<20)), protocol.Secret{})
		wantKind(t, err, protocol.ErrBadSecret)
	})
	t.Run("password-10MB-stdin", func(t *testing.T) {
		r := &countingReader{n: 10 << 20}
		_, err := protocol.ReadSecret(r)
		wantKind(t, err, protocol.ErrBadSecret)
		if r.read > 4096 {
			t.Fatalf("read %d bytes", r.read)
		}
	})
	t.Run("password-utf16-limit", func(t *testing.T) {
		// 128 supplementary characters = 256 UTF-16 units: accepted.
		ok := strings.Repeat("😀", 128)
		if err := protocol.ValidatePassword(protocol.SecretFromString(ok)); err != nil {
			t.Fatal(err)
		}
		// 257 units.
		err := protocol.ValidatePassword(protocol.SecretFromString(ok + "a"))
		wantKind(t, err, protocol.ErrBadSecret)
		// 256 three-byte runes = 768 bytes: accepted, and seals/opens.
		c := baseCommand(protocol.OpReset)
		pw := strings.Repeat("€", 256)
		if err := protocol.Seal(&c, f.connA.Public().SealKey(), protocol.DefaultSuite(), protocol.SecretFromString(pw), protocol.Secret{}); err != nil {
			t.Fatal(err)
		}
		raw, _ := protocol.SignCommand(&c, f.sender.SigningKey())
		got, err := receive(f.receiver(testNow), raw)
		if err != nil || string(got.Secrets.New.Bytes()) != pw {
			t.Fatalf("max password: %v", err)
		}
	})
	t.Run("oversized-ciphertext", func(t *testing.T) {
		raw := resignPayload(t, f, buildCommand(t, f, baseCommand(protocol.OpReset)), func(m map[string]any) {
			m["secret"].(map[string]any)["new"] = b64(make([]byte, 10000))
		})
		_, err := receive(f.receiver(testNow), raw)
		wantKind(t, err, protocol.ErrTooLarge)
	})
}

type countingReader struct{ n, read int }

func (r *countingReader) Read(p []byte) (int, error) {
	if r.read >= r.n {
		return 0, io.EOF
	}
	k := min(len(p), r.n-r.read)
	for i := range p[:k] {
		p[i] = 'a'
	}
	r.read += k
	return k, nil
}

func TestStrictDecoding(t *testing.T) {
	f := loadFixture(t)
	raw := buildCommand(t, f, baseCommand(protocol.OpReset))
	_, payload := splitEnvelope(t, raw)
	ps := string(payload)
	replace := func(old, new string) []byte {
		if !strings.Contains(ps, old) {
			t.Fatalf("payload has no %q", old)
		}
		return []byte(strings.Replace(ps, old, new, 1))
	}
	cases := []struct {
		name    string
		payload []byte
		kind    error
	}{
		{"unknown-top", replace(`"v":2,`, `"v":2,"extra":true,`), protocol.ErrUnknownField},
		{"unknown-nested", replace(`"domain":`, `"ou":"x","domain":`), protocol.ErrUnknownField},
		{"case-variant", replace(`"id":"3f1c`, `"ID":"3f1c`), protocol.ErrUnknownField},
		{"duplicate", replace(`"v":2,`, `"v":2,"v":1,`), protocol.ErrMalformed},
		{"duplicate-id-case", replace(`"v":2,`, `"v":2,"Id":"x",`), protocol.ErrUnknownField},
		{"null", replace(`"options":{`, `"options":null,"x":{`), protocol.ErrInvalidField},
		{"trailing", append(append([]byte{}, payload...), []byte(` {}`)...), protocol.ErrMalformed},
		{"trailing-garbage", append(append([]byte{}, payload...), '}'), protocol.ErrMalformed},
		{"not-object", []byte(`[1,2]`), protocol.ErrMalformed},
		{"empty", []byte(``), protocol.ErrMalformed},
		{"bad-utf8", replace(`sspr-session`, "sspr-\xff-session"), protocol.ErrMalformed},
		{"version-3", replace(`"v":2,`, `"v":3,`), protocol.ErrUnsupportedVersion},
		{"version-float", replace(`"v":2,`, `"v":2.5,`), protocol.ErrInvalidField},
		{"version-string", replace(`"v":2,`, `"v":"1",`), protocol.ErrInvalidField},
		{"timestamp-offset", replace(`Z"`, `+00:00"`), protocol.ErrInvalidField},
		{"timestamp-garbage", replace(`"issuedAt":"`, `"issuedAt":"x`), protocol.ErrInvalidField},
		{"deep", replace(`"options":{`, `"options":{"mustChange":{"a":{"b":{"c":{}}}},"x":{`), protocol.ErrInvalidField},
		{"bad-b64-enc", replace(`"enc":"`, `"enc":"!!`), protocol.ErrMalformed},
		{"b64-linebreak", replace(`"enc":"`, `"enc":"\n`), protocol.ErrMalformed},
		{"bad-b64-new", replace(`"new":"`, `"new":"*`), protocol.ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := receive(f.receiver(testNow), signRaw(t, protocol.TypeCommand, tc.payload, f.sender.SigningKey()))
			wantKind(t, err, tc.kind)
			_, err = protocol.ParseCommand(tc.payload)
			wantKind(t, err, tc.kind)
		})
	}
	t.Run("bad-b64-envelope", func(t *testing.T) {
		env, _ := splitEnvelope(t, raw)
		for _, field := range []string{"sig", "payload"} {
			for _, bad := range []string{"%%%", "QUJD\nRA==", "QUJDRA=", "QUJDRB=="} {
				e := cloneMap(env)
				e[field] = bad
				b, _ := json.Marshal(e)
				_, err := protocol.VerifyCommand(b, f.senders())
				if !errors.Is(err, protocol.ErrMalformed) && !errors.Is(err, protocol.ErrBadSignature) {
					t.Fatalf("%s=%q: %v", field, bad, err)
				}
			}
		}
	})
}

func TestTruncatedCiphertext(t *testing.T) {
	f := loadFixture(t)
	raw := buildCommand(t, f, baseCommand(protocol.OpChange))
	for _, field := range []string{"enc", "new", "old"} {
		for _, keep := range []int{0, 1, 15, 16, 17} {
			t.Run(fmt.Sprintf("%s-%d", field, keep), func(t *testing.T) {
				r := resignPayload(t, f, raw, func(m map[string]any) {
					s := m["secret"].(map[string]any)
					b := mustB64(t, s[field].(string))
					if keep == 0 {
						keep = len(b) - 1
					}
					s[field] = b64(b[:min(keep, len(b)-1)])
				})
				_, err := receive(f.receiver(testNow), r)
				wantKind(t, err, protocol.ErrDecrypt)
			})
		}
	}
}

func TestCommandValidation(t *testing.T) {
	f := loadFixture(t)
	good := baseCommand(protocol.OpReset)
	cases := map[string]func(c *protocol.Command){
		"no-id":          func(c *protocol.Command) { c.ID = "" },
		"id-space":       func(c *protocol.Command) { c.ID = "a b" },
		"id-long":        func(c *protocol.Command) { c.ID = strings.Repeat("a", 129) },
		"op":             func(c *protocol.Command) { c.Op = "delete" },
		"no-user":        func(c *protocol.Command) { c.User = protocol.UserRef{} },
		"two-users":      func(c *protocol.Command) { c.User.SAM = "ada" },
		"guid":           func(c *protocol.Command) { c.User = protocol.UserRef{ObjectGUID: "not-a-guid"} },
		"immutable":      func(c *protocol.Command) { c.User = protocol.UserRef{ImmutableID: "AAAA"} },
		"upn":            func(c *protocol.Command) { c.User = protocol.UserRef{UPN: "ada"} },
		"upn-space":      func(c *protocol.Command) { c.User = protocol.UserRef{UPN: "a da@x.com"} },
		"sam":            func(c *protocol.Command) { c.User = protocol.UserRef{SAM: "a/b"} },
		"domain":         func(c *protocol.Command) { c.User.Domain = "bad domain" },
		"actor-kind":     func(c *protocol.Command) { c.Actor.Kind = "robot" },
		"actor-id":       func(c *protocol.Command) { c.Actor.ID = "" },
		"actor-ctrl":     func(c *protocol.Command) { c.Actor.ID = "a\x07" },
		"no-issued":      func(c *protocol.Command) { c.IssuedAt = protocol.Timestamp{} },
		"no-expiry":      func(c *protocol.Command) { c.ExpiresAt = protocol.Timestamp{} },
		"expiry-order":   func(c *protocol.Command) { c.ExpiresAt = c.IssuedAt },
		"options-change": func(c *protocol.Command) { c.Op = protocol.OpChange },
		"no-secret":      func(c *protocol.Command) { c.Secret = nil },
		"unlock-secret":  func(c *protocol.Command) { c.Op = protocol.OpUnlock; c.Options = protocol.Options{} },
		"old-on-reset":   func(c *protocol.Command) { c.Secret.Old = c.Secret.New },
		"kdf":            func(c *protocol.Command) { c.Secret.KDF = 2 },
		"aead":           func(c *protocol.Command) { c.Secret.AEAD = 1 },
		"kem":            func(c *protocol.Command) { c.Secret.KEM = 0x10 },
		"secret-kid":     func(c *protocol.Command) { c.Secret.KID = "bad kid" },
		"no-enc":         func(c *protocol.Command) { c.Secret.Enc = "" },
		"no-new":         func(c *protocol.Command) { c.Secret.New = "" },
	}
	if err := protocol.Seal(&good, f.connA.Public().SealKey(), protocol.DefaultSuite(), protocol.SecretFromString(pwNew), protocol.Secret{}); err != nil {
		t.Fatal(err)
	}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			c := good
			s := *good.Secret
			c.Secret = &s
			mutate(&c)
			err := c.Validate()
			if !errors.Is(err, protocol.ErrInvalidField) && !errors.Is(err, protocol.ErrMalformed) {
				t.Fatalf("got %v", err)
			}
			// The sender refuses to sign it, and a validly signed copy is
			// refused by the receiver with invalid_command.
			if _, err := protocol.SignCommand(&c, f.sender.SigningKey()); err == nil {
				t.Fatal("signed an invalid command")
			}
			payload, _ := json.Marshal(c)
			_, err = receive(f.receiver(testNow), signRaw(t, protocol.TypeCommand, payload, f.sender.SigningKey()))
			if protocol.CodeOf(err) != protocol.CodeInvalidCommand {
				t.Fatalf("code %s: %v", protocol.CodeOf(err), err)
			}
		})
	}
}

func TestSealRefusals(t *testing.T) {
	f := loadFixture(t)
	key := f.connA.Public().SealKey()
	c := baseCommand(protocol.OpUnlock)
	if err := protocol.Seal(&c, key, protocol.DefaultSuite(), protocol.SecretFromString(pwNew), protocol.Secret{}); err == nil {
		t.Fatal("sealed a secret into unlock")
	}
	c = baseCommand(protocol.OpChange)
	wantKind(t, protocol.Seal(&c, key, protocol.DefaultSuite(), protocol.SecretFromString(pwNew), protocol.Secret{}), protocol.ErrBadSecret)
	c = baseCommand(protocol.OpReset)
	wantKind(t, protocol.Seal(&c, key, protocol.DefaultSuite(), protocol.SecretFromString(""), protocol.Secret{}), protocol.ErrBadSecret)
	wantKind(t, protocol.Seal(&c, key, protocol.DefaultSuite(), protocol.SecretFromString("a\x00b"), protocol.Secret{}), protocol.ErrBadSecret)
	wantKind(t, protocol.Seal(&c, key, protocol.DefaultSuite(), protocol.NewSecret([]byte{0xff, 0xfe}), protocol.Secret{}), protocol.ErrBadSecret)
}

func mustB64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64Std.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
