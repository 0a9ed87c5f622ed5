// Command bench runs the performance benchmarks of integration/bench,
// prints the results table and writes it to integration/bench/RESULTS.md:
//
//	go run ./integration/cmd/bench          # reduced (CI, a few minutes)
//	go run ./integration/cmd/bench -full    # 100,000 + 2,000 commands
//
// The DC-bound part needs the Samba test DC (root; see integration/testdc)
// and Node.js for the Service Bus emulator.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/adwriteback/adwriteback/integration/bench"
	"github.com/adwriteback/adwriteback/integration/stack"
	"github.com/adwriteback/adwriteback/integration/testdc"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	full := fs.Bool("full", false, "full run: 100,000 connector-bound commands, a 2,000-command DC burst")
	out := fs.String("out", "", "results file (default integration/bench/RESULTS.md in the module)")
	noDC := fs.Bool("no-dc", false, "skip the DC-bound part")
	dcOnly := fs.Bool("dc-only", false, "skip the connector-bound part")
	workers := fs.Int("workers", 16, "concurrent handlers in the connector-bound burst")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *noDC && *dcOnly {
		return errors.New("-no-dc and -dc-only leave nothing to measure")
	}
	if *out == "" {
		root, err := stack.ModuleRoot()
		if err != nil {
			return fmt.Errorf("%w; pass -out", err)
		}
		*out = filepath.Join(root, "integration", "bench", "RESULTS.md")
	}
	// The results' folder (integration/artifacts for `make bench`) may not
	// exist on a fresh clone: made now, not after minutes of measuring.
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return err
	}
	n, sweepN, baseline, burst, rounds, users, checks := 5000, 1000, 100, 300, 2, 30, 20000
	cmd := "CGO_ENABLED=0 go run ./integration/cmd/bench"
	if *full {
		n, sweepN, baseline, burst, rounds, users, checks = 100000, 5000, 1000, 2000, 4, 200, 200000
		cmd += " -full"
	}
	rep := &bench.Report{Machine: bench.ThisMachine(), Load: bench.LoadAvg(), Full: *full, Command: cmd}
	logf := func(f string, a ...any) {
		fmt.Fprintf(os.Stderr, "%s "+f+"\n", append([]any{time.Now().Format("15:04:05")}, a...)...)
	}

	if !*dcOnly {
		if err := connectorBound(ctx, rep, n, sweepN, *workers, logf); err != nil {
			return err
		}
		logf("policy pre-check: 1,000,000-term banned list, %d checks per case and mode", checks)
		p, err := bench.PolicyCheck(ctx, bench.PolicyOptions{Checks: checks, Log: logf})
		if err != nil {
			return fmt.Errorf("policy pre-check: %w", err)
		}
		rep.Policy = p
	}

	if !*noDC {
		dctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		info, err := testdc.Up(dctx, testdc.Config{Log: logf})
		cancel()
		if err != nil {
			rep.DCError = err.Error()
		} else {
			d, err := bench.DCBound(ctx, bench.DCOptions{Info: info, Baseline: baseline, Burst: burst, Rounds: rounds, Users: users, Log: logf})
			if err != nil {
				return fmt.Errorf("DC-bound: %w", err)
			}
			rep.DC = d
		}
	}
	rep.Notes = bench.Notes(rep)
	md := rep.Markdown()
	fmt.Print(md)
	if err := os.WriteFile(*out, []byte(md), 0o644); err != nil {
		return err
	}
	logf("wrote %s", *out)
	return nil
}

func connectorBound(ctx context.Context, rep *bench.Report, n, sweepN, workers int, logf func(string, ...any)) error {
	logf("connector-bound: %d commands, %d handlers, GOMAXPROCS=1", n, workers)
	c, err := bench.ConnectorBound(ctx, bench.ConnectorOptions{N: n, Workers: workers, Users: 1000})
	if err != nil {
		return fmt.Errorf("connector-bound: %w", err)
	}
	rep.Connector = c
	for _, w := range bench.SweepWorkers() {
		logf("connector-bound sweep: %d commands, %d handlers", sweepN, w)
		r, err := bench.ConnectorBound(ctx, bench.ConnectorOptions{N: sweepN, Workers: w, Users: 1000})
		if err != nil {
			return fmt.Errorf("connector-bound sweep: %w", err)
		}
		rep.Sweep = append(rep.Sweep, r)
	}
	logf("journal alone: %d commands one after another", sweepN)
	if rep.JournalFloor, err = bench.MeasureJournalFloor(ctx, "", sweepN); err != nil {
		return fmt.Errorf("journal floor: %w", err)
	}
	return nil
}
