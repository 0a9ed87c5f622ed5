package stack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Variant is a build of the connector binary, by its build tag.
type Variant string

const (
	// Production is the binary as shipped.
	Production Variant = ""
	// FaultInject has the crash points of connector/engine live
	// (-tags faultinject).
	FaultInject Variant = "faultinject"
)

// Binaries are connector binaries built once, in a directory of their
// own, as the shipped binary is built (CGO_ENABLED=0).
type Binaries struct {
	dir   string
	paths map[Variant]string
}

// BuildBinaries builds the variants at once into a new temporary
// directory; Close removes it.
func BuildBinaries(ctx context.Context, variants ...Variant) (*Binaries, error) {
	root, err := ModuleRoot()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "adwriteback-bin-")
	if err != nil {
		return nil, fmt.Errorf("stack: %w", err)
	}
	b := &Binaries{dir: dir, paths: map[Variant]string{}}
	var wg sync.WaitGroup
	errs := make([]error, len(variants))
	for i, v := range variants {
		name := "adwriteback"
		args := []string{"build"}
		if v != Production {
			name += "-" + string(v)
			args = append(args, "-tags", string(v))
		}
		b.paths[v] = filepath.Join(dir, name)
		args = append(args, "-o", b.paths[v], "./connector/cmd/adwriteback")
		wg.Go(func() {
			cmd := exec.CommandContext(ctx, "go", args...)
			cmd.Dir = root
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0") // as the shipped binary is built
			if out, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("stack: go %s: %w\n%s", strings.Join(args, " "), err, out)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// Path is where the variant was built ("" if it was not).
func (b *Binaries) Path(v Variant) string { return b.paths[v] }

// Close removes the binaries.
func (b *Binaries) Close() error { return os.RemoveAll(b.dir) }

// RunWithBinaries is a TestMain body: it builds the variants into *bins,
// runs the tests, removes the binaries and returns the exit code.
func RunWithBinaries(m *testing.M, bins **Binaries, variants ...Variant) int {
	b, err := BuildBinaries(context.Background(), variants...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer b.Close()
	*bins = b
	return m.Run()
}
