package breach

import (
	"bufio"
	"bytes"
	"container/heap"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
)

// ErrInput is returned for input that is not in the published format.
var ErrInput = errors.New("breach: invalid input line")

// BuildOptions tune Build. The zero value is fine.
type BuildOptions struct {
	// MinCount keeps only hashes whose count is at least this (lines without
	// a count count as 1).
	MinCount uint64
	// ChunkRecords is how many records are sorted in memory at a time
	// (default 16 Mi, about 320 MiB); larger inputs are sorted in runs on
	// disk next to the output and merged.
	ChunkRecords int
}

// BuildStats describes a build.
type BuildStats struct {
	Kind     Kind
	Lines    uint64 // input lines with a hash
	Skipped  uint64 // below MinCount
	Records  uint64 // unique hashes written
	Runs     int    // sorted runs spilled to disk (0: sorted in memory)
	OutBytes int64
}

type record [20]byte // NT hashes use the first 16 bytes, zero-padded

func cmpRecord(a, b record) int { return bytes.Compare(a[:], b[:]) }

// Build reads a list in the published format ("HEX:COUNT" or "HEX" per line,
// upper or lower case, CRLF or LF, blank lines ignored; all SHA-1 (40 hex
// digits) or all NT (32)) and writes the index to outPath atomically (a
// temporary file in the same directory, renamed at the end). The input need
// not be sorted; duplicates are merged. Errors name the line number only.
func Build(ctx context.Context, in io.Reader, outPath string, opts BuildOptions) (BuildStats, error) {
	b := &builder{dir: filepath.Dir(outPath), minCount: opts.MinCount, chunk: opts.ChunkRecords}
	if b.chunk <= 0 {
		b.chunk = 16 << 20
	}
	defer b.removeRuns()
	if err := b.read(ctx, in); err != nil {
		return b.st, err
	}
	slices.SortFunc(b.recs, cmpRecord)
	b.st.Runs = len(b.runs)
	if err := b.writeIndex(ctx, outPath); err != nil {
		return b.st, err
	}
	return b.st, nil
}

// builder is one Build: the records read so far, in memory and in sorted
// runs on disk.
type builder struct {
	dir      string // the output's directory, which also holds the runs
	minCount uint64
	chunk    int
	st       BuildStats
	recs     []record
	runs     []*os.File
}

func (b *builder) removeRuns() {
	for _, f := range b.runs {
		f.Close()
		os.Remove(f.Name())
	}
}

// read adds every line of in, spilling a sorted run to disk each time chunk
// records are held.
func (b *builder) read(ctx context.Context, in io.Reader) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 4096), 4096)
	line := uint64(0)
	for sc.Scan() {
		line++
		if line%65536 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if err := b.add(line, sc.Bytes()); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("breach: reading input (line %d): %w", line+1, err)
	}
	if b.st.Kind == 0 {
		b.st.Kind = SHA1 // an empty list is a valid, empty SHA-1 index
	}
	return nil
}

// add parses input line number line and keeps its record unless it is
// blank or below minCount.
func (b *builder) add(line uint64, text []byte) error {
	r, kind, count, ok, err := parseLine(text)
	if err != nil {
		return fmt.Errorf("%w %d: %w", ErrInput, line, err)
	}
	if !ok {
		return nil
	}
	if b.st.Kind == 0 {
		b.st.Kind = kind
	} else if kind != b.st.Kind {
		return fmt.Errorf("%w %d: a %s hash in a %s list", ErrInput, line, kind, b.st.Kind)
	}
	b.st.Lines++
	if count < b.minCount {
		b.st.Skipped++
		return nil
	}
	b.recs = append(b.recs, r)
	if len(b.recs) >= b.chunk {
		f, err := spillRun(b.dir, b.recs)
		if err != nil {
			return err
		}
		b.runs = append(b.runs, f)
		b.recs = b.recs[:0]
	}
	return nil
}

// writeIndex merges the runs and the sorted records in memory into a
// temporary index file and renames it to outPath.
func (b *builder) writeIndex(ctx context.Context, outPath string) error {
	tmp, err := os.CreateTemp(b.dir, ".breach-index-*")
	if err != nil {
		return fmt.Errorf("breach: create index: %w", err)
	}
	defer func() {
		if tmp != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	w := &indexWriter{w: bufio.NewWriterSize(tmp, 1<<20), width: b.st.Kind.Width()}
	if _, err := w.w.Write(make([]byte, dataOffset)); err != nil {
		return fmt.Errorf("breach: write index: %w", err)
	}
	if err := mergeRuns(ctx, b.runs, b.recs, w.add); err != nil {
		return err
	}
	if err := commitIndex(tmp, w, b.st.Kind, outPath); err != nil {
		return err
	}
	tmp = nil
	b.st.Records = w.count
	b.st.OutBytes = dataOffset + int64(w.count)*int64(w.width)
	return nil
}

// commitIndex flushes w, writes the header at the start of tmp, syncs and
// closes tmp and renames it to outPath.
func commitIndex(tmp *os.File, w *indexWriter, kind Kind, outPath string) error {
	if err := w.w.Flush(); err != nil {
		return fmt.Errorf("breach: write index: %w", err)
	}
	if _, err := tmp.WriteAt(w.header(kind), 0); err != nil {
		return fmt.Errorf("breach: write index: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("breach: write index: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("breach: write index: %w", err)
	}
	if err := os.Rename(tmp.Name(), outPath); err != nil {
		return fmt.Errorf("breach: write index: %w", err)
	}
	return nil
}

// parseLine parses "HEX[:COUNT]"; ok is false for a blank line.
func parseLine(b []byte) (r record, kind Kind, count uint64, ok bool, err error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return r, 0, 0, false, nil
	}
	h, c, hasCount := bytes.Cut(b, []byte(":"))
	switch len(h) {
	case 40:
		kind = SHA1
	case 32:
		kind = NT
	default:
		return r, 0, 0, false, fmt.Errorf("hash of %d hex digits, want 40 (SHA-1) or 32 (NT)", len(h))
	}
	if _, err := hex.Decode(r[:], h); err != nil {
		return r, 0, 0, false, errors.New("hash is not hexadecimal")
	}
	count = 1
	if hasCount {
		count, err = strconv.ParseUint(string(c), 10, 64)
		if err != nil {
			return r, 0, 0, false, errors.New("count is not a non-negative integer")
		}
	}
	return r, kind, count, true, nil
}

func spillRun(dir string, recs []record) (*os.File, error) {
	slices.SortFunc(recs, cmpRecord)
	f, err := os.CreateTemp(dir, ".breach-run-*")
	if err != nil {
		return nil, fmt.Errorf("breach: create sort run: %w", err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	for i := range recs {
		bw.Write(recs[i][:])
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("breach: write sort run: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("breach: write sort run: %w", err)
	}
	return f, nil
}

// mergeRuns calls add with every record of the runs and of mem (sorted), in
// order.
func mergeRuns(ctx context.Context, runs []*os.File, mem []record, add func(record) error) error {
	h := &runHeap{}
	for _, f := range runs {
		s := &runSource{r: bufio.NewReaderSize(f, 1<<16)}
		if ok, err := s.next(); err != nil {
			return err
		} else if ok {
			h.s = append(h.s, s)
		}
	}
	if len(mem) > 0 {
		s := &runSource{mem: mem}
		s.next()
		h.s = append(h.s, s)
	}
	heap.Init(h)
	n := 0
	for h.Len() > 0 {
		if n++; n%(1<<20) == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		s := h.s[0]
		if err := add(s.cur); err != nil {
			return err
		}
		ok, err := s.next()
		if err != nil {
			return err
		}
		if ok {
			heap.Fix(h, 0)
		} else {
			heap.Pop(h)
		}
	}
	return nil
}

type runSource struct {
	r   *bufio.Reader
	mem []record
	cur record
}

func (s *runSource) next() (bool, error) {
	if s.r == nil {
		if len(s.mem) == 0 {
			return false, nil
		}
		s.cur, s.mem = s.mem[0], s.mem[1:]
		return true, nil
	}
	_, err := io.ReadFull(s.r, s.cur[:])
	if err == io.EOF {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("breach: read sort run: %w", err)
	}
	return true, nil
}

type runHeap struct{ s []*runSource }

func (h *runHeap) Len() int           { return len(h.s) }
func (h *runHeap) Less(i, j int) bool { return cmpRecord(h.s[i].cur, h.s[j].cur) < 0 }
func (h *runHeap) Swap(i, j int)      { h.s[i], h.s[j] = h.s[j], h.s[i] }
func (h *runHeap) Push(x any)         { h.s = append(h.s, x.(*runSource)) }
func (h *runHeap) Pop() any {
	x := h.s[len(h.s)-1]
	h.s = h.s[:len(h.s)-1]
	return x
}

// indexWriter writes sorted records, dropping duplicates and counting buckets.
type indexWriter struct {
	w      *bufio.Writer
	width  int
	count  uint64
	last   record
	bucket [fanEntries - 1]uint64
}

func (iw *indexWriter) add(r record) error {
	if iw.count > 0 && r == iw.last {
		return nil
	}
	iw.last = r
	iw.count++
	iw.bucket[int(r[0])<<8|int(r[1])]++
	if _, err := iw.w.Write(r[:iw.width]); err != nil {
		return fmt.Errorf("breach: write index: %w", err)
	}
	return nil
}

func (iw *indexWriter) header(kind Kind) []byte {
	b := make([]byte, dataOffset)
	copy(b, magic)
	b[8], b[9] = byte(kind), byte(iw.width)
	binary.LittleEndian.PutUint64(b[16:], iw.count)
	sum := uint64(0)
	for i := range fanEntries {
		binary.LittleEndian.PutUint64(b[headerSize+8*i:], sum)
		if i < len(iw.bucket) {
			sum += iw.bucket[i]
		}
	}
	return b
}
