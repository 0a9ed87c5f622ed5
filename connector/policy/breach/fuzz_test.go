package breach

import (
	"bytes"
	"context"
	"encoding/hex"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzBuild: any input either fails with an error or builds an index that
// opens and contains every hash of the input's valid lines.
func FuzzBuild(f *testing.F) {
	f.Add("5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8:3\r\n")
	f.Add("8846F7EAEE8FB117AD06BDD830B7586C\n\n8846f7eaee8fb117ad06bdd830b7586c:1\n")
	f.Add("zz:1\n")
	f.Add(":\n")
	f.Fuzz(func(t *testing.T, in string) {
		out := filepath.Join(t.TempDir(), "x.idx")
		st, err := Build(context.Background(), strings.NewReader(in), out, BuildOptions{ChunkRecords: 3})
		if err != nil {
			return
		}
		ix, err := Open(out)
		if err != nil {
			t.Fatalf("built index does not open: %v", err)
		}
		defer ix.Close()
		if ix.Len() != st.Records || ix.Kind() != st.Kind {
			t.Fatalf("Len %d Kind %v, stats %+v", ix.Len(), ix.Kind(), st)
		}
		for _, line := range strings.Split(in, "\n") {
			h, _, _ := strings.Cut(strings.TrimSpace(line), ":")
			b, err := hex.DecodeString(h)
			if err != nil || len(b) != ix.kind.Width() {
				continue
			}
			if ok, err := ix.ContainsHash(b); err != nil || !ok {
				t.Fatalf("hash %s of the input not found: %v %v", h, ok, err)
			}
		}
	})
}

// FuzzNewIndex: arbitrary bytes never panic the reader, and a lookup in
// whatever opens never panics either.
func FuzzNewIndex(f *testing.F) {
	var good bytes.Buffer
	good.WriteString(magic)
	f.Add(good.Bytes())
	f.Add(make([]byte, dataOffset+20))
	f.Fuzz(func(t *testing.T, data []byte) {
		ix, err := NewIndex(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		if _, err := ix.Breached("password"); err != nil {
			t.Fatalf("lookup in a valid index: %v", err)
		}
	})
}
