package protocol

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"sort"
)

// Result is the signed payload of a result envelope: the connector's answer
// to one command.
type Result struct {
	V int `json:"v"`
	// CommandID is the id of the command answered.
	CommandID string `json:"commandId"`
	// CommandDigest (v2, required there) is the Digest of the command
	// answered: the standard base64 of the SHA-256 of its signed payload
	// bytes. It binds the result to that exact command, not only its id.
	CommandDigest string `json:"commandDigest,omitempty"`
	// Code is the outcome.
	Code ResultCode `json:"code"`
	// Message is safe to show the end user.
	Message string `json:"message"`
	// Violations lists every failed password rule (policy_violation only).
	Violations []Violation `json:"violations,omitempty"`
	// DCReason qualifies rejected_by_dc (required with it, absent otherwise).
	DCReason DCReason `json:"dcReason,omitempty"`
	// DC is an optional member kept for the wire format; the connector
	// never sends it (the DC is in its audit record).
	DC string `json:"dc,omitempty"`
	// Detail is a fixed, user-safe phrase for admins; never a secret, and
	// from the connector never a DC name, a DN or an error text.
	Detail string `json:"detail,omitempty"`
	// RetryAfter is a hint in seconds (rate_limited and transient only).
	RetryAfter int `json:"retryAfter,omitempty"`
	// Policy (v2) is the user's password requirements: with op describe
	// and succeeded only (describe.go).
	Policy *Policy `json:"policy,omitempty"`
	// ReceivedAt is when the connector received the command.
	ReceivedAt Timestamp `json:"receivedAt"`
	// CompletedAt is when it finished with it.
	CompletedAt Timestamp `json:"completedAt"`
}

// Violation is one failed password rule.
type Violation struct {
	// Rule is a stable snake_case rule name, e.g. "min_length".
	Rule string `json:"rule"`
	// Message is a user-safe explanation, e.g. "needs 12 characters, got 9".
	Message string `json:"message"`
	// Fields are the rule's structured parameters, e.g. {"required": 12,
	// "actual": 9}. Keys are snake_case; values are strings, numbers or
	// booleans. Never a password or part of one.
	Fields map[string]any `json:"fields,omitempty"`
}

var resultSchema = schema{
	"": keys("v", "commandId", "commandDigest", "code", "message", "violations", "dcReason", "dc",
		"detail", "retryAfter", "policy", "receivedAt", "completedAt"),
	"violations": keys("rule", "message", "fields"),
	"fields":     nil,
	"policy":     policySchema["policy"],
	"org":        policySchema["org"],
}

// Limits of result fields.
const (
	maxViolations    = 64
	maxFields        = 16
	maxMessageBytes  = 1024
	maxDetailBytes   = 2048
	maxFieldStrBytes = 256
)

// Validate checks every field of the result.
func (r *Result) Validate() error {
	for _, check := range []func() error{
		r.validHead, r.validDigest, r.validViolations, r.validQualifiers, r.validPolicy, r.validTimes,
	} {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

// validHead: version, command id, code of that version, message.
func (r *Result) validHead() error {
	if !supported(r.V) {
		return newError(ErrUnsupportedVersion, fmt.Sprintf("v=%d", r.V), nil)
	}
	if err := validID("commandId", r.CommandID); err != nil {
		return err
	}
	if !r.Code.ValidIn(r.V) {
		return invalid("code", fmt.Sprintf("unknown result code in v%d", r.V))
	}
	return validText("message", r.Message, maxMessageBytes)
}

// validViolations: violations exactly with policy_violation, each valid.
func (r *Result) validViolations() error {
	switch {
	case r.Code == CodePolicyViolation && len(r.Violations) == 0:
		return invalid("violations", "required with policy_violation")
	case r.Code != CodePolicyViolation && len(r.Violations) > 0:
		return invalid("violations", "only allowed with policy_violation")
	case len(r.Violations) > maxViolations:
		return invalid("violations", fmt.Sprintf("more than %d", maxViolations))
	}
	for i, v := range r.Violations {
		if err := v.validate(fmt.Sprintf("violations[%d]", i)); err != nil {
			return err
		}
	}
	return nil
}

// validQualifiers: dcReason exactly with rejected_by_dc; dc, detail and
// retryAfter well formed and where they belong.
func (r *Result) validQualifiers() error {
	switch {
	case r.Code == CodeRejectedByDC && !r.DCReason.Valid():
		return invalid("dcReason", "required with rejected_by_dc: history, min_age or other")
	case r.Code != CodeRejectedByDC && r.DCReason != "":
		return invalid("dcReason", "only allowed with rejected_by_dc")
	case r.DC != "" && !isDNSName(r.DC):
		return invalid("dc", "must be a DNS host name")
	case r.RetryAfter < 0:
		return invalid("retryAfter", "must not be negative")
	case r.RetryAfter > 0 && !r.Code.Retryable():
		return invalid("retryAfter", "only allowed with rate_limited or transient")
	}
	if r.Detail != "" {
		return validText("detail", r.Detail, maxDetailBytes)
	}
	return nil
}

// validTimes: both timestamps, completedAt not before receivedAt.
func (r *Result) validTimes() error {
	switch {
	case r.ReceivedAt.IsZero():
		return invalid("receivedAt", "required")
	case r.CompletedAt.IsZero():
		return invalid("completedAt", "required")
	case r.CompletedAt.Before(r.ReceivedAt.Time):
		return invalid("completedAt", "must not be before receivedAt")
	}
	return nil
}

// validDigest: a v2 result carries the answered command's digest (44
// characters of standard base64 for 32 bytes); a v1 result has none.
func (r *Result) validDigest() error {
	if r.V < 2 {
		if r.CommandDigest != "" {
			return invalid("commandDigest", "not a v1 member")
		}
		return nil
	}
	if r.CommandDigest == "" {
		return invalid("commandDigest", "required")
	}
	if b, err := strictBase64(r.CommandDigest); err != nil || len(b) != sha256.Size {
		return invalid("commandDigest", "must be the standard base64 of 32 bytes")
	}
	return nil
}

// DigestString is the CommandDigest form of a command's Digest.
func DigestString(d [32]byte) string { return base64.StdEncoding.EncodeToString(d[:]) }

// Answers reports whether the result answers exactly the command with id
// and digest: its commandId, and for a v2 result its commandDigest, match.
// A v1 result (from a v1 connector) carries no digest; only its id is
// compared.
func (r *Result) Answers(id string, digest [32]byte) bool {
	if r.CommandID != id {
		return false
	}
	return r.V < 2 || r.CommandDigest == DigestString(digest)
}

func (v Violation) validate(at string) error {
	if !validFieldKey(v.Rule) {
		return invalid(at+".rule", "must be snake_case, at most 64 characters")
	}
	if err := validText(at+".message", v.Message, maxMessageBytes); err != nil {
		return err
	}
	if len(v.Fields) > maxFields {
		return invalid(at+".fields", fmt.Sprintf("more than %d", maxFields))
	}
	names := make([]string, 0, len(v.Fields))
	for k := range v.Fields {
		names = append(names, k)
	}
	sort.Strings(names) // deterministic error for the same input
	for _, k := range names {
		f := at + ".fields." + k
		if !validFieldKey(k) {
			return invalid(at+".fields", "keys must be snake_case, at most 64 characters")
		}
		switch x := v.Fields[k].(type) {
		case bool:
		case string:
			if x != "" {
				if err := validText(f, x, maxFieldStrBytes); err != nil {
					return err
				}
			}
		case json.Number:
			if _, err := x.Float64(); err != nil {
				return invalid(f, "bad number")
			}
		case int, int32, int64, uint, uint32, uint64:
		case float64:
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return invalid(f, "must be finite")
			}
		default:
			return invalid(f, "must be a string, number or boolean")
		}
	}
	return nil
}

// SignResult validates r and returns its signed envelope.
func SignResult(r *Result, k SigningKey) ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	payload, err := encodeJSON(r)
	if err != nil {
		return nil, fmt.Errorf("protocol: encode result: %w", err)
	}
	return signEnvelope(r.V, TypeResult, payload, k)
}

// VerifiedResult is a result whose signature and fields have been checked.
type VerifiedResult struct {
	Result
	// SignerKID is the connector key id that signed it.
	SignerKID string
}

// VerifyResult checks a result envelope's size, syntax, signature (by the
// connector key its kid names) and every field.
func VerifyResult(raw []byte, keys VerifyKeys) (*VerifiedResult, error) {
	env, err := verifyEnvelope(raw, TypeResult, keys)
	if err != nil {
		return nil, err
	}
	v := &VerifiedResult{SignerKID: env.kid}
	if err := decodeResult(env.payload, &v.Result); err != nil {
		return nil, err
	}
	if v.V != env.v {
		return nil, invalid("v", fmt.Sprintf("payload v=%d differs from the envelope's v=%d", v.V, env.v))
	}
	return v, nil
}

// ParseResult strictly decodes and validates a result payload, without any
// signature. For tools and tests.
func ParseResult(payload []byte) (*Result, error) {
	var r Result
	if err := decodeResult(payload, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

func decodeResult(payload []byte, r *Result) error {
	if err := strictDecode(payload, resultSchema, r); err != nil {
		return err
	}
	return r.Validate()
}
