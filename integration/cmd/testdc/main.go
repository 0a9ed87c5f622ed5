// Command testdc starts, stops and destroys the throw-away Samba AD DC used by
// the integration tests and the local demo.
//
//	testdc up      install Samba if missing, provision, seed, start; print how to reach it
//	testdc status  say whether it is running
//	testdc stop    stop it, keeping its data
//	testdc down    stop it and destroy its directory
//	testdc env     print shell exports for the running DC
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"

	"github.com/adwriteback/adwriteback/integration/testdc"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "testdc:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) != 1 {
		return errors.New("usage: testdc up|status|stop|down|env")
	}
	cfg := testdc.Config{Log: func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }}
	switch args[0] {
	case "up":
		info, err := testdc.Up(ctx, cfg)
		if err != nil {
			return err
		}
		return printJSON(info)
	case "status":
		info, up, err := testdc.Status(ctx, cfg)
		if err != nil {
			return fmt.Errorf("not provisioned: %w", err)
		}
		fmt.Printf("provisioned in %s; running: %v (%s)\n", info.Dir, up, info.LDAPSURL)
		if !up {
			os.Exit(3)
		}
		return nil
	case "stop":
		return testdc.Stop(ctx, cfg)
	case "down":
		return testdc.Down(ctx, cfg)
	case "env":
		info, up, err := testdc.Status(ctx, cfg)
		if err != nil || !up {
			return errors.New("the test DC is not running: run 'testdc up'")
		}
		fmt.Printf("export ADW_LDAPS_URL=%s ADW_CA_FILE=%s ADW_BASE_DN=%s ADW_BIND_DN=%q\n",
			info.LDAPSURL, info.CAFile, info.BaseDN, info.ServiceDN)
		return nil
	default:
		return fmt.Errorf("unknown subcommand %q: use up|status|stop|down|env", args[0])
	}
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
