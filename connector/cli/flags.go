package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/agnivade/levenshtein"
)

// parseFlags parses args into fs. Help (-h) prints the usage and reports
// help=true. No error repeats an argument: a value, a stray word or a
// "flag" that is not one may be a password typed in the wrong place
// (passwords are read from standard input), so errors name the flag and
// the argument's position instead.
func parseFlags(fs *flag.FlagSet, env *Env, args []string) (help bool, err error) {
	// The flag package's own messages repeat arguments, and on an error it
	// prints the usage too: both are held back while it parses.
	usage := fs.Usage
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	err = fs.Parse(args)
	fs.Usage = usage
	fs.SetOutput(env.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		fs.Usage()
		return true, nil
	}
	if err != nil {
		return false, Usage("%s: %s", fs.Name(), flagProblem(fs, args))
	}
	if fs.NArg() > 0 {
		return false, Usage("%s: unexpected argument (%d given; only flags are accepted, and passwords are read from standard input)", fs.Name(), fs.NArg())
	}
	return false, nil
}

// flagProblem finds, the way the flag package reads args, the first
// argument it refused, and says what is wrong without repeating it.
func flagProblem(fs *flag.FlagSet, args []string) string {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if len(a) < 2 || a[0] != '-' || a == "--" {
			break
		}
		name := a[1:]
		if name[0] == '-' {
			name = name[1:]
		}
		value, hasValue := "", false
		if j := strings.IndexByte(name, '='); j >= 0 {
			name, value, hasValue = name[:j], name[j+1:], true
		}
		f := fs.Lookup(name)
		if f == nil || name == "" || name[0] == '-' {
			return fmt.Sprintf("argument %d is not a flag of %s%s (run with -h for the list)", i+1, fs.Name(), closestFlag(fs, name))
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			if _, err := strconv.ParseBool(value); hasValue && err != nil {
				return fmt.Sprintf("--%s takes true or false (argument %d)", name, i+1)
			}
			continue
		}
		if !hasValue {
			if i+1 >= len(args) {
				return fmt.Sprintf("--%s needs a value", name)
			}
			i++
			value = args[i]
		}
		if err := f.Value.Set(value); err != nil {
			return fmt.Sprintf("invalid value for --%s (argument %d; not repeated here): %s", name, i+1, f.Usage)
		}
	}
	return "invalid flags (run with -h for the list)"
}

// unknownWord is the error for a command, subcommand or action word that
// is not one of known; what says which ("unknown command", "policy: unknown
// subcommand"). The word is not repeated (it may be a password typed in the
// wrong place); the nearest known one is suggested.
func unknownWord(what, got string, known ...string) error {
	hint := "not repeated here"
	if best := nearest(got, known); best != "" {
		hint += "; did you mean " + strconv.Quote(best) + "?"
	}
	return Usage("%s (%s)", what, hint)
}

// closestFlag suggests the defined flag nearest to a mistyped name.
func closestFlag(fs *flag.FlagSet, name string) string {
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	if best := nearest(name, names); best != "" {
		return " (did you mean --" + best + "?)"
	}
	return ""
}

// nearest is the word of known within two edits of got (case aside), the
// closest and, among equals, the first in sort order; "" when none is.
func nearest(got string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if d := levenshtein.ComputeDistance(strings.ToLower(got), k); d < bestD || d == bestD && k < best {
			best, bestD = k, d
		}
	}
	return best
}
