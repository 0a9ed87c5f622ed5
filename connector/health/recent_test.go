package health

import (
	"fmt"
	"sync"
	"testing"

	"github.com/adwriteback/adwriteback/connector/audit"
)

func ids(rs []audit.Record) string {
	s := ""
	for _, r := range rs {
		s += r.CommandID + " "
	}
	return s
}

func TestRecent(t *testing.T) {
	r := NewRecent(3)
	if got := r.Last(); len(got) != 0 {
		t.Fatalf("empty: %v", got)
	}
	r.Add(audit.Record{CommandID: "a"})
	r.Add(audit.Record{CommandID: "b"})
	if got := ids(r.Last()); got != "b a " {
		t.Errorf("2 records: %q", got)
	}
	r.Add(audit.Record{CommandID: "c"})
	r.Add(audit.Record{CommandID: "d"})
	r.Add(audit.Record{CommandID: "e"})
	if got := ids(r.Last()); got != "e d c " {
		t.Errorf("after wrap: %q", got)
	}
	if n := len(NewRecent(0).buf); n != DefaultRecent {
		t.Errorf("default size %d, want %d", n, DefaultRecent)
	}
}

func TestRecentOwnsRules(t *testing.T) {
	r := NewRecent(2)
	rules := []string{"min_length"}
	r.Add(audit.Record{CommandID: "a", Rules: rules})
	rules[0] = "changed"
	if got := r.Last()[0].Rules[0]; got != "min_length" {
		t.Errorf("stored rules aliased the caller's slice: %q", got)
	}
}

func TestRecentFedByAuditLog(t *testing.T) {
	var sink syncBuffer
	log := audit.New(&sink)
	r := NewRecent(5)
	log.Subscribe(r.Add)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := log.Write(audit.Record{CommandID: fmt.Sprintf("c%02d", i), Outcome: "succeeded"}); err != nil {
				t.Error(err)
			}
		}()
		go func() { _ = r.Last() }()
	}
	wg.Wait()
	if got := r.Last(); len(got) != 5 {
		t.Errorf("kept %d records, want 5", len(got))
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b = append(s.b, p...)
	return len(p), nil
}
