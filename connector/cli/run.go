package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"

	"github.com/adwriteback/adwriteback/connector/app"
	"github.com/adwriteback/adwriteback/connector/config"
)

// RunCommand is `adwriteback run --config FILE`: the connector itself.
func RunCommand() Command {
	return Command{Name: "run", Summary: "run the connector (receive, check, apply, report)", Run: runRun}
}

func loadConfig(env *Env, path string) (*config.Config, error) {
	if path == "" {
		return nil, Usage("--config FILE is required")
	}
	cfg, err := config.Load(path, env.Getenv)
	if err != nil {
		return nil, &ExitError{Code: 2, Err: err}
	}
	return cfg, nil
}

func runRun(ctx context.Context, env *Env, args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	path := fs.String("config", "", "configuration file (YAML)")
	if help, err := parseFlags(fs, env, args); help || err != nil {
		return err
	}
	cfg, err := loadConfig(env, *path)
	if err != nil {
		return err
	}
	var logOut io.Writer = env.Stderr
	var logFile *app.LogFile // log.path: the text log's file
	if cfg.Log.Path != "" {
		if logFile, err = app.OpenLogFile(cfg.Log.Path); err != nil {
			return fmt.Errorf("start: %w", err)
		}
		defer logFile.Close()
		logOut = logFile
	}
	log := app.NewLogger(cfg.Log, logOut)
	a, err := app.Build(ctx, cfg, app.Deps{Logger: log, Version: env.Version, ConfigPath: *path, Getenv: env.Getenv})
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	if logFile != nil {
		// After logrotate's move with `create`, SIGHUP: the text log
		// goes on in the new file.
		a.OnReload("text log", func(context.Context) error { return logFile.Reopen() })
	}
	stopReload := watchReload(ctx, a, reloadSignals())
	runErr := a.Run(ctx)
	stopReload()
	if err := a.Close(context.Background()); err != nil {
		log.Error("shutdown", "err", err)
	}
	return runErr
}

// CheckConfigCommand is `adwriteback check-config --config FILE`.
func CheckConfigCommand() Command {
	return Command{Name: "check-config", Summary: "validate a configuration file, listing every problem", Run: func(ctx context.Context, env *Env, args []string) error {
		fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
		path := fs.String("config", "", "configuration file (YAML)")
		if help, err := parseFlags(fs, env, args); help || err != nil {
			return err
		}
		cfg, err := loadConfig(env, *path)
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "%s: ok (%d domain(s), queue %q, results by %s)\n", *path, len(cfg.Domains), cfg.Queue.Name, cfg.Results.Mode)
		return nil
	}}
}

// watchReload calls a.Reload on each of sigs until ctx ends or the returned
// stop is called (which waits for a reload under way). No sigs: nothing.
func watchReload(ctx context.Context, a *app.App, sigs []os.Signal) (stop func()) {
	if len(sigs) == 0 {
		return func() {}
	}
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sigs...)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-ch:
				_ = a.Reload(ctx) // each failure is logged by Reload
			}
		}
	}()
	return func() {
		signal.Stop(ch)
		cancel()
		<-done
	}
}
