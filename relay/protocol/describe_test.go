package protocol_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/adwriteback/adwriteback/relay/protocol"
)

func TestDescribeCommand(t *testing.T) {
	f := loadFixture(t)
	c := baseCommand(protocol.OpDescribe)
	c.ID = "describe-1"
	raw := buildCommand(t, f, c)
	got, err := receive(f.receiver(testNow), raw)
	if err != nil {
		t.Fatal(err)
	}
	if got.Op != protocol.OpDescribe || !got.Secrets.New.IsEmpty() {
		t.Fatalf("got op %s, secret %v", got.Op, !got.Secrets.New.IsEmpty())
	}
	if protocol.OpDescribe.HasSecret() || !protocol.OpDescribe.Valid() || protocol.OpDescribe.ValidIn(1) {
		t.Fatal("describe: no secret, v2 only")
	}

	// v1 defines four operations: a v1 describe is invalid.
	v1 := resignPayload(t, f, raw, func(m map[string]any) { m["v"] = 1 })
	_, err = receive(f.receiver(testNow), v1)
	if pe := wantKind(t, err, protocol.ErrInvalidField); pe.Code != protocol.CodeInvalidCommand || !strings.Contains(err.Error(), "op") {
		t.Fatalf("v1 describe: %v", err)
	}
	// No secret, and no options.
	withSecret := resignPayload(t, f, buildCommand(t, f, baseCommand(protocol.OpCheck)), func(m map[string]any) { m["op"] = "describe" })
	_, err = receive(f.receiver(testNow), withSecret)
	wantKind(t, err, protocol.ErrInvalidField)
	withOptions := resignPayload(t, f, raw, func(m map[string]any) { m["options"] = map[string]any{"unlock": true} })
	_, err = receive(f.receiver(testNow), withOptions)
	wantKind(t, err, protocol.ErrInvalidField)
}

func describeResult() protocol.Result {
	next := protocol.At(testNow.Add(20 * time.Hour))
	return protocol.Result{
		V: protocol.Version, CommandID: "describe-1", CommandDigest: protocol.DigestString([32]byte{7}),
		Code: protocol.CodeSucceeded, Message: "These are the password requirements.",
		Policy: &protocol.Policy{
			MinLength: 16, MaxLength: 256, Complexity: true, ComplexityRule: "3 of 5 character categories",
			HistoryLength: 24, MinAge: 86400, MaxAge: 0, NextChangeAt: &next, Source: protocol.SourceFineGrained,
			Org: protocol.OrgPolicy{MinLength: 12, Banned: true, BannedMode: protocol.BannedEntra},
		},
		ReceivedAt: protocol.At(testNow), CompletedAt: protocol.At(testNow.Add(time.Millisecond)),
	}
}

func TestPolicyResultRoundTrip(t *testing.T) {
	f := loadFixture(t)
	r := describeResult()
	raw, err := protocol.SignResult(&r, f.connA.SigningKey())
	if err != nil {
		t.Fatal(err)
	}
	got, err := protocol.VerifyResult(raw, f.connectorResultKeys())
	if err != nil {
		t.Fatal(err)
	}
	p := got.Policy
	if p == nil || *p.NextChangeAt != *r.Policy.NextChangeAt || p.MinLength != 16 || p.HistoryLength != 24 || p.MinAge != 86400 ||
		p.Source != protocol.SourceFineGrained || p.Org != r.Policy.Org || p.ComplexityRule != r.Policy.ComplexityRule {
		t.Fatalf("policy %+v", p)
	}
	if err := got.ValidFor(protocol.OpDescribe); err != nil {
		t.Fatal(err)
	}
	if err := got.ValidFor(protocol.OpCheck); !errors.Is(err, protocol.ErrInvalidField) {
		t.Fatalf("a policy answering a check: %v", err)
	}
	r.Policy = nil
	if err := r.ValidFor(protocol.OpDescribe); !errors.Is(err, protocol.ErrInvalidField) {
		t.Fatalf("a describe succeeded without a policy: %v", err)
	}
	r.Code, r.Message = protocol.CodeOutOfScope, protocol.CodeOutOfScope.DefaultMessage()
	if err := r.ValidFor(protocol.OpDescribe); err != nil {
		t.Fatalf("a describe refused: %v", err)
	}
}

func TestPolicyResultInvalid(t *testing.T) {
	for name, mutate := range map[string]func(r *protocol.Result){
		"v1":                   func(r *protocol.Result) { r.V, r.CommandDigest = 1, "" },
		"not succeeded":        func(r *protocol.Result) { r.Code, r.Message = protocol.CodeOutOfScope, "m" },
		"negative min length":  func(r *protocol.Result) { r.Policy.MinLength = -1 },
		"zero max length":      func(r *protocol.Result) { r.Policy.MaxLength = 0 },
		"huge history":         func(r *protocol.Result) { r.Policy.HistoryLength = 1 << 20 },
		"negative min age":     func(r *protocol.Result) { r.Policy.MinAge = -1 },
		"huge max age":         func(r *protocol.Result) { r.Policy.MaxAge = 1 << 60 },
		"org negative":         func(r *protocol.Result) { r.Policy.Org.MinLength = -3 },
		"rule without complex": func(r *protocol.Result) { r.Policy.Complexity = false },
		"complex without rule": func(r *protocol.Result) { r.Policy.ComplexityRule = "" },
		"rule with control":    func(r *protocol.Result) { r.Policy.ComplexityRule = "a\nb" },
		"zero next change":     func(r *protocol.Result) { r.Policy.NextChangeAt = &protocol.Timestamp{} },
		"no source":            func(r *protocol.Result) { r.Policy.Source = "" },
		"a pso's name":         func(r *protocol.Result) { r.Policy.Source = "CN=Strict" },
	} {
		t.Run(name, func(t *testing.T) {
			r := describeResult()
			mutate(&r)
			if err := r.Validate(); !errors.Is(err, protocol.ErrInvalidField) {
				t.Fatalf("got %v, want invalid field", err)
			}
		})
	}
}

func TestPolicyResultStrict(t *testing.T) {
	const head = `{"v":2,"commandId":"a","commandDigest":"BwAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","code":"succeeded","message":"m",`
	const tail = `"receivedAt":"2025-06-01T12:00:00Z","completedAt":"2025-06-01T12:00:00Z"}`
	const org = `"org":{"minLength":0,"banned":false,"breached":true}`
	ok := head + `"policy":{"minLength":7,"maxLength":256,"complexity":false,"historyLength":0,"minAge":0,"maxAge":3628800,"source":"domain",` + org + `},` + tail
	if _, err := protocol.ParseResult([]byte(ok)); err != nil {
		t.Fatal(err)
	}
	for name, payload := range map[string]string{
		"unknown policy member": head + `"policy":{"minLength":7,"maxLength":256,"complexity":false,"historyLength":0,"minAge":0,"maxAge":0,"source":"domain","pso":"CN=x",` + org + `},` + tail,
		"unknown org member":    head + `"policy":{"minLength":7,"maxLength":256,"complexity":false,"historyLength":0,"minAge":0,"maxAge":0,"source":"domain","org":{"minLength":0,"banned":false,"breached":true,"x":1}},` + tail,
		"wrong case":            head + `"policy":{"MinLength":7,"maxLength":256,"complexity":false,"historyLength":0,"minAge":0,"maxAge":0,"source":"domain",` + org + `},` + tail,
		"fractional age":        head + `"policy":{"minLength":7,"maxLength":256,"complexity":false,"historyLength":0,"minAge":0.5,"maxAge":0,"source":"domain",` + org + `},` + tail,
		"string length":         head + `"policy":{"minLength":"7","maxLength":256,"complexity":false,"historyLength":0,"minAge":0,"maxAge":0,"source":"domain",` + org + `},` + tail,
		"null org":              head + `"policy":{"minLength":7,"maxLength":256,"complexity":false,"historyLength":0,"minAge":0,"maxAge":0,"source":"domain","org":null},` + tail,
		"policy not an object":  head + `"policy":true,` + tail,
	} {
		if _, err := protocol.ParseResult([]byte(payload)); err == nil {
			t.Errorf("%s: decodes", name)
		}
	}
}

// makeDescribeVectors are the golden vectors of op describe: a valid
// command, the same as version 1 (invalid: v1 has four ops), and the
// policy result answering the command.
func makeDescribeVectors(t *testing.T, f fixture) []vector {
	c := baseCommand(protocol.OpDescribe)
	c.ID = "golden-describe"
	c.User = protocol.UserRef{ImmutableID: "HBoGe8dNQ0WDq9U0Y7Q2zg=="}
	raw := buildCommand(t, f, c)
	d, err := protocol.EnvelopeDigest(raw)
	if err != nil {
		t.Fatal(err)
	}
	vs := []vector{commandVector(t, "ok-describe", "valid describe command: no secret", testNow, []string{"a"}, raw,
		vectorWant{ID: c.ID, Op: string(protocol.OpDescribe)})}
	vs[0].Rules = []string{"command-describe"}
	v1 := c
	v1.V, v1.ID = 1, "golden-v1-describe"
	inV1 := commandVector(t, "describe-in-v1", "op describe in a version 1 command: v1 defines four ops", testNow, []string{"a"},
		signV1Describe(t, f, v1), vectorWant{Error: "invalid_field", Code: "invalid_command"})
	inV1.Rules = []string{"command-describe"}
	vs = append(vs, inV1)
	r := describeResult()
	r.CommandID, r.CommandDigest = c.ID, protocol.DigestString(d)
	r.Policy.ComplexityRule = complexityRuleExample
	ok := resultVector(t, f, "result-policy", "a policy result signed by connector key A, answering ok-describe", r)
	ok.Rules = []string{"result-policy"}
	vs = append(vs, ok)
	// A policy with any code but succeeded is refused.
	bad := r
	bad.Code, bad.Message = protocol.CodeTransient, protocol.CodeTransient.DefaultMessage()
	payload, err := json.Marshal(bad)
	if err != nil {
		t.Fatal(err)
	}
	wrong := vector{Name: "result-policy-with-transient", Description: "a policy in a transient result", Type: protocol.TypeResult,
		Now: testNow, Rules: []string{"result-policy"}, Want: vectorWant{Error: "invalid_field", Code: "invalid_command"}}
	wrong.setRaw(signRaw(t, protocol.TypeResult, payload, f.connA.SigningKey()))
	return append(vs, wrong)
}

// complexityRuleExample is the connector's complexity rule text, as the
// examples show it.
const complexityRuleExample = "at least 3 of: uppercase letters, lowercase letters, digits, symbols, other letters; " +
	"and not the account name, nor any part of the display name of 3 or more characters"

// signV1Describe signs c (v1, op describe), which SignCommand refuses.
func signV1Describe(t *testing.T, f fixture, c protocol.Command) []byte {
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return signRaw(t, protocol.TypeCommand, b, f.sender.SigningKey())
}
