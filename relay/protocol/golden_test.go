package protocol_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/adwriteback/adwriteback/relay/keys"
	"github.com/adwriteback/adwriteback/relay/protocol"
)

// TestTestKeys pins the checked-in test keys to their derivation (and so
// the kid derivation and the key file format). -update rewrites them.
func TestTestKeys(t *testing.T) {
	f := deriveFixture(t)
	files := map[string][]byte{}
	add := func(name string, b []byte, err error) {
		if err != nil {
			t.Fatal(err)
		}
		files[name] = b
	}
	for name, k := range map[string]*keys.ConnectorPrivate{"connector-a": f.connA, "connector-b": f.connB} {
		b, err := k.Marshal()
		add(name+".key.json", b, err)
		add(name+".pub.json", k.Public().Marshal(), nil)
	}
	for name, k := range map[string]*keys.SenderPrivate{"sender": f.sender, "other-sender": f.other} {
		add(name+".key.json", k.Marshal(), nil)
		add(name+".pub.json", k.Public().Marshal(), nil)
	}
	dir := filepath.Join("testdata", "keys")
	for name, want := range files {
		path := filepath.Join(dir, name)
		if *update {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from its derivation; run go test -update if the format changed on purpose", path)
		}
	}
}

// vector is one golden test vector: exact envelope bytes and what decoding
// them must give at the vector's clock.
type vector struct {
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Type        string    `json:"type"` // command or result
	Now         time.Time `json:"now"`
	// OpenWith names the connector keys the receiver holds ("a", "b").
	OpenWith []string `json:"openWith,omitempty"`
	// MessageID is the id the transport carried the command under
	// (Service Bus: MessageId); absent means the command's own id.
	MessageID string `json:"messageId,omitempty"`
	// Prior names the vectors the same receiver got first (replay).
	Prior []string `json:"prior,omitempty"`
	// ReplayCache "unavailable": the receiver's replay cache fails.
	ReplayCache string `json:"replayCache,omitempty"`
	// Rules are the rules of PROTOCOL.md §13's table this vector keeps
	// (valid) or breaks (invalid).
	Rules []string `json:"rules,omitempty"`
	// Envelope is the message body; EnvelopeBase64 carries it instead
	// when it is not valid UTF-8 (JSON strings cannot hold such bytes).
	Envelope       string          `json:"envelope,omitempty"`
	EnvelopeBase64 string          `json:"envelopeBase64,omitempty"`
	Want           vectorWant      `json:"want"`
	Payload        json.RawMessage `json:"payload,omitempty"` // the signed payload, for reading
}

type vectorWant struct {
	// Error is the expected error kind name, protocol.KindName ("" =
	// success).
	Error string `json:"error,omitempty"`
	// Settle is what a connector does with an invalid command (§6):
	// "result" (a signed result with Code, in version ResultV),
	// "first_result" (the result recorded for the id, again),
	// "dead_letter" (no result; DeadLetter is the reason) or "retry"
	// (no result yet: the message comes back).
	Settle      string `json:"settle,omitempty"`
	Code        string `json:"code,omitempty"`
	ResultV     int    `json:"resultV,omitempty"`
	DeadLetter  string `json:"deadLetter,omitempty"`
	ID          string `json:"id,omitempty"`
	Op          string `json:"op,omitempty"`
	NewPassword string `json:"newPassword,omitempty"`
	OldPassword string `json:"oldPassword,omitempty"`
	ResultCode  string `json:"resultCode,omitempty"`
}

// raw is the vector's message body.
func (v *vector) raw() []byte {
	if v.EnvelopeBase64 != "" {
		b, _ := base64.StdEncoding.DecodeString(v.EnvelopeBase64)
		return b
	}
	return []byte(v.Envelope)
}

// setRaw stores the message body, as base64 when it is not UTF-8.
func (v *vector) setRaw(raw []byte) {
	if utf8.Valid(raw) {
		v.Envelope = string(raw)
		return
	}
	v.EnvelopeBase64 = base64.StdEncoding.EncodeToString(raw)
}

// readVectors reads the stored vectors.
func readVectors(t testing.TB) []vector {
	t.Helper()
	b, err := os.ReadFile(vectorsPath)
	if err != nil {
		t.Fatal(err)
	}
	var vs []vector
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatal(err)
	}
	return vs
}

const vectorsPath = "testdata/vectors.json"

// makeVectors makes the vectors of the current version and, prefixed
// "v1-", the valid commands and a result of version 1, which a connector
// still accepts and answers in kind.
func makeVectors(t *testing.T, f fixture) []vector {
	vs := makeVersionVectors(t, f)
	// describe (v2): a command and its policy result (describe_test.go).
	vs = append(vs, makeDescribeVectors(t, f)...)
	vs = append(vs, makeRuleVectors(t, f)...)
	for _, v := range makeV1Vectors(t, f) {
		v.Name, v.Description = "v1-"+v.Name, "version 1: "+v.Description
		vs = append(vs, v)
	}
	for i := range vs {
		vs[i].Rules = append(vs[i].Rules, baseRules[strings.TrimPrefix(vs[i].Name, "v1-")]...)
		settle(t, f, vs, &vs[i])
	}
	return vs
}

// baseRules tags the vectors of makeVersionVectors: the valid commands
// keep every general rule.
var baseRules = map[string][]string{
	"ok-reset":  {"op", "options", "actor", "secret-op", "secret-suite", "secret-sizes", "secret-open", "password", "texts", "user-upn", "user-domain"},
	"ok-change": {"op", "secret-op", "password"},
	"ok-unlock": {"op", "user-guid", "secret-op", "json-duplicate", "json-member-names", "json-null", "json-depth", "json-types", "json-integers",
		"json-syntax", "base64", "timestamp", "envelope-version", "envelope-type", "envelope-signature", "kid", "payload-version", "id", "user-one",
		"message-id", "replay-cache", "lifetime", "clock", "answerable"},
	"ok-check":                      {"op", "user-sam"},
	"ok-rotation-key-b":             {"secret-open", "user-immutable-id"},
	"expired":                       {"clock"},
	"not-yet-valid":                 {"clock"},
	"wrong-connector-key":           {"secret-open"},
	"tampered-payload":              {"envelope-signature"},
	"copy-under-another-message-id": {"message-id"},
	"result-policy-violation":       {"result-codes", "result-digest", "result-violations", "result-fields", "result-times", "texts"},
	"result-superseded":             {"result-codes", "result-digest"},
	"result-succeeded":              {"result-codes", "result-digest", "payload-version"},
	"ok-result-rejected_by_dc":      {"result-dc-reason"},
	"ok-result-rate_limited":        {"result-retry-after"},
	"ok-result-transient":           {"result-retry-after"},
}

func makeV1Vectors(t *testing.T, f fixture) []vector {
	var vs []vector
	for _, op := range []protocol.Op{protocol.OpReset, protocol.OpUnlock} {
		c := baseCommand(op)
		c.V, c.ID = 1, "golden-v1-"+string(op)
		want := vectorWant{ID: c.ID, Op: string(op)}
		if op.HasSecret() {
			want.NewPassword = pwNew
		}
		vs = append(vs, commandVector(t, "ok-"+string(op), "valid "+string(op)+" command sealed to connector key A", testNow, []string{"a"}, buildCommand(t, f, c), want))
	}
	r := protocol.Result{V: 1, CommandID: "golden-v1-reset", Code: protocol.CodeSucceeded, Message: protocol.CodeSucceeded.DefaultMessage(),
		ReceivedAt: protocol.At(testNow), CompletedAt: protocol.At(testNow.Add(40 * time.Millisecond))}
	return append(vs, resultVector(t, f, "result-succeeded", "result signed by connector key A", r))
}

func commandVector(t *testing.T, name, desc string, now time.Time, openWith []string, raw []byte, want vectorWant) vector {
	v := vector{Name: name, Description: desc, Type: protocol.TypeCommand, Now: now, OpenWith: openWith, Want: want}
	v.setRaw(raw)
	var env struct{ Payload string }
	if json.Unmarshal(raw, &env) != nil {
		return v
	}
	if p, err := base64.StdEncoding.DecodeString(env.Payload); err == nil && json.Valid(p) && utf8.Valid(p) {
		v.Payload = p
	}
	return v
}

func resultVector(t *testing.T, f fixture, name, desc string, r protocol.Result) vector {
	raw, err := protocol.SignResult(&r, f.connA.SigningKey())
	if err != nil {
		t.Fatal(err)
	}
	_, p := splitEnvelope(t, raw)
	return vector{Name: name, Description: desc, Type: protocol.TypeResult, Now: testNow, Envelope: string(raw), Payload: p, // results are UTF-8
		Want: vectorWant{ID: r.CommandID, ResultCode: string(r.Code)}}
}

func makeVersionVectors(t *testing.T, f fixture) []vector {
	var vs []vector
	add := func(name, desc string, now time.Time, openWith []string, raw []byte, want vectorWant) {
		vs = append(vs, commandVector(t, name, desc, now, openWith, raw, want))
	}
	digests := map[string][32]byte{}
	for _, op := range []protocol.Op{protocol.OpReset, protocol.OpChange, protocol.OpUnlock, protocol.OpCheck} {
		c := baseCommand(op)
		c.ID = "golden-" + string(op)
		if op == protocol.OpUnlock {
			c.User = protocol.UserRef{ObjectGUID: "8e2f6a1c-3b4d-4e5f-9a0b-1c2d3e4f5a6b"}
			c.Actor = protocol.Actor{Kind: protocol.ActorAdmin, ID: "helpdesk-42"}
		}
		if op == protocol.OpCheck {
			c.User = protocol.UserRef{SAM: "alovelace", Domain: "corp.example.com"}
		}
		want := vectorWant{ID: c.ID, Op: string(op)}
		if op.HasSecret() {
			want.NewPassword = pwNew
		}
		if op == protocol.OpChange {
			want.OldPassword = pwOld
		}
		raw := buildCommand(t, f, c)
		d, err := protocol.EnvelopeDigest(raw)
		if err != nil {
			t.Fatal(err)
		}
		digests[c.ID] = d
		add("ok-"+string(op), "valid "+string(op)+" command sealed to connector key A", testNow, []string{"a"}, raw, want)
	}
	c := baseCommand(protocol.OpReset)
	c.ID = "golden-rotation"
	c.User = protocol.UserRef{ImmutableID: "HBoGe8dNQ0WDq9U0Y7Q2zg=="}
	add("ok-rotation-key-b", "sealed to key B while the connector holds A and B", testNow, []string{"a", "b"},
		buildCommand(t, f, c, f.connB), vectorWant{ID: c.ID, Op: "reset", NewPassword: pwNew})

	c = baseCommand(protocol.OpReset)
	c.ID = "golden-expired"
	raw := buildCommand(t, f, c)
	add("expired", "valid but received after expiresAt + 2 min skew", testNow.Add(7*time.Minute+time.Second), []string{"a"}, raw,
		vectorWant{Error: "expired"})
	add("not-yet-valid", "issuedAt more than 2 min ahead of the receiver clock", testNow.Add(-3*time.Minute), []string{"a"}, raw,
		vectorWant{Error: "not_yet_valid"})
	add("wrong-connector-key", "sealed to key A; the connector holds only B", testNow, []string{"b"}, raw,
		vectorWant{Error: "unknown_recipient"})

	env, p := splitEnvelope(t, raw)
	p[len(p)/2] ^= 1
	tampered := signRawWithSig(t, env, p)
	add("tampered-payload", "one payload bit flipped, signature unchanged", testNow, []string{"a"}, tampered,
		vectorWant{Error: "bad_signature"})
	cp := commandVector(t, "copy-under-another-message-id", "a valid command carried under a message id that is not its id: a copy; dead-lettered, never answered",
		testNow, []string{"a"}, raw, vectorWant{Error: "message_id_mismatch"})
	cp.MessageID = "copy-of-golden-expired"
	vs = append(vs, cp)

	// Results.
	r := protocol.Result{
		V: protocol.Version, CommandID: "golden-reset", CommandDigest: protocol.DigestString(digests["golden-reset"]),
		Code:    protocol.CodePolicyViolation,
		Message: "The new password does not meet the password policy.",
		Violations: []protocol.Violation{
			{Rule: "min_length", Message: "needs 12 characters, got 9", Fields: map[string]any{"required": 12, "actual": 9}},
			{Rule: "complexity", Message: "needs 3 of 4 character classes, got 2", Fields: map[string]any{"required": 3, "actual": 2}},
		},
		ReceivedAt: protocol.At(testNow), CompletedAt: protocol.At(testNow.Add(35 * time.Millisecond)),
	}
	vs = append(vs, resultVector(t, f, "result-policy-violation", "result signed by connector key A, answering ok-reset", r))
	s := protocol.Result{V: protocol.Version, CommandID: "golden-change", CommandDigest: protocol.DigestString(digests["golden-change"]),
		Code: protocol.CodeSuperseded, Message: protocol.CodeSuperseded.DefaultMessage(),
		ReceivedAt: protocol.At(testNow), CompletedAt: protocol.At(testNow.Add(20 * time.Millisecond))}
	return append(vs, resultVector(t, f, "result-superseded", "result signed by connector key A, answering ok-change", s))
}

func signRawWithSig(t *testing.T, env map[string]any, payload []byte) []byte {
	t.Helper()
	env["payload"] = b64(payload)
	b, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// receiveVector receives a command vector as a connector would: at the
// vector's clock, holding its keys, after its prior vectors, carried
// under its message id (the command's own when absent).
func receiveVector(t *testing.T, f fixture, vs []vector, v *vector) (*protocol.Received, error) {
	t.Helper()
	byName := map[string]*keys.ConnectorPrivate{"a": f.connA, "b": f.connB}
	var open []*keys.ConnectorPrivate
	for _, n := range v.OpenWith {
		open = append(open, byName[n])
	}
	rcv := f.receiver(v.Now, open...)
	if v.ReplayCache == "unavailable" {
		rcv.Replay = failingCache{}
	}
	for _, name := range v.Prior {
		i := slices.IndexFunc(vs, func(p vector) bool { return p.Name == name })
		if i < 0 {
			t.Fatalf("prior vector %s missing", name)
		}
		got, err := receive(rcv, vs[i].raw())
		if err != nil {
			t.Fatalf("prior vector %s: %v", name, err)
		}
		got.Secrets.Zero()
	}
	msgID := v.MessageID
	if msgID == "" {
		msgID = commandIDOf(v.raw())
	}
	return rcv.Receive(context.Background(), v.raw(), msgID)
}

// settlement is what PROTOCOL.md §6 says a connector does with a command
// refused with err: the Settle, Code, ResultV and DeadLetter of a vector.
func settlement(f fixture, raw []byte, err error) vectorWant {
	var pe *protocol.Error
	if !errors.As(err, &pe) {
		return vectorWant{}
	}
	switch {
	case pe.CommandID == "":
		return vectorWant{Settle: "dead_letter", DeadLetter: "invalid_command"}
	case errors.Is(err, protocol.ErrMessageID):
		return vectorWant{Settle: "dead_letter", DeadLetter: protocol.KindName(err)}
	case errors.Is(err, protocol.ErrReplayed):
		return vectorWant{Settle: "first_result"}
	case errors.Is(err, protocol.ErrReplayCache):
		return vectorWant{Settle: "retry"}
	}
	w := vectorWant{Settle: "result", Code: string(pe.Code), ResultV: protocol.MinVersion}
	if vc, err := protocol.VerifyCommand(raw, f.senders()); err == nil {
		w.ResultV = vc.V // decoded: answered in its own version
	}
	return w
}

// settle fills in an invalid command vector's settlement.
func settle(t *testing.T, f fixture, vs []vector, v *vector) {
	if v.Type != protocol.TypeCommand || v.Want.Error == "" {
		return
	}
	_, err := receiveVector(t, f, vs, v)
	s := settlement(f, v.raw(), err)
	v.Want.Settle, v.Want.Code, v.Want.ResultV, v.Want.DeadLetter = s.Settle, s.Code, s.ResultV, s.DeadLetter
}

// TestGoldenVectors decodes, verifies and opens the stored vectors. HPKE
// encapsulation is randomised, so -update regenerates fresh ciphertexts;
// without it the test pins that stored bytes keep decoding the same way.
func TestGoldenVectors(t *testing.T) {
	f := loadFixture(t)
	if *update {
		vs := makeVectors(t, f)
		b, err := json.MarshalIndent(vs, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(vectorsPath, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	vs := readVectors(t)
	if len(vs) < 10 {
		t.Fatalf("only %d vectors", len(vs))
	}
	for _, v := range vs {
		t.Run(v.Name, func(t *testing.T) {
			if v.Type == protocol.TypeResult {
				r, err := protocol.VerifyResult(v.raw(), f.connectorResultKeys())
				if v.Want.Error != "" {
					wantKind(t, err, err)
					if protocol.KindName(err) != v.Want.Error {
						t.Fatalf("error %s (%v), want %s", protocol.KindName(err), err, v.Want.Error)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if r.CommandID != v.Want.ID || string(r.Code) != v.Want.ResultCode {
					t.Fatalf("got %s/%s", r.CommandID, r.Code)
				}
				// A v2 result names the digest of the command vector it answers.
				for _, c := range vs {
					if c.Type == protocol.TypeCommand && c.Want.ID == r.CommandID && c.MessageID == "" {
						d, err := protocol.EnvelopeDigest(c.raw())
						if err != nil || !r.Answers(c.Want.ID, d) {
							t.Fatalf("does not answer command vector %s (%v)", c.Name, err)
						}
					}
				}
				return
			}
			got, err := receiveVector(t, f, vs, &v)
			if v.Want.Error != "" {
				wantKind(t, err, err)
				if protocol.KindName(err) != v.Want.Error {
					t.Fatalf("error %s (%v), want %s", protocol.KindName(err), err, v.Want.Error)
				}
				s := settlement(f, v.raw(), err)
				if s.Settle != v.Want.Settle || s.Code != v.Want.Code || s.ResultV != v.Want.ResultV || s.DeadLetter != v.Want.DeadLetter {
					t.Fatalf("settled %+v, the vector says %+v", s, v.Want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer got.Secrets.Zero()
			if got.ID != v.Want.ID || string(got.Op) != v.Want.Op {
				t.Fatalf("got %s/%s", got.ID, got.Op)
			}
			if string(got.Secrets.New.Bytes()) != v.Want.NewPassword || string(got.Secrets.Old.Bytes()) != v.Want.OldPassword {
				t.Fatal("opened passwords differ from the vector")
			}
			if got.SignerKID != f.sender.KID {
				t.Fatalf("signer %s", got.SignerKID)
			}
			// The payload shown in the vector is the signed one.
			if v.Payload != nil {
				if _, err := protocol.ParseCommand(v.Payload); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
