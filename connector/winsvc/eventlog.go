package winsvc

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/adwriteback/adwriteback/connector/logevent"
)

// eventWriter is the part of *eventlog.Log the handler uses.
type eventWriter interface {
	Info(eid uint32, msg string) error
	Warning(eid uint32, msg string) error
	Error(eid uint32, msg string) error
}

// Event IDs written to the event log. A line of a kind an operator
// watches for (its attribute event=<kind>, connector/logevent) has the
// kind's own ID; any other line has the ID of its level. The table is in
// docs/operating.md; an ID, once documented, never changes meaning.
const (
	EventInfo    = 1
	EventWarning = 2
	EventError   = 3

	EventStart                = 100
	EventStop                 = 101
	EventReady                = 110
	EventNotReady             = 111
	EventDCDown               = 120
	EventDCUp                 = 121
	EventJournalUnwritable    = 130
	EventResultsUndeliverable = 140
	EventCommandSucceeded     = 200
	EventCommandRefused       = 201
	EventCommandFailed        = 202
)

// eventIDs are the IDs of the kinds.
var eventIDs = map[string]uint32{
	logevent.Start:                EventStart,
	logevent.Stop:                 EventStop,
	logevent.Ready:                EventReady,
	logevent.NotReady:             EventNotReady,
	logevent.DCDown:               EventDCDown,
	logevent.DCUp:                 EventDCUp,
	logevent.JournalUnwritable:    EventJournalUnwritable,
	logevent.ResultsUndeliverable: EventResultsUndeliverable,
	logevent.CommandSucceeded:     EventCommandSucceeded,
	logevent.CommandRefused:       EventCommandRefused,
	logevent.CommandFailed:        EventCommandFailed,
}

// eventID is the ID r is written under: its kind's, else its level's.
func eventID(r slog.Record) uint32 {
	if id, ok := eventIDs[logevent.Of(r)]; ok {
		return id
	}
	switch {
	case r.Level >= slog.LevelError:
		return EventError
	case r.Level >= slog.LevelWarn:
		return EventWarning
	}
	return EventInfo
}

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
	id := eventID(r)
	switch {
	case r.Level >= slog.LevelError:
		return h.w.Error(id, msg)
	case r.Level >= slog.LevelWarn:
		return h.w.Warning(id, msg)
	default:
		return h.w.Info(id, msg)
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

// lineWriter writes each complete line as one event: for a logger that
// only takes an io.Writer (the run command's configured log, JSON or
// text). The line's level and kind (lineEvent) choose the event's type
// and ID, as eventHandler does for a record.
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
		level, id := lineEvent(line)
		var err error
		switch {
		case level >= slog.LevelError:
			err = l.w.Error(id, line)
		case level >= slog.LevelWarn:
			err = l.w.Warning(id, line)
		default:
			err = l.w.Info(id, line)
		}
		if err != nil {
			return len(p), err
		}
	}
	return len(p), nil
}

// lineEvent reads the level and kind of one line of slog's JSON or text
// output ("level" and logevent.Key at the top level) and returns the level
// and the event ID (the kind's, else the level's). A line that is neither
// is information.
func lineEvent(line string) (slog.Level, uint32) {
	var level, kind string
	var js map[string]any
	if strings.HasPrefix(line, "{") && json.Unmarshal([]byte(line), &js) == nil {
		level, _ = js[slog.LevelKey].(string)
		kind, _ = js[logevent.Key].(string)
	} else {
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, slog.LevelKey+"="); ok && level == "" {
				level = v
			}
			if v, ok := strings.CutPrefix(f, logevent.Key+"="); ok && kind == "" {
				kind = v
			}
		}
	}
	var l slog.Level
	if l.UnmarshalText([]byte(level)) != nil {
		l = slog.LevelInfo
	}
	r := slog.NewRecord(time.Time{}, l, "", 0)
	if kind != "" {
		r.AddAttrs(logevent.Attr(kind))
	}
	return l, eventID(r)
}
