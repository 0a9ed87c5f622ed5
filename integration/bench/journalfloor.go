package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/adwriteback/adwriteback/connector/journal"
)

// JournalFloor is what the durable journal alone costs a command when
// nothing shares its transactions: the mark before the write to AD and
// the outcome, each an fsync'd bbolt commit, one command after another.
type JournalFloor struct {
	N           int
	PerCmdWall  time.Duration
	PerCmdCPU   time.Duration
	PerSec      float64
	CommitsEach float64 // fsync'd transactions per command
	// Mark is the latency of the awaited commit before the write to AD
	// (MarkApplying), alone: what every command's result waits for.
	Mark Latencies
	// Fdatasync is the disk's own floor: one 4 KiB write and fdatasync in
	// a preallocated file. Fdatasync2 is two of them back to back, as a
	// bbolt commit makes (the data pages, then the meta page).
	Fdatasync, Fdatasync2 Latencies
}

// MeasureJournalFloor writes n commands' journal records in sequence into
// a fresh journal under dir (a temp dir if empty).
func MeasureJournalFloor(ctx context.Context, dir string, n int) (*JournalFloor, error) {
	dir, cleanup, err := workDir(dir)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	j, err := journal.Open(filepath.Join(dir, "floor.db"), journal.Options{})
	if err != nil {
		return nil, err
	}
	defer j.Close()
	result := make([]byte, 700) // about a signed result's size
	until := time.Now().Add(time.Hour)
	marks := make([]time.Duration, 0, n)
	cpu0, t0 := cpuTime(), time.Now()
	for i := range n {
		id := fmt.Sprintf("floor-%08d", i)
		if _, err := j.Claim(ctx, id, [32]byte{byte(i)}, until); err != nil {
			return nil, err
		}
		m0 := time.Now()
		if err := j.MarkApplying(ctx, id, "CN=u,OU=Managed,DC=bench,DC=test", time.Now(), 41); err != nil {
			return nil, err
		}
		marks = append(marks, time.Since(m0))
		if err := j.Finish(ctx, id, "succeeded", "ldaps://instant.bench.test:636", result); err != nil {
			return nil, err
		}
	}
	wall, cpu := time.Since(t0), cpuTime()-cpu0
	st := j.Stats()
	syncs, err := fdatasyncFloor(filepath.Join(dir, "fdatasync.bin"), n, 1)
	if err != nil {
		return nil, err
	}
	syncs2, err := fdatasyncFloor(filepath.Join(dir, "fdatasync.bin"), n, 2)
	if err != nil {
		return nil, err
	}
	return &JournalFloor{N: n, PerCmdWall: wall / time.Duration(n), PerCmdCPU: cpu / time.Duration(n),
		PerSec: float64(n) / wall.Seconds(), CommitsEach: float64(st.Commits) / float64(n),
		Mark: summarise(marks), Fdatasync: summarise(syncs), Fdatasync2: summarise(syncs2)}, nil
}

// fdatasyncFloor times n rounds of k (4 KiB write, fdatasync) pairs,
// cycling over a preallocated 1 MiB file on the journal's file system (no
// file size change, so only the data is flushed).
func fdatasyncFloor(path string, n, k int) ([]time.Duration, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	defer os.Remove(path)
	defer f.Close()
	const page, pages = 4096, 256
	buf := make([]byte, page)
	for i := range pages {
		if _, err := f.WriteAt(buf, int64(i*page)); err != nil {
			return nil, err
		}
	}
	if err := syscall.Fdatasync(int(f.Fd())); err != nil {
		return nil, err
	}
	out := make([]time.Duration, 0, n)
	for i := range n {
		buf[0] = byte(i)
		t := time.Now()
		for j := range k {
			if _, err := f.WriteAt(buf, int64((i*k+j)%pages*page)); err != nil {
				return nil, err
			}
			if err := syscall.Fdatasync(int(f.Fd())); err != nil {
				return nil, err
			}
		}
		out = append(out, time.Since(t))
	}
	return out, nil
}
