package cli

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
)

// BuildInfo describes the binary; Version is set at link time with
// -ldflags "-X main.version=...".
type BuildInfo struct {
	Version string
}

// VersionCommand prints the version, Go version and platform.
func VersionCommand(bi BuildInfo) Command {
	return Command{
		Name:    "version",
		Summary: "print the version and build information",
		Run: func(ctx context.Context, env *Env, args []string) error {
			if len(args) > 0 && args[0] != "-h" {
				return Usage("version takes no arguments")
			}
			v := bi.Version
			if v == "" {
				v = "dev"
				if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
					v = info.Main.Version
				}
			}
			_, err := fmt.Fprintf(env.Stdout, "adwriteback %s (%s, %s/%s)\n", v, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return err
		},
	}
}
