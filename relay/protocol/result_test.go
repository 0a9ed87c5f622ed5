package protocol_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/adwriteback/adwriteback/relay/protocol"
)

func goodResult() protocol.Result {
	return protocol.Result{
		V: 1, CommandID: "3f1c9e0a-6c47-4c1e-9d8e-2b7a4f0c1d21", Code: protocol.CodePolicyViolation,
		Message: protocol.CodePolicyViolation.DefaultMessage(),
		Violations: []protocol.Violation{
			{Rule: "min_length", Message: "needs 12 characters, got 9", Fields: map[string]any{"required": 12, "actual": 9}},
			{Rule: "banned_word", Message: "contains a banned word", Fields: map[string]any{"list": "org", "exact": true}},
		},
		DC: "dc1.corp.example.com", Detail: "local pre-check",
		ReceivedAt: protocol.At(testNow), CompletedAt: protocol.At(testNow.Add(40 * time.Millisecond)),
	}
}

func TestResultRoundTrip(t *testing.T) {
	f := loadFixture(t)
	r := goodResult()
	raw, err := protocol.SignResult(&r, f.connA.SigningKey())
	if err != nil {
		t.Fatal(err)
	}
	got, err := protocol.VerifyResult(raw, f.connectorResultKeys())
	if err != nil {
		t.Fatal(err)
	}
	if got.SignerKID != f.connA.KID || got.CommandID != r.CommandID || got.Code != r.Code || got.Message != r.Message ||
		got.DC != r.DC || got.Detail != r.Detail || !got.ReceivedAt.Equal(r.ReceivedAt.Time) || !got.CompletedAt.Equal(r.CompletedAt.Time) {
		t.Fatalf("got %+v", got.Result)
	}
	if len(got.Violations) != 2 || got.Violations[0].Rule != "min_length" || got.Violations[0].Fields["required"] != json.Number("12") ||
		got.Violations[1].Fields["exact"] != true || got.Violations[1].Fields["list"] != "org" {
		t.Fatalf("violations %+v", got.Violations)
	}
	// Every code round-trips with a suitable shape.
	for _, code := range protocol.ResultCodes() {
		r := protocol.Result{V: protocol.Version, CommandID: "id-1", CommandDigest: protocol.DigestString([32]byte{1}),
			Code: code, Message: code.DefaultMessage(), ReceivedAt: protocol.At(testNow), CompletedAt: protocol.At(testNow)}
		switch code {
		case protocol.CodePolicyViolation:
			r.Violations = []protocol.Violation{{Rule: "complexity", Message: "needs 3 character classes"}}
		case protocol.CodeRejectedByDC:
			r.DCReason = protocol.DCReasonHistory
		case protocol.CodeRateLimited:
			r.RetryAfter = 3600
		}
		raw, err := protocol.SignResult(&r, f.connB.SigningKey())
		if err != nil {
			t.Fatalf("%s: %v", code, err)
		}
		got, err := protocol.VerifyResult(raw, f.connectorResultKeys())
		if err != nil || got.Code != code || got.DCReason != r.DCReason || got.RetryAfter != r.RetryAfter {
			t.Fatalf("%s: %v", code, err)
		}
	}
}

func TestResultValidation(t *testing.T) {
	f := loadFixture(t)
	cases := map[string]func(r *protocol.Result){
		"version":           func(r *protocol.Result) { r.V = 0 },
		"command-id":        func(r *protocol.Result) { r.CommandID = "" },
		"code":              func(r *protocol.Result) { r.Code = "maybe" },
		"message":           func(r *protocol.Result) { r.Message = "" },
		"message-long":      func(r *protocol.Result) { r.Message = strings.Repeat("x", 1025) },
		"no-violations":     func(r *protocol.Result) { r.Violations = nil },
		"violations-on-ok":  func(r *protocol.Result) { r.Code = protocol.CodeSucceeded },
		"rule":              func(r *protocol.Result) { r.Violations[0].Rule = "Min Length" },
		"rule-message":      func(r *protocol.Result) { r.Violations[0].Message = "" },
		"field-key":         func(r *protocol.Result) { r.Violations[0].Fields["Bad-Key"] = 1 },
		"field-nested":      func(r *protocol.Result) { r.Violations[0].Fields["x"] = map[string]any{} },
		"field-list":        func(r *protocol.Result) { r.Violations[0].Fields["x"] = []any{1} },
		"dc-reason-missing": func(r *protocol.Result) { r.Code = protocol.CodeRejectedByDC; r.Violations = nil },
		"dc-reason-unknown": func(r *protocol.Result) {
			r.Code = protocol.CodeRejectedByDC
			r.Violations = nil
			r.DCReason = "moon_phase"
		},
		"dc-reason-stray": func(r *protocol.Result) { r.DCReason = protocol.DCReasonHistory },
		"dc":              func(r *protocol.Result) { r.DC = "dc 1" },
		"retry-negative":  func(r *protocol.Result) { r.RetryAfter = -1 },
		"retry-stray":     func(r *protocol.Result) { r.RetryAfter = 5 },
		"no-received":     func(r *protocol.Result) { r.ReceivedAt = protocol.Timestamp{} },
		"no-completed":    func(r *protocol.Result) { r.CompletedAt = protocol.Timestamp{} },
		"completed-early": func(r *protocol.Result) { r.CompletedAt = protocol.At(testNow.Add(-time.Second)) },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			r := goodResult()
			r.Violations = append([]protocol.Violation(nil), r.Violations...)
			fields := map[string]any{}
			for k, v := range r.Violations[0].Fields {
				fields[k] = v
			}
			r.Violations[0].Fields = fields
			mutate(&r)
			if err := r.Validate(); !errors.Is(err, protocol.ErrInvalidField) && !errors.Is(err, protocol.ErrUnsupportedVersion) {
				t.Fatalf("got %v", err)
			}
			if _, err := protocol.SignResult(&r, f.connA.SigningKey()); err == nil {
				t.Fatal("signed an invalid result")
			}
		})
	}
}

func TestResultTamperAndKeys(t *testing.T) {
	f := loadFixture(t)
	r := goodResult()
	raw, _ := protocol.SignResult(&r, f.connA.SigningKey())
	env, payload := splitEnvelope(t, raw)
	for i := range payload {
		p := bytes.Clone(payload)
		p[i] ^= 0x08
		if _, err := protocol.VerifyResult(signRawWithSig(t, cloneMap(env), p), f.connectorResultKeys()); !errors.Is(err, protocol.ErrBadSignature) {
			t.Fatalf("byte %d: %v", i, err)
		}
	}
	// Only connector B trusted: A's result has an unknown signer.
	_, err := protocol.VerifyResult(raw, protocol.VerifyKeys{f.connB.KID: f.connB.Public().Verify})
	wantKind(t, err, protocol.ErrUnknownSigner)
	// A command envelope is not a result, even when both keys are trusted.
	cmd := buildCommand(t, f, baseCommand(protocol.OpUnlock))
	_, err = protocol.VerifyResult(cmd, protocol.VerifyKeys{f.sender.KID: f.sender.Public().Verify})
	wantKind(t, err, protocol.ErrInvalidField)
	// Relabelled as a result: the signature's domain label differs.
	e2, _ := splitEnvelope(t, cmd)
	e2["type"] = "result"
	b, _ := json.Marshal(e2)
	_, err = protocol.VerifyResult(b, protocol.VerifyKeys{f.sender.KID: f.sender.Public().Verify})
	wantKind(t, err, protocol.ErrBadSignature)
	// Unknown member in a violation.
	bad := strings.Replace(string(payload), `"rule":`, `"weight":1,"rule":`, 1)
	_, err = protocol.VerifyResult(signRaw(t, protocol.TypeResult, []byte(bad), f.connA.SigningKey()), f.connectorResultKeys())
	wantKind(t, err, protocol.ErrUnknownField)
}

func TestResultCodesStable(t *testing.T) {
	// The wire values are API: this list changes only by appending.
	want := []string{"succeeded", "policy_violation", "rejected_by_dc", "user_not_found", "ambiguous_user",
		"out_of_scope", "protected_account", "access_denied", "account_disabled", "rate_limited", "expired",
		"invalid_command", "transient", "internal", "superseded"}
	got := protocol.ResultCodes()
	if len(got) != len(want) {
		t.Fatalf("got %d codes", len(got))
	}
	for i := range want {
		if string(got[i]) != want[i] || !got[i].Valid() || got[i].DefaultMessage() == "" {
			t.Fatalf("code %d: %q", i, got[i])
		}
	}
	if protocol.ResultCode("Succeeded").Valid() {
		t.Fatal("codes are case-sensitive")
	}
	if protocol.CodeOf(errors.New("x")) != protocol.CodeInternal || protocol.CodeOf(nil) != protocol.CodeSucceeded {
		t.Fatal("CodeOf")
	}
}

type holder struct {
	Name string
	pw   protocol.Secret
	PW   protocol.Secret
}

// TestSecretRedaction: no way of printing, logging or marshalling shows
// the password.
func TestSecretRedaction(t *testing.T) {
	s := protocol.SecretFromString(pwNew)
	h := holder{Name: "x", pw: s, PW: s}
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T"} {
		outs = append(outs, fmt.Sprintf(verb, s), fmt.Sprintf(verb, h), fmt.Sprintf(verb, &h))
	}
	j, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	outs = append(outs, string(j))
	var logBuf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logBuf, nil))
	log.Info("x", "secret", s, "holder", h)
	slog.New(slog.NewTextHandler(&logBuf, nil)).Info("y", "secret", s, slog.Any("h", h))
	outs = append(outs, logBuf.String())
	for _, o := range outs {
		noSecret(t, o)
		if strings.Contains(o, fmt.Sprint([]byte(pwNew)[:4])) || strings.Contains(o, fmt.Sprintf("%x", pwNew[:4])) {
			t.Fatalf("raw bytes leaked: %s", o)
		}
	}
	if !strings.Contains(logBuf.String(), "[REDACTED]") {
		t.Fatalf("log lacks the redaction marker: %s", logBuf.String())
	}
	if string(s.Bytes()) != pwNew || s.UTF16Len() != len(pwNew) {
		t.Fatal("Bytes")
	}
	s.Zero()
	if !s.IsEmpty() || !h.PW.IsEmpty() {
		t.Fatal("Zero did not clear every copy")
	}
}

// TestErrorsCarryNoSecret drives every failure path that has opened or is
// near a password and checks the error text.
func TestErrorsCarryNoSecret(t *testing.T) {
	f := loadFixture(t)
	raw := buildCommand(t, f, baseCommand(protocol.OpChange))
	var errs []error
	for _, now := range []time.Time{testNow.Add(time.Hour), testNow.Add(-time.Hour)} {
		_, err := receive(f.receiver(now), raw)
		errs = append(errs, err)
	}
	_, err := receive(f.receiver(testNow, f.connB), raw)
	errs = append(errs, err)
	rcv := f.receiver(testNow)
	receive(rcv, raw)
	_, err = receive(rcv, raw)
	errs = append(errs, err)
	errs = append(errs, protocol.ValidatePassword(protocol.SecretFromString(pwNew+"\x00")))
	errs = append(errs, protocol.ValidatePassword(protocol.SecretFromString(strings.Repeat(pwNew, 40))))
	for _, err := range errs {
		if err == nil {
			t.Fatal("expected an error")
		}
		noSecret(t, err.Error())
		noSecret(t, fmt.Sprintf("%+v %#v", err, err))
	}
}

// TestResultVersions: a v2 result names the command it answers by its
// digest (required); a v1 result (answering a v1 command) has no digest
// and no code added since v1; the envelope's v is the payload's.
func TestResultVersions(t *testing.T) {
	f := loadFixture(t)
	d := [32]byte{7}
	v2 := func(mut func(*protocol.Result)) protocol.Result {
		r := goodResult()
		r.V, r.CommandDigest = 2, protocol.DigestString(d)
		if mut != nil {
			mut(&r)
		}
		return r
	}
	for _, tc := range []struct {
		name string
		r    protocol.Result
		ok   bool
	}{
		{"v2", v2(nil), true},
		{"v2-superseded", v2(func(r *protocol.Result) {
			r.Code, r.Violations, r.Message = protocol.CodeSuperseded, nil, protocol.CodeSuperseded.DefaultMessage()
		}), true},
		{"v2-no-digest", v2(func(r *protocol.Result) { r.CommandDigest = "" }), false},
		{"v2-short-digest", v2(func(r *protocol.Result) { r.CommandDigest = "AAAA" }), false},
		{"v2-url-digest", v2(func(r *protocol.Result) {
			r.CommandDigest = strings.ReplaceAll(protocol.DigestString([32]byte{0xfb}), "+", "-")
		}), false},
		{"v1", goodResult(), true},
		{"v1-digest", v2(func(r *protocol.Result) { r.V = 1 }), false},
		{"v1-superseded", func() protocol.Result {
			r := goodResult()
			r.Code, r.Violations = protocol.CodeSuperseded, nil
			return r
		}(), false},
		{"v3", v2(func(r *protocol.Result) { r.V = 3 }), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := protocol.SignResult(&tc.r, f.connA.SigningKey())
			if !tc.ok {
				if err == nil {
					t.Fatal("signed")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := protocol.VerifyResult(raw, f.connectorResultKeys())
			if err != nil {
				t.Fatal(err)
			}
			env, _ := splitEnvelope(t, raw)
			if env["v"] != float64(tc.r.V) {
				t.Errorf("envelope v %v, payload v %d", env["v"], tc.r.V)
			}
			if !got.Answers(tc.r.CommandID, d) {
				t.Error("does not answer its command")
			}
			if tc.r.V == 2 && got.Answers(tc.r.CommandID, [32]byte{8}) {
				t.Error("a v2 result answers a command with another digest")
			}
			if got.Answers("other", d) {
				t.Error("answers another id")
			}
		})
	}
}

func TestCodeForVersion(t *testing.T) {
	if got := protocol.CodeSuperseded.For(1); got != protocol.CodeExpired {
		t.Errorf("superseded for v1: %s", got)
	}
	for _, c := range protocol.ResultCodes() {
		if got := c.For(2); got != c {
			t.Errorf("%s for v2: %s", c, got)
		}
		if c != protocol.CodeSuperseded && c.For(1) != c {
			t.Errorf("%s for v1: %s", c, c.For(1))
		}
	}
}
