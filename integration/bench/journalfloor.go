package bench

import (
	"context"
	"fmt"
	"path/filepath"
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
	cpu0, t0 := cpuTime(), time.Now()
	for i := range n {
		id := fmt.Sprintf("floor-%08d", i)
		if _, err := j.Claim(ctx, id, [32]byte{byte(i)}, until); err != nil {
			return nil, err
		}
		if err := j.MarkApplying(ctx, id, "CN=u,OU=Managed,DC=bench,DC=test", time.Now(), 41); err != nil {
			return nil, err
		}
		if err := j.Finish(ctx, id, "succeeded", "ldaps://instant.bench.test:636", result); err != nil {
			return nil, err
		}
	}
	wall, cpu := time.Since(t0), cpuTime()-cpu0
	st := j.Stats()
	return &JournalFloor{N: n, PerCmdWall: wall / time.Duration(n), PerCmdCPU: cpu / time.Duration(n),
		PerSec: float64(n) / wall.Seconds(), CommitsEach: float64(st.Commits) / float64(n)}, nil
}
