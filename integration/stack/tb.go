package stack

import (
	"errors"
	"fmt"
	"os"
	"sync"
)

// TB is what the harness needs of a test: testing.TB has it, and so does
// Program, which lets the demo and the benchmark (programs, not tests)
// build the same stack.
type TB interface {
	Helper()
	Cleanup(func())
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
	Name() string
	Failed() bool
	TempDir() string
}

var _ TB = (*Program)(nil)

// Program is a TB for a program. Fatalf ends the function given to Do
// (which returns the failure as an error) and Close runs the cleanups,
// last registered first, as a test's end does.
type Program struct {
	name string
	logf func(format string, args ...any)

	mu       sync.Mutex
	cleanups []func()
	errs     []error
}

// NewProgram is a Program named name (its artifacts folder), logging
// through logf (nil: silent).
func NewProgram(name string, logf func(format string, args ...any)) *Program {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	return &Program{name: name, logf: logf}
}

// errFatal is the panic value Fatalf unwinds with, up to Do.
type errFatal struct{}

// Do runs fn; a Fatalf inside it (on this goroutine) ends fn and is
// returned, with any Errorf recorded meanwhile.
func (p *Program) Do(fn func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(errFatal); !ok {
				panic(r)
			}
		}
		err = p.Err()
	}()
	fn()
	return nil
}

// Err is every failure recorded so far (nil if none).
func (p *Program) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return errors.Join(p.errs...)
}

// Close runs the cleanups, last registered first, and returns Err.
func (p *Program) Close() error {
	for {
		p.mu.Lock()
		n := len(p.cleanups)
		if n == 0 {
			p.mu.Unlock()
			return p.Err()
		}
		f := p.cleanups[n-1]
		p.cleanups = p.cleanups[:n-1]
		p.mu.Unlock()
		_ = p.Do(f)
	}
}

func (p *Program) Helper() {}

func (p *Program) Name() string { return p.name }

func (p *Program) Cleanup(f func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cleanups = append(p.cleanups, f)
}

func (p *Program) Logf(format string, args ...any) { p.logf(format, args...) }

func (p *Program) Errorf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.errs = append(p.errs, fmt.Errorf(format, args...))
}

func (p *Program) Fatalf(format string, args ...any) {
	p.Errorf(format, args...)
	panic(errFatal{})
}

func (p *Program) Failed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.errs) > 0
}

// TempDir is a new directory that Close removes.
func (p *Program) TempDir() string {
	d, err := os.MkdirTemp("", "adwriteback-"+p.name+"-")
	if err != nil {
		p.Fatalf("temp dir: %v", err)
	}
	p.Cleanup(func() { os.RemoveAll(d) })
	return d
}
