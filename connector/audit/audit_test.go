package audit

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestRecordsAreJSONLinesAndSubscribersSeeThem(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []string
	l.Subscribe(func(r Record) { mu.Lock(); seen = append(seen, r.CommandID); mu.Unlock() })
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.Write(Record{Time: time.Now(), CommandID: string(rune('a' + i)), Outcome: "succeeded", Rules: []string{"min_length"}}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	if st.Mode().Perm() != 0o600 {
		t.Errorf("audit file mode %v", st.Mode().Perm())
	}
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("line %d: %v", n+1, err)
		}
		if r.Outcome != "succeeded" || len(r.Rules) != 1 {
			t.Fatalf("line %d: %+v", n+1, r)
		}
		n++
	}
	if n != 20 || len(seen) != 20 {
		t.Fatalf("%d lines, %d seen; want 20", n, len(seen))
	}
}
