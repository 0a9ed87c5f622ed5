package protocol_test

import (
	"crypto/hpke"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/adwriteback/adwriteback/relay/keys"
	"github.com/adwriteback/adwriteback/relay/protocol"
)

// ruleGen builds the rule vectors: for every rule of PROTOCOL.md §13's
// table, at least one message that keeps it (valid) and one that breaks
// it (invalid), each tagged with the rule's name.
type ruleGen struct {
	t  *testing.T
	f  fixture
	vs []vector
}

// The unlock payload most rule vectors mutate: no secret, so the vector
// is deterministic. Member order is the Go encoder's.
const (
	ruleIssued  = "2025-06-01T11:59:50Z"
	ruleExpires = "2025-06-01T12:05:00Z"
)

func unlockText(id string) string {
	return `{"v":2,"id":"` + id + `","op":"unlock","user":{"sam":"alovelace"},"actor":{"kind":"admin","id":"helpdesk-42"},` +
		`"issuedAt":"` + ruleIssued + `","expiresAt":"` + ruleExpires + `"}`
}

// edit replaces old (which must occur) in s once.
func (g *ruleGen) edit(s, old, new string) string {
	g.t.Helper()
	if !strings.Contains(s, old) {
		g.t.Fatalf("%q not in %s", old, s)
	}
	return strings.Replace(s, old, new, 1)
}

// signedText signs payload text as a command with the sender key.
func (g *ruleGen) signedText(payload string) []byte {
	return signRaw(g.t, protocol.TypeCommand, []byte(payload), g.f.sender.SigningKey())
}

// envText writes an envelope with raw member values (JSON fragments).
func envText(v, typ, kid, sig, payload string) string {
	return `{"v":` + v + `,"type":` + typ + `,"kid":` + kid + `,"sig":` + sig + `,"payload":` + payload + `}`
}

// goodEnv returns the parts of a correctly signed unlock envelope, as
// JSON fragments.
func (g *ruleGen) goodEnv(payload string) (v, typ, kid, sig, p string) {
	sig = b64(ed25519Sign(g.f.sender.SigningKey(), protocol.SigningInput(protocol.TypeCommand, []byte(payload))))
	return "2", `"command"`, `"` + g.f.sender.KID + `"`, `"` + sig + `"`, `"` + b64([]byte(payload)) + `"`
}

// cmd adds a command vector received at testNow by a connector holding
// key A.
func (g *ruleGen) cmd(name, desc string, rules []string, raw []byte, want vectorWant, opts ...func(*vector)) {
	v := commandVector(g.t, name, desc, testNow, []string{"a"}, raw, want)
	v.Rules = rules
	for _, o := range opts {
		o(&v)
	}
	g.vs = append(g.vs, v)
}

// bad is the want of an invalid vector: its kind; the settlement and
// code are filled in from the rule of §6 by settleOf when generating.
func bad(kind string) vectorWant { return vectorWant{Error: kind} }

func ok(id, op string) vectorWant { return vectorWant{ID: id, Op: op} }

func at(now time.Time) func(*vector)      { return func(v *vector) { v.Now = now } }
func after(names ...string) func(*vector) { return func(v *vector) { v.Prior = names } }

// makeRuleVectors makes the rule vectors of the current version.
func makeRuleVectors(t *testing.T, f fixture) []vector {
	g := &ruleGen{t: t, f: f}
	g.envelopeVectors()
	g.jsonVectors()
	g.memberVectors()
	g.timeVectors()
	g.secretVectors()
	g.transportVectors()
	g.resultVectors()
	return g.vs
}

func (g *ruleGen) envelopeVectors() {
	p := unlockText("rule-envelope")
	v, typ, kid, sig, pl := g.goodEnv(p)
	good := envText(v, typ, kid, sig, pl)
	pad := protocol.MaxEnvelopeSize - len(good)
	g.cmd("ok-envelope-65536-bytes", "an envelope of exactly 65 536 bytes (JSON whitespace before its closing brace)", []string{"envelope-size", "json-whitespace"},
		[]byte(good[:len(good)-1]+strings.Repeat(" ", pad)+"}"), ok("rule-envelope", "unlock"))
	g.cmd("envelope-65537-bytes", "one byte over the envelope limit", []string{"envelope-size"},
		[]byte(good[:len(good)-1]+strings.Repeat(" ", pad+1)+"}"), bad("too_large"))
	g.cmd("envelope-version-3", "envelope v 3", []string{"envelope-version"}, []byte(envText("3", typ, kid, sig, pl)), bad("unsupported_version"))
	g.cmd("envelope-version-string", `envelope v "2" (a string)`, []string{"envelope-version", "json-types"}, []byte(envText(`"2"`, typ, kid, sig, pl)), bad("invalid_field"))
	g.cmd("envelope-version-2.0", "envelope v 2.0 (an integer member written with a fraction)", []string{"envelope-version", "json-integers"},
		[]byte(envText("2.0", typ, kid, sig, pl)), bad("invalid_field"))
	g.cmd("envelope-type-result", "a command envelope whose type is result", []string{"envelope-type"}, []byte(envText(v, `"result"`, kid, sig, pl)), bad("invalid_field"))
	g.cmd("envelope-unsigned", "sig empty", []string{"envelope-signature"}, []byte(envText(v, typ, kid, `""`, pl)), bad("unsigned"))
	g.cmd("envelope-no-kid", "kid empty", []string{"envelope-signature"}, []byte(envText(v, typ, `""`, sig, pl)), bad("unsigned"))
	g.cmd("envelope-bad-kid", "kid with a character outside A-Z a-z 0-9 . _ -", []string{"envelope-signature", "kid"}, []byte(envText(v, typ, `"s-bad/kid"`, sig, pl)), bad("invalid_field"))
	g.cmd("envelope-unknown-signer", "signed by a sender key the connector does not hold", []string{"envelope-signature"},
		signRaw(g.t, protocol.TypeCommand, []byte(p), g.f.other.SigningKey()), bad("unknown_signer"))
	short := `"` + b64(make([]byte, 63)) + `"`
	g.cmd("envelope-sig-63-bytes", "a signature of 63 bytes", []string{"envelope-signature"}, []byte(envText(v, typ, kid, short, pl)), bad("bad_signature"))
	resultSig := `"` + b64(ed25519Sign(g.f.sender.SigningKey(), protocol.SigningInput(protocol.TypeResult, []byte(p)))) + `"`
	g.cmd("envelope-result-label", "signed over the result label instead of the command label", []string{"envelope-signature"},
		[]byte(envText(v, typ, kid, resultSig, pl)), bad("bad_signature"))
	g.cmd("envelope-unknown-member", "an envelope member not in §3", []string{"json-member-names"},
		[]byte(good[:len(good)-1]+`,"replyTo":"q"}`), bad("unknown_field"))
	g.cmd("envelope-duplicate-member", "kid given twice", []string{"json-duplicate"}, []byte(good[:len(good)-1]+`,"kid":`+kid+`}`), bad("malformed"))
	g.cmd("envelope-bad-utf8", "a byte 0xFF inside the envelope", []string{"json-utf8"}, []byte(envText(v, typ, "\"s-\xff\"", sig, pl)), bad("malformed"))
	g.cmd("envelope-trailing-data", "a second object after the envelope", []string{"json-one-object"}, []byte(good+"{}"), bad("malformed"))
	g.cmd("envelope-array", "an array instead of an object", []string{"json-one-object"}, []byte("["+good+"]"), bad("malformed"))
	lines := pl[:40] + `\r\n` + pl[40:]
	g.cmd("base64-line-break", "an escaped line break inside the payload's base64", []string{"base64"}, []byte(envText(v, typ, kid, sig, lines)), bad("malformed"))
	unpadded := strings.TrimRight(pl[:len(pl)-1], "=") + `"`
	if unpadded == pl {
		unpadded = pl[:len(pl)-2] + `"` // no padding to drop: cut a character instead
	}
	g.cmd("base64-no-padding", "the payload's base64 without its padding", []string{"base64"}, []byte(envText(v, typ, kid, sig, unpadded)), bad("malformed"))
	sigBits := sig[:len(sig)-4] + `B=="` // 64 bytes end in "==": a non-zero padding bit
	g.cmd("base64-padding-bits", "the signature's base64 with non-zero padding bits", []string{"base64"}, []byte(envText(v, typ, kid, sigBits, pl)), bad("malformed"))
}

func (g *ruleGen) jsonVectors() {
	id := "rule-json"
	p := unlockText(id)
	spaced := "{\n  \"v\": 2,\r\n\t\"id\" : \"" + id + "\"" + p[len(`{"v":2,"id":"`+id+`"`):] + " \n"
	g.cmd("ok-json-whitespace", "JSON whitespace (space, tab, CR, LF) between tokens and after the object", []string{"json-whitespace", "json-one-object"},
		g.signedText(spaced), ok(id, "unlock"))
	g.cmd("json-form-feed", "a form feed between tokens (not JSON whitespace)", []string{"json-whitespace"}, g.signedText(g.edit(p, `"v":2,`, "\"v\":2,\f")), bad("malformed"))
	g.cmd("json-nbsp", "a no-break space U+00A0 between tokens", []string{"json-whitespace"}, g.signedText(g.edit(p, `"v":2,`, "\"v\":2,\u00a0")), bad("malformed"))
	g.cmd("ok-json-non-ascii", "UTF-8 text and an escaped character in actor.id", []string{"json-utf8", "texts"},
		g.signedText(g.edit(p, `"helpdesk-42"`, `"José Müller 李 \u0041"`)), ok(id, "unlock"))
	g.cmd("json-bad-utf8", "a byte 0xFF inside actor.id", []string{"json-utf8"}, g.signedText(g.edit(p, `"helpdesk-42"`, "\"help\xffdesk\"")), bad("malformed"))
	g.cmd("json-surrogate-utf8", "a surrogate encoded directly in UTF-8 (ED A0 80: not UTF-8)", []string{"json-utf8", "json-surrogates"},
		g.signedText(g.edit(p, `"helpdesk-42"`, "\"a\xed\xa0\x80b\"")), bad("malformed"))
	g.cmd("ok-json-surrogate-pair", "an escaped surrogate pair (U+1F600) in actor.id", []string{"json-surrogates"},
		g.signedText(g.edit(p, `"helpdesk-42"`, `"a\ud83d\ude00b"`)), ok(id, "unlock"))
	g.cmd("json-lone-high-surrogate", `an escaped lone high surrogate \ud800 in actor.id`, []string{"json-surrogates"},
		g.signedText(g.edit(p, `"helpdesk-42"`, `"a\ud800b"`)), bad("malformed"))
	g.cmd("json-lone-low-surrogate", `an escaped lone low surrogate \udc00 in actor.id`, []string{"json-surrogates"},
		g.signedText(g.edit(p, `"helpdesk-42"`, `"a\udc00b"`)), bad("malformed"))
	g.cmd("json-trailing-data", "data after the payload object", []string{"json-one-object"}, g.signedText(p+"x"), bad("malformed"))
	g.cmd("json-duplicate-member", "the payload's op given twice", []string{"json-duplicate"}, g.signedText(g.edit(p, `"op":"unlock",`, `"op":"unlock","op":"unlock",`)), bad("malformed"))
	g.cmd("json-member-case", "a member name in another case (ID)", []string{"json-member-names"}, g.signedText(g.edit(p, `"id":`, `"ID":`)), bad("unknown_field"))
	g.cmd("json-member-escaped", `a member name with an escape ("\u006fp")`, []string{"json-member-names"}, g.signedText(g.edit(p, `"op":`, `"\u006fp":`)), bad("unknown_field"))
	g.cmd("json-unknown-member", "a member not in §4 (replyTo)", []string{"json-member-names"}, g.signedText(g.edit(p, `"op":`, `"replyTo":"q","op":`)), bad("unknown_field"))
	g.cmd("json-null", "user.domain null", []string{"json-null"}, g.signedText(g.edit(p, `"sam":"alovelace"`, `"sam":"alovelace","domain":null`)), bad("invalid_field"))
	g.cmd("json-too-deep", "arrays nested beyond depth 5", []string{"json-depth"}, g.signedText(g.edit(p, `"sam":"alovelace"`, `"sam":[[[[["x"]]]]]`)), bad("malformed"))
	g.cmd("json-bad-literal", "a literal that is not JSON (tru)", []string{"json-syntax"}, g.signedText(g.edit(p, `"kind":"admin"`, `"kind":tru`)), bad("malformed"))
	g.cmd("json-wrong-type", `v as a string "2" in the payload`, []string{"json-types"}, g.signedText(g.edit(p, `"v":2`, `"v":"2"`)), bad("invalid_field"))
	g.cmd("json-integer-fraction", "payload v 2.0", []string{"json-integers"}, g.signedText(g.edit(p, `"v":2`, `"v":2.0`)), bad("invalid_field"))
	g.cmd("json-integer-exponent", "payload v 2e0", []string{"json-integers"}, g.signedText(g.edit(p, `"v":2`, `"v":2e0`)), bad("invalid_field"))
	inV2 := func(payload string) []byte { // an envelope of v 2 whatever the payload's v
		return []byte(envText(g.goodEnv(payload)))
	}
	g.cmd("payload-version-3", "payload v 3 in an envelope of v 2", []string{"payload-version"}, inV2(g.edit(p, `"v":2`, `"v":3`)), bad("unsupported_version"))
	g.cmd("payload-version-mismatch", "payload v 1 in an envelope of v 2", []string{"payload-version"}, inV2(g.edit(p, `"v":2`, `"v":1`)), bad("invalid_field"))
	// Where the failing member is does not matter: the id is read from a
	// well-formed payload whatever failed.
	g.cmd("answerable-late-id", "a bad timestamp before the id: still answered to the id", []string{"timestamp", "answerable"},
		g.signedText(`{"issuedAt":"2025-06-01 11:59:50Z","v":2,"id":"`+id+`-late","op":"unlock","user":{"sam":"alovelace"},"actor":{"kind":"admin","id":"a"},"expiresAt":"`+ruleExpires+`"}`),
		bad("invalid_field"))
	g.cmd("answerable-no-id", "a well-formed payload without an id: nothing to answer", []string{"answerable"},
		g.signedText(g.edit(p, `"id":"`+id+`",`, ``)), bad("invalid_field"))
}

func (g *ruleGen) memberVectors() {
	p := unlockText("rule-member")
	with := func(old, new string) []byte { return g.signedText(g.edit(p, old, new)) }
	long := strings.Repeat("a", 100) + "0123456789.:_-ABCDEFGHIJKLMNOPQ"
	g.cmd("ok-id-128", "an id of 128 characters using every allowed kind", []string{"id"}, g.signedText(unlockText(long[:128])), ok(long[:128], "unlock"))
	g.cmd("id-129", "an id of 129 characters", []string{"id"}, g.signedText(unlockText(long[:128]+"x")), bad("invalid_field"))
	g.cmd("id-slash", "an id with a /", []string{"id"}, g.signedText(unlockText("rule/member")), bad("invalid_field"))
	g.cmd("op-unknown", "op describe-me", []string{"op"}, with(`"op":"unlock"`, `"op":"describe-me"`), bad("invalid_field"))
	g.cmd("user-none", "user {}", []string{"user-one"}, with(`{"sam":"alovelace"}`, `{}`), bad("invalid_field"))
	g.cmd("user-two", "user with sam and upn", []string{"user-one"}, with(`"sam":"alovelace"`, `"sam":"alovelace","upn":"ada@corp.example.com"`), bad("invalid_field"))
	g.cmd("ok-user-guid-upper", "objectGUID in upper case", []string{"user-guid"}, with(`"sam":"alovelace"`, `"objectGUID":"8E2F6A1C-3B4D-4E5F-9A0B-1C2D3E4F5A6B"`), ok("rule-member", "unlock"))
	g.cmd("user-guid-braces", "objectGUID in braces", []string{"user-guid"}, with(`"sam":"alovelace"`, `"objectGUID":"{8e2f6a1c-3b4d-4e5f-9a0b-1c2d3e4f5a6b}"`), bad("invalid_field"))
	g.cmd("ok-user-immutable-id", "immutableId, 16 bytes", []string{"user-immutable-id"}, with(`"sam":"alovelace"`, `"immutableId":"HBoGe8dNQ0WDq9U0Y7Q2zg=="`), ok("rule-member", "unlock"))
	g.cmd("user-immutable-id-15", "immutableId of 15 bytes", []string{"user-immutable-id"}, with(`"sam":"alovelace"`, `"immutableId":"HBoGe8dNQ0WDq9U0Y7Q2"`), bad("invalid_field"))
	g.cmd("user-immutable-id-line-break", "immutableId with an escaped line break", []string{"user-immutable-id", "base64"},
		with(`"sam":"alovelace"`, `"immutableId":"HBoGe8dNQ0WD\nq9U0Y7Q2zg=="`), bad("invalid_field"))
	g.cmd("ok-user-upn", "upn with a domain", []string{"user-upn", "user-domain"}, with(`"sam":"alovelace"`, `"upn":"ada@corp.example.com","domain":"corp.example.com"`), ok("rule-member", "unlock"))
	g.cmd("user-upn-space", "upn with a space", []string{"user-upn"}, with(`"sam":"alovelace"`, `"upn":"ada lovelace@corp.example.com"`), bad("invalid_field"))
	g.cmd("user-upn-no-at", "upn without @", []string{"user-upn"}, with(`"sam":"alovelace"`, `"upn":"ada"`), bad("invalid_field"))
	g.cmd("ok-user-sam", "sam with a dot and a dash", []string{"user-sam"}, with(`"sam":"alovelace"`, `"sam":"a.love-lace"`), ok("rule-member", "unlock"))
	g.cmd("user-sam-slash", "sam with a /", []string{"user-sam"}, with(`"sam":"alovelace"`, `"sam":"a/b"`), bad("invalid_field"))
	g.cmd("user-domain-dash", "domain with a label starting with -", []string{"user-domain"}, with(`"sam":"alovelace"`, `"sam":"alovelace","domain":"-corp.example.com"`), bad("invalid_field"))
	g.cmd("options-with-unlock", "options with op unlock", []string{"options"}, with(`"actor"`, `"options":{"unlock":true},"actor"`), bad("invalid_field"))
	g.cmd("options-type", "options.mustChange a string", []string{"options", "json-types"},
		with(`"op":"unlock"`, `"op":"reset","options":{"mustChange":"yes"}`), bad("invalid_field"))
	g.cmd("actor-kind", "actor.kind robot", []string{"actor"}, with(`"kind":"admin"`, `"kind":"robot"`), bad("invalid_field"))
	g.cmd("actor-id-257", "actor.id of 257 bytes", []string{"actor", "texts"}, with(`"helpdesk-42"`, `"`+strings.Repeat("é", 128)+`a"`), bad("invalid_field"))
	g.cmd("ok-actor-id-256", "actor.id of 256 bytes (128 two-byte characters)", []string{"actor", "texts"}, with(`"helpdesk-42"`, `"`+strings.Repeat("é", 128)+`"`), ok("rule-member", "unlock"))
	g.cmd("ok-text-format-char", "actor.id with U+200B (a format character, not a control character)", []string{"text-control"},
		with(`"helpdesk-42"`, `"help\u200bdesk"`), ok("rule-member", "unlock"))
	for _, cc := range []struct{ name, esc string }{{"c0", `\u0009`}, {"del", `\u007f`}, {"c1", `\u0085`}} {
		g.cmd("text-control-"+cc.name, "actor.id with the control character "+cc.esc, []string{"text-control"},
			with(`"helpdesk-42"`, `"help`+cc.esc+`desk"`), bad("invalid_field"))
	}
}

func (g *ruleGen) timeVectors() {
	p := unlockText("rule-time")
	with := func(old, new string) []byte { return g.signedText(g.edit(p, old, new)) }
	g.cmd("ok-timestamp-9-digits", "issuedAt with 9 fraction digits", []string{"timestamp"}, with(ruleIssued, "2025-06-01T11:59:50.123456789Z"), ok("rule-time", "unlock"))
	for _, c := range []struct{ name, ts string }{
		{"10-digits", "2025-06-01T11:59:50.1234567891Z"}, {"offset", "2025-06-01T11:59:50+00:00"},
		{"lower-case", "2025-06-01t11:59:50z"}, {"comma", "2025-06-01T11:59:50,5Z"}, {"no-seconds", "2025-06-01T11:59Z"},
	} {
		g.cmd("timestamp-"+c.name, "issuedAt "+c.ts, []string{"timestamp"}, with(ruleIssued, c.ts), bad("invalid_field"))
	}
	g.cmd("ok-lifetime-1h", "expiresAt − issuedAt exactly 1 h", []string{"lifetime"}, with(ruleExpires, "2025-06-01T12:59:50Z"), ok("rule-time", "unlock"))
	g.cmd("lifetime-1h-1s", "expiresAt − issuedAt 1 h 1 s", []string{"lifetime"}, with(ruleExpires, "2025-06-01T12:59:51Z"), bad("invalid_field"))
	g.cmd("expires-before-issued", "expiresAt equal to issuedAt", []string{"lifetime"}, with(ruleExpires, ruleIssued), bad("invalid_field"))
	g.cmd("ok-clock-last-moment", "received 1 ms before expiresAt + 2 min", []string{"clock"}, g.signedText(p), ok("rule-time", "unlock"),
		at(time.Date(2025, 6, 1, 12, 6, 59, 999e6, time.UTC)))
	g.cmd("clock-expired-edge", "received at expiresAt + 2 min", []string{"clock"}, g.signedText(p), bad("expired"), at(time.Date(2025, 6, 1, 12, 7, 0, 0, time.UTC)))
	g.cmd("ok-clock-skew-ahead", "issuedAt exactly 2 min ahead of the receiver", []string{"clock"}, g.signedText(p), ok("rule-time", "unlock"),
		at(time.Date(2025, 6, 1, 11, 57, 50, 0, time.UTC)))
	g.cmd("clock-future-edge", "issuedAt 2 min 1 ms ahead of the receiver", []string{"clock"}, g.signedText(p), bad("not_yet_valid"),
		at(time.Date(2025, 6, 1, 11, 57, 49, 999e6, time.UTC)))
}

// sealPlain seals arbitrary plaintexts (not padded, not checked) as §5
// says, computing info from the document's rule: what a sender of its
// own would do.
func (g *ruleGen) sealPlain(c *protocol.Command, to *keys.ConnectorPrivate, aead hpke.AEAD, plain ...[]byte) {
	g.t.Helper()
	kind, value := c.User.Kind()
	info := []byte("adwriteback-v1-secret\x00")
	for _, s := range []string{c.ID, string(c.Op), kind, value, c.User.Domain} {
		info = binary.BigEndian.AppendUint16(info, uint16(len(s)))
		info = append(info, s...)
	}
	pub := to.Public()
	enc, s, err := hpke.NewSender(pub.HPKE, hpke.HKDFSHA256(), aead, info)
	if err != nil {
		g.t.Fatal(err)
	}
	c.Secret = &protocol.Sealed{KID: pub.KID, KEM: pub.HPKE.KEM().ID(), KDF: 1, AEAD: aead.ID(), Enc: b64(enc)}
	for i, pt := range plain {
		aad := [][]byte{[]byte("new"), []byte("old")}[i]
		ct, err := s.Seal(aad, pt)
		if err != nil {
			g.t.Fatal(err)
		}
		if i == 0 {
			c.Secret.New = b64(ct)
		} else {
			c.Secret.Old = b64(ct)
		}
	}
}

// sealedText is the payload text of a reset sealed by sealPlain.
func (g *ruleGen) sealedText(id string, aead hpke.AEAD, plain ...[]byte) string {
	c := baseCommand(protocol.OpReset)
	c.ID = id
	if len(plain) > 1 {
		c.Op, c.Options = protocol.OpChange, protocol.Options{}
	}
	g.sealPlain(&c, g.f.connA, aead, plain...)
	raw, err := protocol.SignCommand(&c, g.f.sender.SigningKey())
	if err != nil {
		g.t.Fatal(err)
	}
	_, p := splitEnvelope(g.t, raw)
	return string(p)
}

func padded(pw string) []byte {
	b := make([]byte, protocol.MaxPasswordBytes)
	copy(b, pw)
	return b
}

func (g *ruleGen) secretVectors() {
	gcm := hpke.AES256GCM()
	reset := func(id string, plain ...[]byte) string { return g.sealedText(id, gcm, plain...) }
	g.cmd("ok-unpadded", "a password sealed without padding (ciphertext shorter than 784 bytes)", []string{"password", "secret-sizes"},
		g.signedText(reset("rule-unpadded", []byte(pwNew))), vectorWant{ID: "rule-unpadded", Op: "reset", NewPassword: pwNew})
	g.cmd("ok-chacha20", "sealed with ChaCha20-Poly1305 (aead 3)", []string{"secret-suite"},
		g.signedText(g.sealedText("rule-chacha", hpke.ChaCha20Poly1305(), padded(pwNew))), vectorWant{ID: "rule-chacha", Op: "reset", NewPassword: pwNew})
	max := strings.Repeat("😀", 128)
	g.cmd("ok-password-256-units", "a password of 256 UTF-16 code units (128 supplementary characters)", []string{"password"},
		g.signedText(reset("rule-pw-max", padded(max))), vectorWant{ID: "rule-pw-max", Op: "reset", NewPassword: max})
	g.cmd("password-257-units", "a password of 257 UTF-16 code units", []string{"password"}, g.signedText(reset("rule-pw-257", padded(strings.Repeat("x", 257)))), bad("bad_secret"))
	g.cmd("password-empty", "a plaintext of zero bytes only", []string{"password"}, g.signedText(reset("rule-pw-empty", padded(""))), bad("bad_secret"))
	g.cmd("password-nul", "a NUL inside the password", []string{"password"}, g.signedText(reset("rule-pw-nul", padded("a\x00b"))), bad("bad_secret"))
	g.cmd("password-bad-utf8", "a password that is not UTF-8", []string{"password"}, g.signedText(reset("rule-pw-utf8", padded("a\xffb"))), bad("bad_secret"))
	g.cmd("password-old-bad", "change whose old password is empty", []string{"password"},
		g.signedText(reset("rule-pw-old", padded(pwNew), padded(""))), bad("bad_secret"))
	good := reset("rule-secret", padded(pwNew))
	with := func(old, new string) []byte { return g.signedText(g.edit(good, old, new)) }
	g.cmd("secret-aead-9", "aead 9 (not a supported AEAD)", []string{"secret-suite"}, with(`"aead":2`, `"aead":9`), bad("invalid_field"))
	g.cmd("secret-kdf-2", "kdf 2 (HKDF-SHA384: not supported)", []string{"secret-suite"}, with(`"kdf":1`, `"kdf":2`), bad("invalid_field"))
	g.cmd("secret-kem-mismatch", "kem 32 on a secret sealed to the X-Wing key", []string{"secret-suite", "secret-open"}, with(`"kem":25722`, `"kem":32`), bad("decrypt"))
	g.cmd("secret-enc-too-long", "enc of 1701 bytes", []string{"secret-sizes"}, g.signedText(replaceMember(good, "enc", b64(make([]byte, 1701)))), bad("too_large"))
	g.cmd("secret-new-too-long", "new of 785 bytes", []string{"secret-sizes"}, g.signedText(replaceMember(good, "new", b64(make([]byte, 785)))), bad("too_large"))
	ct, err := base64.StdEncoding.DecodeString(memberOf(good, "new"))
	if err != nil {
		g.t.Fatal(err)
	}
	ct[10] ^= 1
	g.cmd("secret-tampered", "one bit of the ciphertext flipped, re-signed", []string{"secret-open"}, g.signedText(replaceMember(good, "new", b64(ct))), bad("decrypt"))
	g.cmd("secret-moved", "a sealed secret moved into a command with another id", []string{"secret-open"},
		g.signedText(g.edit(good, `"id":"rule-secret"`, `"id":"rule-secret-2"`)), bad("decrypt"))
	g.cmd("secret-with-unlock", "unlock carrying a secret", []string{"secret-op"},
		g.signedText(g.edit(g.edit(good, `"op":"reset"`, `"op":"unlock"`), `"options":{"mustChange":true,"unlock":true},`, "")), bad("invalid_field"))
	g.cmd("secret-missing", "reset without a secret", []string{"secret-op"}, g.signedText(g.edit(unlockText("rule-secret-none"), `"op":"unlock"`, `"op":"reset"`)), bad("invalid_field"))
	g.cmd("secret-old-with-reset", "reset carrying an old password", []string{"secret-op"}, g.signedText(g.edit(good, `"new":`, `"old":"`+memberOf(good, "new")+`","new":`)), bad("invalid_field"))
}

// memberOf is the string value of the first member name in a payload text.
func memberOf(payload, name string) string {
	i := strings.Index(payload, `"`+name+`":"`)
	rest := payload[i+len(name)+4:]
	return rest[:strings.IndexByte(rest, '"')]
}

func replaceMember(payload, name, value string) string {
	return strings.Replace(payload, `"`+name+`":"`+memberOf(payload, name)+`"`, `"`+name+`":"`+value+`"`, 1)
}

func (g *ruleGen) transportVectors() {
	raw := g.signedText(unlockText("rule-replay"))
	g.cmd("ok-replay-first", "first delivery of an id", []string{"replay", "message-id"}, raw, ok("rule-replay", "unlock"))
	g.cmd("replayed", "the same envelope again, after ok-replay-first", []string{"replay"}, raw, bad("replayed"), after("ok-replay-first"))
	other := g.signedText(g.edit(unlockText("rule-replay"), `"kind":"admin"`, `"kind":"self_service"`))
	g.cmd("id-conflict", "another command under the id of ok-replay-first", []string{"replay"}, other, bad("id_conflict"), after("ok-replay-first"))
	g.cmd("replay-cache-unavailable", "the replay cache cannot be read", []string{"replay-cache"}, g.signedText(unlockText("rule-replay-cache")), bad("replay_cache"),
		func(v *vector) { v.ReplayCache = "unavailable" })
	g.cmd("message-id-differs", "carried under a message id that is not its id", []string{"message-id"}, g.signedText(unlockText("rule-copy")), bad("message_id_mismatch"),
		func(v *vector) { v.MessageID = "rule-copy-2" })
}

// resultText is a v2 result payload answering rule-result, with extra
// members spliced in before receivedAt.
func resultText(code, extra string) string {
	return `{"v":2,"commandId":"rule-result","commandDigest":"` + strings.Repeat("A", 43) + `=","code":"` + code +
		`","message":"m",` + extra + `"receivedAt":"2025-06-01T12:00:00Z","completedAt":"2025-06-01T12:00:00.02Z"}`
}

func (g *ruleGen) result(name, desc string, rules []string, payload string, want vectorWant) {
	raw := signRaw(g.t, protocol.TypeResult, []byte(payload), g.f.connA.SigningKey())
	v := vector{Name: name, Description: desc, Type: protocol.TypeResult, Now: testNow, Rules: rules, Want: want}
	v.setRaw(raw)
	if want.Error == "" {
		v.Payload = []byte(payload)
	}
	g.vs = append(g.vs, v)
}

func (g *ruleGen) resultVectors() {
	for _, c := range protocol.ResultCodes() {
		extra := ""
		switch c {
		case protocol.CodePolicyViolation:
			extra = `"violations":[{"rule":"min_length","message":"needs 12 characters, got 9","fields":{"required":12,"actual":9}}],`
		case protocol.CodeRejectedByDC:
			extra = `"dcReason":"history",`
		case protocol.CodeRateLimited, protocol.CodeTransient:
			extra = `"retryAfter":60,`
		}
		g.result("ok-result-"+string(c), "a result with code "+string(c), []string{"result-codes"}, resultText(string(c), extra),
			vectorWant{ID: "rule-result", ResultCode: string(c)})
	}
	g.result("result-code-unknown", "a code not in §7.1", []string{"result-codes"}, resultText("applied_later", ""), bad("invalid_field"))
	v1 := strings.Replace(resultText("superseded", ""), `"commandDigest":"`+strings.Repeat("A", 43)+`=",`, "", 1)
	g.result("v1-result-superseded", "superseded in a version 1 result (a v2 code)", []string{"result-codes", "result-digest"}, strings.Replace(v1, `"v":2`, `"v":1`, 1), bad("invalid_field"))
	g.result("result-no-digest", "a v2 result without commandDigest", []string{"result-digest"}, strings.Replace(v1, `"code":"superseded"`, `"code":"succeeded"`, 1), bad("invalid_field"))
	g.result("result-digest-short", "commandDigest of 31 bytes", []string{"result-digest"},
		strings.Replace(resultText("succeeded", ""), strings.Repeat("A", 43)+"=", b64(make([]byte, 31)), 1), bad("invalid_field"))
	g.result("result-violations-missing", "policy_violation without violations", []string{"result-violations"}, resultText("policy_violation", ""), bad("invalid_field"))
	g.result("result-violations-extra", "violations with succeeded", []string{"result-violations"},
		resultText("succeeded", `"violations":[{"rule":"min_length","message":"m"}],`), bad("invalid_field"))
	g.result("result-rule-name", "a rule name in camelCase", []string{"result-violations"},
		resultText("policy_violation", `"violations":[{"rule":"minLength","message":"m"}],`), bad("invalid_field"))
	sixteen := make([]string, 16)
	for i := range sixteen {
		sixteen[i] = fmt.Sprintf(`"k%02d":%d`, i, i)
	}
	fields := func(members ...string) string {
		return `"violations":[{"rule":"future_rule","message":"m","fields":{` + strings.Join(members, ",") + `}}],`
	}
	g.result("ok-result-fields-open", "fields with 16 members of names no rule defines, a fraction, a string and a boolean (the member set is open)",
		[]string{"result-fields", "json-members"}, resultText("policy_violation", fields(append(sixteen[:13:13], `"ratio":0.5`, `"s":""`, `"b":true`)...)),
		vectorWant{ID: "rule-result", ResultCode: "policy_violation"})
	g.result("result-fields-17", "fields with 17 members", []string{"result-fields", "json-members"},
		resultText("policy_violation", fields(append(sixteen, `"k16":16`)...)), bad("invalid_field"))
	g.result("result-fields-key", "a fields key in camelCase", []string{"result-fields"}, resultText("policy_violation", fields(`"minLength":1`)), bad("invalid_field"))
	g.result("result-fields-object", "a fields value that is an object", []string{"result-fields"}, resultText("policy_violation", fields(`"a":{"b":1}`)), bad("invalid_field"))
	g.result("result-fields-array", "a fields value that is an array", []string{"result-fields"}, resultText("policy_violation", fields(`"a":[1]`)), bad("invalid_field"))
	g.result("result-dc-reason-missing", "rejected_by_dc without dcReason", []string{"result-dc-reason"}, resultText("rejected_by_dc", ""), bad("invalid_field"))
	g.result("result-dc-reason-extra", "dcReason with succeeded", []string{"result-dc-reason"}, resultText("succeeded", `"dcReason":"other",`), bad("invalid_field"))
	g.result("result-retry-after-succeeded", "retryAfter with succeeded", []string{"result-retry-after"}, resultText("succeeded", `"retryAfter":5,`), bad("invalid_field"))
	g.result("result-retry-after-fraction", "retryAfter 1.5", []string{"result-retry-after", "json-integers"}, resultText("transient", `"retryAfter":1.5,`), bad("invalid_field"))
	g.result("result-completed-before", "completedAt before receivedAt", []string{"result-times"},
		strings.Replace(resultText("succeeded", ""), "12:00:00.02Z", "11:59:59.99Z", 1), bad("invalid_field"))
	g.result("result-message-empty", "an empty message", []string{"texts"}, strings.Replace(resultText("succeeded", ""), `"message":"m"`, `"message":""`, 1), bad("invalid_field"))
	g.result("result-message-1025", "a message of 1025 bytes", []string{"texts"},
		strings.Replace(resultText("succeeded", ""), `"message":"m"`, `"message":"`+strings.Repeat("m", 1025)+`"`, 1), bad("invalid_field"))
	g.result("ok-result-message-1024", "a message of 1024 bytes", []string{"texts"},
		strings.Replace(resultText("succeeded", ""), `"message":"m"`, `"message":"`+strings.Repeat("m", 1024)+`"`, 1), vectorWant{ID: "rule-result", ResultCode: "succeeded"})
	g.result("result-unknown-member", "a member not in §7", []string{"json-member-names"}, resultText("succeeded", `"policy2":1,`), bad("unknown_field"))
}
