package audit

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
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

// TestReopenUnderConcurrentWritersLosesNoRecord moves the file away as
// logrotate does and reopens while writers write: every record is in
// exactly one of the two files, whole.
func TestReopenUnderConcurrentWritersLosesNoRecord(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.jsonl")
	l, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 8, 200
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				id := string(rune('a'+w)) + "-" + time.Duration(i).String()
				if err := l.Write(Record{CommandID: id, Outcome: "succeeded", Detail: strings.Repeat("x", 300)}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for i := range 5 {
		rotated := filepath.Join(dir, "audit.jsonl."+string(rune('1'+i)))
		if err := os.Rename(path, rotated); err != nil {
			t.Fatal(err)
		}
		if err := l.Reopen(); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("reopened file mode %v, want 0600", st.Mode().Perm())
	}
	files, _ := filepath.Glob(filepath.Join(dir, "audit.jsonl*"))
	seen := map[string]int{}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for n, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
			if line == "" {
				continue
			}
			var r Record
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatalf("%s line %d split or mixed: %v", name, n+1, err)
			}
			seen[r.CommandID]++
		}
	}
	if len(seen) != writers*each {
		t.Fatalf("%d distinct records, want %d", len(seen), writers*each)
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("record %s written %d times", id, n)
		}
	}
}

func TestReopenOfAWriterIsANoOp(t *testing.T) {
	var b strings.Builder
	l := New(&b)
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	if err := l.Write(Record{CommandID: "c1", Outcome: "succeeded"}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `"c1"`) {
		t.Fatalf("record not written after Reopen: %q", b.String())
	}
}
