package winsvc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/adwriteback/adwriteback/connector/logevent"
	"github.com/adwriteback/adwriteback/ldapx"
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

// TestEventIDsByKind: every kind has its own ID, none of the level IDs;
// a line of a kind keeps its level's event type; ldapx writes DC down/up
// under the same kinds.
func TestEventIDsByKind(t *testing.T) {
	seen := map[uint32]string{EventInfo: "info", EventWarning: "warning", EventError: "error"}
	for _, k := range logevent.Kinds {
		id, ok := eventIDs[k]
		if !ok {
			t.Errorf("kind %s has no event ID", k)
			continue
		}
		if other, dup := seen[id]; dup {
			t.Errorf("kind %s has ID %d, already %s's", k, id, other)
		}
		seen[id] = k
		if id > 1000 {
			t.Errorf("kind %s: ID %d above EventCreate's 1000", k, id)
		}
	}
	if len(eventIDs) != len(logevent.Kinds) {
		t.Errorf("%d IDs for %d kinds", len(eventIDs), len(logevent.Kinds))
	}
	if ldapx.EventDCDown != logevent.DCDown || ldapx.EventDCUp != logevent.DCUp {
		t.Errorf("ldapx writes %q/%q, logevent names %q/%q", ldapx.EventDCDown, ldapx.EventDCUp, logevent.DCDown, logevent.DCUp)
	}

	fl := &fakeEventLog{}
	log := slog.New(newEventHandler(fl, slog.LevelInfo))
	log.Info("connector running", logevent.Attr(logevent.Start))
	log.Warn("domain controller probe failed", "event", ldapx.EventDCDown, "dc", "ldaps://dc2")
	log.Error("journal not writable: stopped taking work", logevent.Attr(logevent.JournalUnwritable))
	log.Warn("command handled", logevent.Attr(logevent.CommandKind("transient")))
	log.Info("command handled", logevent.Attr(logevent.CommandKind("user_not_found")))
	log.Info("command handled", logevent.Attr(logevent.CommandKind("succeeded")))
	log.Warn("plain")
	log.Info("unknown kind", logevent.Attr("no_such_kind"))
	want := []struct {
		kind string
		id   uint32
	}{{"info", EventStart}, {"warning", EventDCDown}, {"error", EventJournalUnwritable}, {"warning", EventCommandFailed},
		{"info", EventCommandRefused}, {"info", EventCommandSucceeded}, {"warning", EventWarning}, {"info", EventInfo}}
	if len(fl.events) != len(want) {
		t.Fatalf("events %+v", fl.events)
	}
	for i, w := range want {
		if fl.events[i].kind != w.kind || fl.events[i].id != w.id {
			t.Errorf("event %d (%s) = %s %d, want %s %d", i, fl.events[i].msg, fl.events[i].kind, fl.events[i].id, w.kind, w.id)
		}
	}
}

// TestLineWriterEventIDs: the run command's log reaches the event log as
// lines (JSON or text): their level and kind choose the type and ID.
func TestLineWriterEventIDs(t *testing.T) {
	for _, format := range []string{"json", "text"} {
		t.Run(format, func(t *testing.T) {
			fl := &fakeEventLog{}
			w := &lineWriter{w: fl}
			var h slog.Handler = slog.NewJSONHandler(w, nil)
			if format == "text" {
				h = slog.NewTextHandler(w, nil)
			}
			log := slog.New(h)
			log.Info("connector stopped", logevent.Attr(logevent.Stop))
			log.Warn("result not delivered", logevent.Attr(logevent.ResultsUndeliverable), "err", "event=dc_up level=ERROR")
			log.Info("domain controller is up again", "event", ldapx.EventDCUp)
			log.Error("something else", "err", "boom")
			log.Info("plain")
			want := []struct {
				kind string
				id   uint32
			}{{"info", EventStop}, {"warning", EventResultsUndeliverable}, {"info", EventDCUp}, {"error", EventError}, {"info", EventInfo}}
			if len(fl.events) != len(want) {
				t.Fatalf("events %+v", fl.events)
			}
			for i, w := range want {
				if fl.events[i].kind != w.kind || fl.events[i].id != w.id {
					t.Errorf("event %d (%s) = %s %d, want %s %d", i, fl.events[i].msg, fl.events[i].kind, fl.events[i].id, w.kind, w.id)
				}
			}
		})
	}
}

// TestEventIDsDocumented: docs/operating.md's table lists every kind with
// its ID.
func TestEventIDsDocumented(t *testing.T) {
	b, err := os.ReadFile("../../docs/operating.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for k, id := range eventIDs {
		row := fmt.Sprintf("| %d | `%s` |", id, k)
		if !strings.Contains(doc, row) {
			t.Errorf("docs/operating.md has no row %q", row)
		}
	}
}
