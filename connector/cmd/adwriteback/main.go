// Command adwriteback is the on-prem password writeback connector.
//
// This file is the one place where the program is wired together: every
// command the binary knows is listed in commands below.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/adwriteback/adwriteback/connector/cli"
)

// version is set by the linker: -ldflags "-X main.version=v1.2.3".
var version string

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "adwriteback:", err)
	}
	os.Exit(cli.ExitCode(err))
}

func run(ctx context.Context, args []string) error {
	env := &cli.Env{
		Stdin:   os.Stdin,
		Stdout:  os.Stdout,
		Stderr:  os.Stderr,
		Log:     slog.New(slog.NewTextHandler(os.Stderr, nil)),
		Getenv:  os.Getenv,
		Version: version,
	}
	return commands().Dispatch(ctx, env, args)
}

// commands is the command table. Add a new command here.
func commands() cli.Table {
	t := cli.Table{}
	add := func(c cli.Command) { t[c.Name] = c }
	add(cli.VersionCommand(cli.BuildInfo{Version: version}))
	add(cli.KeygenCommand())
	add(cli.RunCommand())
	add(cli.CheckConfigCommand())
	add(cli.SendCommand())
	add(cli.StatusCommand())
	add(cli.DoctorCommand())
	add(cli.ServiceCommand(t))
	add(cli.PolicyCommand())
	add(cli.HelpCommand(t))
	return t
}
