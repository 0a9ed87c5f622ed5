package winsvc

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

type event struct {
	kind string
	id   uint32
	msg  string
}

type fakeEventLog struct {
	mu     sync.Mutex
	events []event
	fail   error
}

func (f *fakeEventLog) add(kind string, id uint32, msg string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, event{kind, id, msg})
	return f.fail
}

func (f *fakeEventLog) Info(id uint32, msg string) error    { return f.add("info", id, msg) }
func (f *fakeEventLog) Warning(id uint32, msg string) error { return f.add("warning", id, msg) }
func (f *fakeEventLog) Error(id uint32, msg string) error   { return f.add("error", id, msg) }

func TestEventHandlerLevelsAndFormat(t *testing.T) {
	fl := &fakeEventLog{}
	log := slog.New(newEventHandler(fl, slog.LevelInfo))
	log.Debug("not written")
	log.Info("connector started", "version", "v1.2.3")
	log.Warn("dc down", "dc", "ldaps://dc2.corp.example:636")
	log.Error("journal", "err", errors.New("disk full"))

	want := []event{
		{"info", EventInfo, `level=INFO msg="connector started" version=v1.2.3`},
		{"warning", EventWarning, `level=WARN msg="dc down" dc=ldaps://dc2.corp.example:636`},
		{"error", EventError, `level=ERROR msg=journal err="disk full"`},
	}
	if len(fl.events) != len(want) {
		t.Fatalf("events %+v", fl.events)
	}
	for i, w := range want {
		if fl.events[i] != w {
			t.Errorf("event %d = %+v, want %+v", i, fl.events[i], w)
		}
	}
}

func TestEventHandlerAttrsAndGroups(t *testing.T) {
	fl := &fakeEventLog{}
	base := slog.New(newEventHandler(fl, nil))
	a := base.With("component", "engine").WithGroup("cmd")
	b := base.With("component", "queue")
	a.Info("handled", "id", "c1", "outcome", "succeeded")
	b.Info("link up")
	base.Info("plain")
	got := []string{fl.events[0].msg, fl.events[1].msg, fl.events[2].msg}
	want := []string{
		`level=INFO msg=handled component=engine cmd.id=c1 cmd.outcome=succeeded`,
		`level=INFO msg="link up" component=queue`,
		`level=INFO msg=plain`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if base.Enabled(context.Background(), slog.LevelDebug) {
		t.Error("debug enabled at the default info level")
	}
}

func TestEventHandlerReportsWriteError(t *testing.T) {
	boom := errors.New("event log full")
	h := newEventHandler(&fakeEventLog{fail: boom}, nil)
	var r slog.Record
	r.Level, r.Message = slog.LevelError, "x"
	if err := h.Handle(context.Background(), r); !errors.Is(err, boom) {
		t.Errorf("Handle = %v, want %v", err, boom)
	}
}

func TestLineWriter(t *testing.T) {
	fl := &fakeEventLog{}
	w := &lineWriter{w: fl}
	for _, chunk := range []string{`{"level":"INFO","msg":"star`, "ted\"}\n\n", "second\r\nthird (incomplete)"} {
		if n, err := w.Write([]byte(chunk)); n != len(chunk) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	want := []event{{"info", EventInfo, `{"level":"INFO","msg":"started"}`}, {"info", EventInfo, "second"}}
	if len(fl.events) != 2 || fl.events[0] != want[0] || fl.events[1] != want[1] {
		t.Errorf("events %+v", fl.events)
	}
}
