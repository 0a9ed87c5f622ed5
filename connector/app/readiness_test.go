package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/adwriteback/adwriteback/connector/health"
	"github.com/adwriteback/adwriteback/connector/logevent"
)

// snap is a snapshot that is ready, or not ready because the journal
// cannot be written.
func snap(now time.Time, ready bool) health.Snapshot {
	s := health.Snapshot{
		Now: now,
		Domains: []health.Domain{{Name: "corp.example", PolicyHintsKnown: true, PolicyHints: true,
			DCs: []health.DC{{URL: "ldaps://dc1.corp.example:636", State: health.DCUp, LastOK: now, LastProbe: now}}}},
		Queue:         health.Queue{Name: "writeback", State: "up"},
		ConnectorKeys: 1, SenderKeys: 1, JournalPath: "/var/lib/adwriteback/journal.db",
	}
	if !ready {
		s.Journal = errors.New("disk full")
	}
	return s
}

type logLine struct {
	Level    string `json:"level"`
	Msg      string `json:"msg"`
	Event    string `json:"event"`
	Critical string `json:"critical"`
}

func parseLines(t *testing.T, b []byte) []logLine {
	t.Helper()
	var out []logLine
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l == "" {
			continue
		}
		var ll logLine
		if err := json.Unmarshal([]byte(l), &ll); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		out = append(out, ll)
	}
	return out
}

func TestReadinessWatchLogsEachTransitionOnce(t *testing.T) {
	for name, tc := range map[string]struct {
		states []bool
		want   []string // "ready" or "not_ready", in order
	}{
		"not ready at start: silent until ready": {
			states: []bool{false, false, true, true, false, false, true, true},
			want:   []string{logevent.Ready, logevent.NotReady, logevent.Ready},
		},
		"ready at start": {
			states: []bool{true, true, true, false, true},
			want:   []string{logevent.Ready, logevent.NotReady, logevent.Ready},
		},
		"never ready": {
			states: []bool{false, false, false},
		},
		"ready throughout": {
			states: []bool{true, true, true, true},
			want:   []string{logevent.Ready},
		},
	} {
		t.Run(name, func(t *testing.T) {
			clock := clockwork.NewFakeClock()
			var buf bytes.Buffer
			var mu sync.Mutex
			calls := make(chan int, 1)
			n := 0
			w := &readinessWatch{
				clock: clock, interval: readinessInterval,
				log: slog.New(slog.NewJSONHandler(&buf, nil)),
				snapshot: func(context.Context) health.Snapshot {
					mu.Lock()
					defer mu.Unlock()
					i := min(n, len(tc.states)-1)
					n++
					calls <- n
					return snap(clock.Now(), tc.states[i])
				},
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				defer close(done)
				w.run(ctx)
			}()
			wait := func(want int) {
				t.Helper()
				select {
				case got := <-calls:
					if got != want {
						t.Fatalf("evaluation %d, want %d", got, want)
					}
				case <-time.After(5 * time.Second):
					t.Fatalf("no evaluation %d", want)
				}
			}
			wait(1)
			// One evaluation past the last state: each state's evaluation
			// has finished (and logged) before the next one starts.
			for i := 2; i <= len(tc.states)+1; i++ {
				if err := clock.BlockUntilContext(ctx, 1); err != nil {
					t.Fatal(err)
				}
				clock.Advance(readinessInterval)
				wait(i)
			}
			cancel()
			<-done

			lines := parseLines(t, buf.Bytes())
			var got []string
			for _, l := range lines {
				got = append(got, l.Event)
				switch l.Event {
				case logevent.Ready:
					if l.Msg != "connector ready" || l.Level != "INFO" {
						t.Errorf("ready line %+v", l)
					}
				case logevent.NotReady:
					if l.Msg != "connector not ready" || l.Level != "WARN" || !strings.Contains(l.Critical, "journal: ") ||
						!strings.Contains(l.Critical, "disk full") {
						t.Errorf("not-ready line %+v", l)
					}
				default:
					t.Errorf("unexpected line %+v", l)
				}
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("logged %v, want %v\n%s", got, tc.want, buf.String())
			}
		})
	}
}

// A snapshot cut short by shutdown is not judged: no "not ready" on stop.
func TestReadinessWatchSilentOnShutdown(t *testing.T) {
	var buf bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	w := &readinessWatch{
		clock: clockwork.NewFakeClock(), interval: readinessInterval, ready: true,
		log: slog.New(slog.NewJSONHandler(&buf, nil)),
		snapshot: func(ctx context.Context) health.Snapshot {
			cancel() // the shutdown arrives while the snapshot is taken
			return snap(time.Now(), false)
		},
	}
	w.evaluate(ctx)
	if buf.Len() != 0 || !w.ready {
		t.Fatalf("logged on shutdown: %s", buf.String())
	}
}

func TestSnapFixture(t *testing.T) {
	now := time.Now()
	if !health.Evaluate(snap(now, true)).Ready || health.Evaluate(snap(now, false)).Ready {
		t.Fatal("fixture: ready/not-ready snapshots misjudged")
	}
}
