package app

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/adwriteback/adwriteback/connector/config"
)

// Concurrent loggers, the file moved away and reopened mid-stream: every
// line lands whole in the old file or the new one.
func TestLogFileReopenLosesNoLine(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "adwriteback.log")
	lf, err := OpenLogFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	log := NewLogger(config.Log{Level: "info", Format: "text"}, lf)

	const writers, each = 8, 500
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				log.Info("line", "w", w, "i", i, "pad", "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz")
			}
		}()
	}
	rotated := filepath.Join(dir, "adwriteback.log.1")
	// Move it mid-stream: once some lines are in.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if fi, err := os.Stat(path); err == nil && fi.Size() > 10_000 {
			break
		}
	}
	if err := os.Rename(path, rotated); err != nil {
		t.Fatal(err)
	}
	if err := lf.Reopen(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	log.Info("after")

	if fi, err := os.Stat(path); err != nil {
		t.Fatal(err)
	} else if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("new file mode %v, want 0600", fi.Mode().Perm())
	}
	seen := map[string]bool{}
	var lastNew string
	for _, p := range []string{rotated, path} {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var lvl, msg, w, i string
			line := sc.Text()
			if p == path {
				lastNew = line
			}
			var tm string
			n, _ := fmt.Sscanf(line, "time=%s level=%s msg=%s w=%s i=%s", &tm, &lvl, &msg, &w, &i)
			if msg == "after" {
				continue
			}
			if n != 5 || msg != "line" || len(line) < 100 || line[len(line)-len("xyz"):] != "xyz" {
				t.Fatalf("split or garbled line in %s: %q", filepath.Base(p), line)
			}
			key := w + "/" + i
			if seen[key] {
				t.Fatalf("line %s twice", key)
			}
			seen[key] = true
		}
		f.Close()
	}
	if len(seen) != writers*each {
		t.Errorf("%d lines, want %d", len(seen), writers*each)
	}
	if want := "msg=after"; lastNew == "" || !strings.Contains(lastNew, want) {
		t.Errorf("last line of the new file %q, want %s", lastNew, want)
	}
}
