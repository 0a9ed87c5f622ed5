package logevent

import (
	"context"
	"log/slog"
	"strings"
	"testing"
)

func TestCommandKind(t *testing.T) {
	for code, want := range map[string]string{
		"succeeded": CommandSucceeded, "transient": CommandFailed, "internal": CommandFailed,
		"user_not_found": CommandRefused, "policy_violation": CommandRefused, "rejected_by_dc": CommandRefused,
		"access_denied": CommandRefused, "rate_limited": CommandRefused, "expired": CommandRefused,
	} {
		if got := CommandKind(code); got != want {
			t.Errorf("CommandKind(%s) = %s, want %s", code, got, want)
		}
	}
}

func TestLogTagsTheLine(t *testing.T) {
	var b strings.Builder
	var kind string
	l := slog.New(captureKind{slog.NewTextHandler(&b, nil), &kind})
	Log(context.Background(), l, slog.LevelWarn, DCDown, "dc down", "dc", "ldaps://dc1")
	if kind != DCDown || !strings.Contains(b.String(), "event=dc_down") {
		t.Fatalf("kind %q, line %q", kind, b.String())
	}
}

type captureKind struct {
	slog.Handler
	kind *string
}

func (c captureKind) Handle(ctx context.Context, r slog.Record) error {
	*c.kind = Of(r)
	return c.Handler.Handle(ctx, r)
}
