package cli

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/adwriteback/adwriteback/connector/doctor"
)

// DoctorCommand is `adwriteback doctor --config FILE [--reply-queue NAME]
// [--json]`: it checks the configuration, the DCs (reachability, TLS trust
// and expiry, bind, policy hints), the policies, the service account's
// rights on each scoped OU, the keys, the journal and audit paths, and the
// way to Service Bus (proxy, TLS to the namespace, the Entra ID token, the
// clock, Listen on the queue and Send on the reply queue), and explains
// each failure with a fix. Exit code 0 when nothing failed, 1 when a check
// failed, 2 for a usage error.
func DoctorCommand() Command {
	return Command{Name: "doctor", Summary: "diagnose the configuration, DCs, rights, keys and queue, with fixes", Run: runDoctor}
}

func runDoctor(ctx context.Context, env *Env, args []string) error {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	path := fs.String("config", "", "configuration file (YAML)")
	asJSON := fs.Bool("json", false, "write the report as JSON")
	timeout := fs.Duration("timeout", 10*time.Second, "time limit of each network step")
	reply := fs.String("reply-queue", "", "check the Send right on this queue instead of results.reply_queue")
	if help, err := parseFlags(fs, env, args); help || err != nil {
		return err
	}
	if *path == "" {
		return Usage("doctor: --config FILE is required")
	}
	if *timeout <= 0 {
		return Usage("doctor: --timeout must be positive")
	}
	rep := doctor.Run(ctx, doctor.Options{ConfigPath: *path, Getenv: env.Getenv, Timeout: *timeout, ReplyQueue: *reply, Logger: env.Log})
	var err error
	if *asJSON {
		err = rep.WriteJSON(env.Stdout)
	} else {
		err = rep.WriteText(env.Stdout)
	}
	if err != nil {
		return err
	}
	if rep.Failed() {
		return &ExitError{Code: 1, Err: fmt.Errorf("doctor: %d check(s) failed", rep.Count(doctor.Fail))}
	}
	return nil
}
