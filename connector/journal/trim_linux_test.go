package journal

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// mappedKB is the resident size of path's mappings in this process.
func mappedKB(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	in, kb := false, 0
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 5 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":") {
			in = len(f) >= 6 && f[5] == path // a mapping's header line
			continue
		}
		if in && strings.HasPrefix(l, "Rss:") {
			n, _ := strconv.Atoi(strings.Fields(l)[1])
			kb += n
		}
	}
	return kb
}

// TestTrimDropsMappedPages: reading every entry maps the whole file; a
// trim leaves almost none of it resident, and the entries still read back.
func TestTrimDropsMappedPages(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.db")
	j, err := Open(path, Options{NoSync: true, TrimEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	ctx := context.Background()
	result := make([]byte, 1000)
	const n = 3000
	for i := range n {
		id := fmt.Sprint("cmd-", i)
		if _, err := j.Claim(ctx, id, [32]byte{}, time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := j.Finish(ctx, id, "succeeded", "", result); err != nil {
			t.Fatal(err)
		}
	}
	readAll := func() {
		for i := range n {
			if e, err := j.Get(ctx, fmt.Sprint("cmd-", i)); err != nil || len(e.Result) != len(result) {
				t.Fatalf("cmd-%d: %v", i, err)
			}
		}
	}
	readAll()
	before := mappedKB(t, path)
	if err := trimResident(j.db); err != nil {
		t.Fatal(err)
	}
	if after := mappedKB(t, path); after > before/10 {
		t.Fatalf("resident after trim %d KB (before %d KB)", after, before)
	}
	readAll()
}
