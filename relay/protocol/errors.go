package protocol

import (
	"errors"
	"strings"
)

// Sentinel error kinds. Every error returned by a decoder, verifier or
// opener in this package is a *Error whose Kind is one of these, so callers
// classify with errors.Is(err, protocol.ErrExpired) and never by text.
var (
	ErrTooLarge           = errors.New("message too large")
	ErrMalformed          = errors.New("malformed message")
	ErrUnknownField       = errors.New("unknown field")
	ErrUnsupportedVersion = errors.New("unsupported protocol version")
	ErrInvalidField       = errors.New("invalid field")
	ErrUnsigned           = errors.New("missing signature")
	ErrUnknownSigner      = errors.New("unknown signer key id")
	ErrBadSignature       = errors.New("signature verification failed")
	ErrExpired            = errors.New("command expired")
	ErrNotYetValid        = errors.New("command issued in the future")
	ErrReplayed           = errors.New("command already received")
	ErrIDConflict         = errors.New("command id reused for a different command")
	ErrUnknownRecipient   = errors.New("sealed to an unknown connector key id")
	ErrDecrypt            = errors.New("sealed secret does not open")
	ErrBadSecret          = errors.New("invalid secret")
	ErrReplayCache        = errors.New("replay cache unavailable")
	// ErrMessageID: the transport message's id is not the command's id,
	// so the message is a copy of a signed command (PROTOCOL.md §9).
	ErrMessageID = errors.New("message id differs from the command id")
)

// kindNames are the kinds' stable snake_case names (metric labels, audit
// records, the golden vectors).
var kindNames = map[error]string{
	ErrTooLarge: "too_large", ErrMalformed: "malformed", ErrUnknownField: "unknown_field",
	ErrUnsupportedVersion: "unsupported_version", ErrInvalidField: "invalid_field", ErrUnsigned: "unsigned",
	ErrUnknownSigner: "unknown_signer", ErrBadSignature: "bad_signature", ErrExpired: "expired",
	ErrNotYetValid: "not_yet_valid", ErrReplayed: "replayed", ErrIDConflict: "id_conflict",
	ErrUnknownRecipient: "unknown_recipient", ErrDecrypt: "decrypt", ErrBadSecret: "bad_secret",
	ErrReplayCache: "replay_cache", ErrMessageID: "message_id_mismatch",
}

// KindName is the stable snake_case name of the error's kind ("other"
// for an error of no kind of this package).
func KindName(err error) string {
	var pe *Error
	if errors.As(err, &pe) {
		if n, ok := kindNames[pe.Kind]; ok {
			return n
		}
	}
	return "other"
}

// Error is the typed error of this package. Its text never contains a
// secret: it names fields and rules, never values of sealed or opened data.
type Error struct {
	// Code is the result code the failure becomes upstream: CodeInvalidCommand,
	// CodeExpired, or CodeTransient (replay cache unavailable).
	Code ResultCode
	// Kind is one of the Err* sentinels above.
	Kind error
	// CommandID is the command's id when the failure happened after the
	// command's signature was verified (so the id is trustworthy), else "".
	// A connector uses it to answer a replayed id with its first outcome.
	CommandID string
	// Detail says which field or check failed, for admins. No secrets.
	Detail string
	// Err is the underlying cause, if any.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("protocol: ")
	if e.Kind != nil {
		b.WriteString(e.Kind.Error())
	} else {
		b.WriteString(string(e.Code))
	}
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap exposes both the kind and the cause to errors.Is / errors.As.
func (e *Error) Unwrap() []error {
	out := make([]error, 0, 2)
	if e.Kind != nil {
		out = append(out, e.Kind)
	}
	if e.Err != nil {
		out = append(out, e.Err)
	}
	return out
}

// codeFor maps a kind to the result code it becomes upstream.
func codeFor(kind error) ResultCode {
	switch kind {
	case ErrExpired, ErrNotYetValid:
		return CodeExpired
	case ErrReplayCache:
		return CodeTransient
	default:
		return CodeInvalidCommand
	}
}

func newError(kind error, detail string, cause error) *Error {
	return &Error{Code: codeFor(kind), Kind: kind, Detail: detail, Err: cause}
}

// CodeOf returns the result code an error from this package becomes
// upstream: the *Error's Code, or CodeInternal for any other error.
func CodeOf(err error) ResultCode {
	if err == nil {
		return CodeSucceeded
	}
	var pe *Error
	if errors.As(err, &pe) {
		return pe.Code
	}
	return CodeInternal
}
