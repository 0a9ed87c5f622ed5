// Package cli holds the adwriteback command-line commands. Each command is a
// plain function taking its I/O explicitly; the command table itself is wired
// by hand in connector/cmd/adwriteback so that only main knows the world.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
)

// Env is what a command may touch: its standard streams, a logger and the
// process environment lookup. Nothing is global.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Log    *slog.Logger
	Getenv func(string) string
	// Version of the binary (shown on the status page).
	Version string
}

// Command is one subcommand of the binary.
type Command struct {
	Name    string
	Summary string
	// Run executes the command with the arguments after its name.
	Run func(ctx context.Context, env *Env, args []string) error
}

// ExitError carries a process exit code. Commands return it when the code
// matters (for example 1 = "checked, and the answer is no", 2 = usage error).
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// Usage returns an ExitError with code 2 for a command-line mistake.
func Usage(format string, a ...any) error {
	return &ExitError{Code: 2, Err: fmt.Errorf(format, a...)}
}

// ExitCode maps an error returned by a command to a process exit code.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	return 1
}

// Table is the set of commands the binary knows.
type Table map[string]Command

// Dispatch runs the command named by args[0].
func (t Table) Dispatch(ctx context.Context, env *Env, args []string) error {
	if len(args) == 0 {
		t.WriteHelp(env.Stderr)
		return Usage("no command given")
	}
	name := args[0]
	if name == "-h" || name == "--help" {
		name = "help"
	}
	cmd, ok := t[name]
	if !ok {
		t.WriteHelp(env.Stderr)
		return unknownWord("unknown command", args[0], t.names()...)
	}
	return cmd.Run(ctx, env, args[1:])
}

// names are the commands' names, sorted.
func (t Table) names() []string {
	names := make([]string, 0, len(t))
	for n := range t {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// WriteHelp prints the command list.
func (t Table) WriteHelp(w io.Writer) {
	names := t.names()
	var b strings.Builder
	b.WriteString("adwriteback: on-prem password writeback connector for Active Directory\n\n")
	b.WriteString("Usage: adwriteback <command> [flags]\n\nCommands:\n")
	for _, n := range names {
		fmt.Fprintf(&b, "  %-14s %s\n", n, t[n].Summary)
	}
	b.WriteString("\nRun 'adwriteback <command> -h' for a command's flags.\n")
	io.WriteString(w, b.String())
}

// HelpCommand returns the "help" command for t.
func HelpCommand(t Table) Command {
	return Command{
		Name:    "help",
		Summary: "show this list of commands",
		Run: func(ctx context.Context, env *Env, args []string) error {
			if len(args) == 1 {
				if c, ok := t[args[0]]; ok && c.Name != "help" {
					return c.Run(ctx, env, []string{"-h"})
				}
				return unknownWord("unknown command", args[0], t.names()...)
			}
			t.WriteHelp(env.Stdout)
			return nil
		},
	}
}
