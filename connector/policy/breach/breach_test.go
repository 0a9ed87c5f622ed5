package breach

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/adwriteback/adwriteback/connector/policy"
)

var _ policy.BreachChecker = (*Index)(nil)

// corpus writes n "HASH:COUNT" lines for passwords "pw-0".."pw-(n-1)" in
// random order (with some duplicates and lower-case lines), like a HIBP file.
func corpus(kind Kind, n int) string {
	rng := rand.New(rand.NewPCG(7, uint64(n)))
	lines := make([]string, 0, n+n/10)
	for i := range n {
		h := strings.ToUpper(hex.EncodeToString(kind.Hash(fmt.Sprintf("pw-%d", i))))
		if i%7 == 0 {
			h = strings.ToLower(h)
		}
		lines = append(lines, fmt.Sprintf("%s:%d", h, 1+i%50))
		if i%10 == 0 {
			lines = append(lines, fmt.Sprintf("%s:%d", h, 3))
		}
	}
	rng.Shuffle(len(lines), func(i, j int) { lines[i], lines[j] = lines[j], lines[i] })
	return strings.Join(lines, "\r\n") + "\n\n"
}

func build(t testing.TB, in string, opts BuildOptions) (*Index, BuildStats) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "breached.idx")
	st, err := Build(context.Background(), strings.NewReader(in), out, opts)
	if err != nil {
		t.Fatal(err)
	}
	ix, err := Open(out)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ix.Close() })
	return ix, st
}

func TestBuildAndQuery(t *testing.T) {
	for _, kind := range []Kind{SHA1, NT} {
		for _, chunk := range []int{0, 97} { // in memory; many runs merged from disk
			t.Run(fmt.Sprintf("%s/chunk=%d", kind, chunk), func(t *testing.T) {
				const n = 5000
				ix, st := build(t, corpus(kind, n), BuildOptions{ChunkRecords: chunk})
				if st.Kind != kind || st.Records != n || ix.Len() != n || ix.Kind() != kind {
					t.Fatalf("stats %+v, Len %d", st, ix.Len())
				}
				if chunk > 0 && st.Runs < 2 {
					t.Errorf("runs = %d, want several", st.Runs)
				}
				for i := range n {
					ok, err := ix.Breached(fmt.Sprintf("pw-%d", i))
					if err != nil || !ok {
						t.Fatalf("pw-%d: %v, %v; want breached", i, ok, err)
					}
					ok, err = ix.Breached(fmt.Sprintf("other-%d", i))
					if err != nil || ok {
						t.Fatalf("other-%d: %v, %v; want not breached", i, ok, err)
					}
				}
			})
		}
	}
}

func TestKnownHashes(t *testing.T) {
	// Published values: SHA-1("password") and NT("password").
	if got := strings.ToUpper(hex.EncodeToString(SHA1.Hash("password"))); got != "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8" {
		t.Errorf("SHA1 = %s", got)
	}
	if got := strings.ToUpper(hex.EncodeToString(NT.Hash("password"))); got != "8846F7EAEE8FB117AD06BDD830B7586C" {
		t.Errorf("NT = %s", got)
	}
	ix, _ := build(t, "8846F7EAEE8FB117AD06BDD830B7586C:3861493\n", BuildOptions{})
	if ok, _ := ix.Breached("password"); !ok {
		t.Error("password not found in NT index")
	}
	if ok, _ := ix.Breached("Password"); ok {
		t.Error("Password found in NT index")
	}
}

func TestMinCount(t *testing.T) {
	h := func(s string) string { x := sha1.Sum([]byte(s)); return hex.EncodeToString(x[:]) }
	in := h("rare") + ":1\n" + h("common") + ":100\n" + h("nocount") + "\n"
	ix, st := build(t, in, BuildOptions{MinCount: 10})
	if st.Skipped != 2 || st.Records != 1 {
		t.Fatalf("stats %+v", st)
	}
	for pw, want := range map[string]bool{"rare": false, "common": true, "nocount": false} {
		if got, _ := ix.Breached(pw); got != want {
			t.Errorf("%s: %v, want %v", pw, got, want)
		}
	}
}

func TestEmpty(t *testing.T) {
	ix, st := build(t, "", BuildOptions{})
	if st.Records != 0 || ix.Len() != 0 {
		t.Fatalf("stats %+v", st)
	}
	if ok, err := ix.Breached("x"); ok || err != nil {
		t.Errorf("empty index: %v, %v", ok, err)
	}
}

func TestBadInput(t *testing.T) {
	sha := strings.Repeat("A", 40)
	for name, in := range map[string]string{
		"short hash":   "ABCDEF:1\n",
		"not hex":      strings.Repeat("G", 40) + ":1\n",
		"bad count":    sha + ":many\n",
		"mixed kinds":  sha + ":1\n" + strings.Repeat("B", 32) + ":1\n",
		"a long line":  strings.Repeat("A", 5000) + "\n",
		"negative cnt": sha + ":-1\n",
	} {
		out := filepath.Join(t.TempDir(), "x.idx")
		_, err := Build(context.Background(), strings.NewReader(in), out, BuildOptions{})
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		if name != "a long line" && !errors.Is(err, ErrInput) {
			t.Errorf("%s: err = %v, want ErrInput", name, err)
		}
		if _, serr := os.Stat(out); serr == nil {
			t.Errorf("%s: output written despite the error", name)
		}
		entries, _ := os.ReadDir(filepath.Dir(out))
		if len(entries) != 0 {
			t.Errorf("%s: left files behind: %v", name, entries)
		}
	}
}

func TestOpenRejectsGarbage(t *testing.T) {
	dir := t.TempDir()
	good, _ := build(t, corpus(SHA1, 10), BuildOptions{})
	_ = good
	for name, data := range map[string][]byte{
		"empty":     {},
		"bad magic": make([]byte, dataOffset),
	} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
		os.WriteFile(p, data, 0o600)
		if _, err := Open(p); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	// A valid file cut short.
	out := filepath.Join(dir, "cut.idx")
	if _, err := Build(context.Background(), strings.NewReader(corpus(SHA1, 10)), out, BuildOptions{}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	os.WriteFile(out, b[:len(b)-1], 0o600)
	if _, err := Open(out); !errors.Is(err, ErrFormat) {
		t.Errorf("truncated: err = %v", err)
	}
	if _, err := Open(filepath.Join(dir, "missing")); err == nil || errors.Is(err, ErrFormat) {
		t.Errorf("missing: err = %v", err)
	}
}

func TestCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Build(ctx, strings.NewReader(corpus(SHA1, 70000)), filepath.Join(t.TempDir(), "x"), BuildOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v", err)
	}
}

// BenchmarkBreached looks passwords up in a 2,000,000-hash index on disk
// (half found, half not).
func BenchmarkBreached(b *testing.B) {
	ix, st := build(b, corpus(SHA1, 2_000_000), BuildOptions{})
	pws := make([]string, 1024)
	for i := range pws {
		if i%2 == 0 {
			pws[i] = fmt.Sprintf("pw-%d", i*1900)
		} else {
			pws[i] = fmt.Sprintf("nope-%d", i)
		}
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		ok, err := ix.Breached(pws[i%len(pws)])
		if err != nil || ok != (i%len(pws)%2 == 0) {
			b.Fatalf("%d: %v %v", i, ok, err)
		}
	}
	b.ReportMetric(float64(st.OutBytes), "index-bytes")
	b.ReportMetric(float64(ix.Len()), "hashes")
}
