// Package logevent names the kinds of operational log line an operator
// watches for. A line of such a kind carries the attribute event=<kind>;
// on Windows each kind is written under its own event ID (connector/winsvc,
// docs/operating.md), so an alert can match the ID instead of the text.
package logevent

import (
	"context"
	"log/slog"
)

// Key is the attribute that holds a line's kind.
const Key = "event"

// The kinds. ldapx, which may not import this package, writes DCDown and
// DCUp under the same strings (ldapx.EventDCDown, ldapx.EventDCUp).
const (
	Start                = "start"                 // the connector runs (takes commands)
	Stop                 = "stop"                  // the connector stopped
	Ready                = "ready"                 // ready again
	NotReady             = "not_ready"             // no longer ready
	DCDown               = "dc_down"               // a DC stopped answering (once per outage)
	DCUp                 = "dc_up"                 // the DC answers again
	JournalUnwritable    = "journal_unwritable"    // work stopped until the journal is writable
	ResultsUndeliverable = "results_undeliverable" // a result could not be sent
	CommandSucceeded     = "command_succeeded"     // a command succeeded
	CommandRefused       = "command_refused"       // refused: the command, the account or the policy
	CommandFailed        = "command_failed"        // failed: the DC, the network or the connector
)

// Kinds are every kind, in the order docs/operating.md lists them.
var Kinds = []string{Start, Stop, Ready, NotReady, DCDown, DCUp, JournalUnwritable, ResultsUndeliverable,
	CommandSucceeded, CommandRefused, CommandFailed}

// Attr tags a log line with its kind.
func Attr(kind string) slog.Attr { return slog.String(Key, kind) }

// CommandKind is the class of a command's outcome (a result code):
// succeeded; failed for transient and internal (something an admin fixes
// on this side: a DC, the network, the connector); refused for every other
// code (the command, the account or the policy said no).
func CommandKind(code string) string {
	switch code {
	case "succeeded":
		return CommandSucceeded
	case "transient", "internal":
		return CommandFailed
	}
	return CommandRefused
}

// Of is the kind of r ("" for a line of no kind).
func Of(r slog.Record) string {
	kind := ""
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == Key {
			kind = a.Value.String()
			return false
		}
		return true
	})
	return kind
}

// Log writes msg with its kind at level.
func Log(ctx context.Context, l *slog.Logger, level slog.Level, kind, msg string, args ...any) {
	l.Log(ctx, level, msg, append([]any{Attr(kind)}, args...)...)
}
