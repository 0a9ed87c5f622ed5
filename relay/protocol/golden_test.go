package protocol_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

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
	MessageID string          `json:"messageId,omitempty"`
	Envelope  string          `json:"envelope"`
	Want      vectorWant      `json:"want"`
	Payload   json.RawMessage `json:"payload,omitempty"` // the signed payload, for reading
}

type vectorWant struct {
	// Error is the expected error kind name, protocol.KindName ("" =
	// success).
	Error       string `json:"error,omitempty"`
	Code        string `json:"code,omitempty"` // result code for Error
	ID          string `json:"id,omitempty"`
	Op          string `json:"op,omitempty"`
	NewPassword string `json:"newPassword,omitempty"`
	OldPassword string `json:"oldPassword,omitempty"`
	ResultCode  string `json:"resultCode,omitempty"`
}

const vectorsPath = "testdata/vectors.json"

// makeVectors makes the vectors of the current version and, prefixed
// "v1-", the valid commands and a result of version 1, which a connector
// still accepts and answers in kind.
func makeVectors(t *testing.T, f fixture) []vector {
	vs := makeVersionVectors(t, f)
	// describe (v2): a command and its policy result (describe_test.go).
	vs = append(vs, makeDescribeVectors(t, f)...)
	for _, v := range makeV1Vectors(t, f) {
		v.Name, v.Description = "v1-"+v.Name, "version 1: "+v.Description
		vs = append(vs, v)
	}
	return vs
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
	_, p := splitEnvelope(t, raw)
	v := vector{Name: name, Description: desc, Type: protocol.TypeCommand, Now: now, OpenWith: openWith, Envelope: string(raw), Want: want}
	if json.Valid(p) {
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
	return vector{Name: name, Description: desc, Type: protocol.TypeResult, Now: testNow, Envelope: string(raw), Payload: p,
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
		vectorWant{Error: "expired", Code: "expired"})
	add("not-yet-valid", "issuedAt more than 2 min ahead of the receiver clock", testNow.Add(-3*time.Minute), []string{"a"}, raw,
		vectorWant{Error: "not_yet_valid", Code: "expired"})
	add("wrong-connector-key", "sealed to key A; the connector holds only B", testNow, []string{"b"}, raw,
		vectorWant{Error: "unknown_recipient", Code: "invalid_command"})

	env, p := splitEnvelope(t, raw)
	p[len(p)/2] ^= 1
	tampered := signRawWithSig(t, env, p)
	add("tampered-payload", "one payload bit flipped, signature unchanged", testNow, []string{"a"}, tampered,
		vectorWant{Error: "bad_signature", Code: "invalid_command"})
	cp := commandVector(t, "copy-under-another-message-id", "a valid command carried under a message id that is not its id: a copy; dead-lettered, never answered",
		testNow, []string{"a"}, raw, vectorWant{Error: "message_id_mismatch", Code: "invalid_command"})
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
	b, err := os.ReadFile(vectorsPath)
	if err != nil {
		t.Fatal(err)
	}
	var vs []vector
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) < 10 {
		t.Fatalf("only %d vectors", len(vs))
	}
	byName := map[string]*keys.ConnectorPrivate{"a": f.connA, "b": f.connB}
	for _, v := range vs {
		t.Run(v.Name, func(t *testing.T) {
			if v.Type == protocol.TypeResult {
				r, err := protocol.VerifyResult([]byte(v.Envelope), f.connectorResultKeys())
				if err != nil {
					t.Fatal(err)
				}
				if r.CommandID != v.Want.ID || string(r.Code) != v.Want.ResultCode {
					t.Fatalf("got %s/%s", r.CommandID, r.Code)
				}
				// A v2 result names the digest of the command vector it answers.
				for _, c := range vs {
					if c.Type == protocol.TypeCommand && c.Want.ID == r.CommandID && c.MessageID == "" {
						d, err := protocol.EnvelopeDigest([]byte(c.Envelope))
						if err != nil || !r.Answers(c.Want.ID, d) {
							t.Fatalf("does not answer command vector %s (%v)", c.Name, err)
						}
					}
				}
				return
			}
			var open []*keys.ConnectorPrivate
			for _, n := range v.OpenWith {
				open = append(open, byName[n])
			}
			rcv := f.receiver(v.Now, open...)
			msgID := v.MessageID
			if msgID == "" {
				msgID = commandIDOf([]byte(v.Envelope))
			}
			got, err := rcv.Receive(context.Background(), []byte(v.Envelope), msgID)
			if v.Want.Error != "" {
				pe := wantKind(t, err, err)
				if protocol.KindName(err) != v.Want.Error || string(pe.Code) != v.Want.Code {
					t.Fatalf("error %s (%s), want %s (%s)", protocol.KindName(err), pe.Code, v.Want.Error, v.Want.Code)
				}
				if string(pe.Code) != v.Want.Code {
					t.Fatalf("code %s, want %s", pe.Code, v.Want.Code)
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
