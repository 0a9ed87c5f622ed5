package winsvc

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
)

// eventWriter is the part of *eventlog.Log the handler uses.
type eventWriter interface {
	Info(eid uint32, msg string) error
	Warning(eid uint32, msg string) error
	Error(eid uint32, msg string) error
}

// Event ids written to the event log, by level.
const (
	EventInfo    = 1
	EventWarning = 2
	EventError   = 3
)

// eventHandler formats each record as one logfmt line (like slog's
// TextHandler, without the time: the event log stamps it) and writes it as
// an information, warning or error event.
type eventHandler struct {
	w     eventWriter
	level slog.Leveler
	// ops replays WithAttrs/WithGroup on the per-record text handler.
	ops []func(slog.Handler) slog.Handler
}

func newEventHandler(w eventWriter, level slog.Leveler) *eventHandler {
	if level == nil {
		level = slog.LevelInfo
	}
	return &eventHandler{w: w, level: level}
}

func (h *eventHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

func (h *eventHandler) Handle(ctx context.Context, r slog.Record) error {
	var buf bytes.Buffer
	var th slog.Handler = slog.NewTextHandler(&buf, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	})
	for _, op := range h.ops {
		th = op(th)
	}
	if err := th.Handle(ctx, r); err != nil {
		return err
	}
	msg := strings.TrimRight(buf.String(), "\n")
	switch {
	case r.Level >= slog.LevelError:
		return h.w.Error(EventError, msg)
	case r.Level >= slog.LevelWarn:
		return h.w.Warning(EventWarning, msg)
	default:
		return h.w.Info(EventInfo, msg)
	}
}

func (h *eventHandler) with(op func(slog.Handler) slog.Handler) *eventHandler {
	n := *h
	n.ops = append(append([]func(slog.Handler) slog.Handler(nil), h.ops...), op)
	return &n
}

func (h *eventHandler) WithAttrs(as []slog.Attr) slog.Handler {
	if len(as) == 0 {
		return h
	}
	return h.with(func(t slog.Handler) slog.Handler { return t.WithAttrs(as) })
}

func (h *eventHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return h.with(func(t slog.Handler) slog.Handler { return t.WithGroup(name) })
}

// lineWriter writes each complete line as one information event: for a
// logger that only takes an io.Writer (the run command's configured log).
type lineWriter struct {
	mu  sync.Mutex
	w   eventWriter
	buf []byte
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		line := strings.TrimRight(string(l.buf[:i]), "\r")
		l.buf = l.buf[i+1:]
		if line == "" {
			continue
		}
		if err := l.w.Info(EventInfo, line); err != nil {
			return len(p), err
		}
	}
	return len(p), nil
}
