package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"unicode/utf8"

	"github.com/adwriteback/adwriteback/connector/policy"
	"github.com/adwriteback/adwriteback/connector/policy/breach"
)

// maxPasswordInput bounds what "policy check" reads from stdin.
const maxPasswordInput = 64 << 10

// ExitPolicyUnchecked is the exit code of "policy check" when the check
// could not be completed (the breached-password index failed to read).
const ExitPolicyUnchecked = 3

const policyUsage = `Usage:
  adwriteback policy check [flags] < password
  adwriteback policy build-breached --in FILE --out INDEX [--min-count N]

check reads one password from standard input (one trailing newline, LF or
CRLF, is removed) and checks it against an offline policy given by flags:
Active Directory's length and complexity rules (Microsoft's definition: UTF-16
length, at most 256; 3 of 5 character categories; account name and display-
name tokens) plus the organisation's extras. The password is never printed.
Exit status: 0 the password passes, 1 it violates the policy, 2 usage error,
3 the check could not be completed.

build-breached turns a breached-password list in the published format
("HASH:COUNT" lines of 40-hex SHA-1 or 32-hex NT hashes, any order) into the
index file that --breached reads.

check flags:
`

// PolicyCommand returns the "policy" command.
func PolicyCommand() Command {
	return Command{
		Name:    "policy",
		Summary: "check a password against the password policy; build the breached-password index",
		Run: func(ctx context.Context, env *Env, args []string) error {
			if len(args) == 0 {
				io.WriteString(env.Stderr, policyUsage)
				newCheckFlags(env.Stderr).fs.PrintDefaults()
				return Usage("policy: give a subcommand: check or build-breached")
			}
			switch args[0] {
			case "check":
				return policyCheck(ctx, env, args[1:])
			case "build-breached":
				return policyBuildBreached(ctx, env, args[1:])
			case "-h", "--help", "help":
				io.WriteString(env.Stdout, policyUsage)
				newCheckFlags(env.Stdout).fs.PrintDefaults()
				return nil
			}
			return unknownWord("policy: unknown subcommand", args[0], "check", "build-breached")
		},
	}
}

type checkFlags struct {
	fs           *flag.FlagSet
	minLength    int
	orgMinLength int
	complexity   bool
	sam          string
	displayName  string
	banned       string
	bannedMode   string
	firstName    string
	lastName     string
	tenantName   string
	breached     string
	jsonOut      bool
	config       string
	user         string
	domain       string
}

func newCheckFlags(out io.Writer) *checkFlags {
	f := &checkFlags{fs: flag.NewFlagSet("policy check", flag.ContinueOnError)}
	f.fs.SetOutput(out)
	f.fs.IntVar(&f.minLength, "min-length", 7, "the domain's minimum length (minPwdLength; AD's default domain policy: 7)")
	f.fs.BoolVar(&f.complexity, "complexity", true, "complexity requirements on (pwdProperties bit 1; AD's default: on); also switches the name rules")
	f.fs.IntVar(&f.orgMinLength, "org-min-length", 0, "the organisation's minimum length, applied when above --min-length")
	f.fs.StringVar(&f.sam, "sam", "", "the user's sAMAccountName, for the account-name rule")
	f.fs.StringVar(&f.displayName, "display-name", "", "the user's displayName, for the display-name rule")
	f.fs.StringVar(&f.banned, "banned", "", "banned-word list `FILE` (one term per line, 4 to 63 characters, # comments)")
	f.fs.StringVar(&f.bannedMode, "banned-mode", "", "how the banned list decides: strict (any term within one edit refuses) or entra (as Entra Password Protection: a score of 5 needed); default strict, or the config's org_policy.banned_mode with --config")
	f.fs.StringVar(&f.firstName, "first-name", "", "the user's givenName, matched in entra mode")
	f.fs.StringVar(&f.lastName, "last-name", "", "the user's sn, matched in entra mode")
	f.fs.StringVar(&f.tenantName, "tenant-name", "", "the tenant name, matched in entra mode")
	f.fs.StringVar(&f.breached, "breached", "", "breached-password `INDEX` made by 'policy build-breached'")
	f.fs.BoolVar(&f.jsonOut, "json", false, `print {"ok": bool, "violations": [...]} as JSON`)
	f.fs.StringVar(&f.config, "config", "", "connector config `FILE`: read the live effective policy of --user from AD (domain or PSO, plus the org rules of the config)")
	f.fs.StringVar(&f.user, "user", "", "user whose live policy applies (with --config): upn:NAME@DOMAIN, sam:NAME, objectGUID:GUID, immutableId:BASE64")
	f.fs.StringVar(&f.domain, "domain", "", "AD domain of --user when the config has several")
	return f
}

func policyCheck(ctx context.Context, env *Env, args []string) error {
	f := newCheckFlags(env.Stderr)
	if help, err := parseFlags(f.fs, env, args); help || err != nil {
		return err
	}
	if (f.config == "") != (f.user == "") {
		return Usage("policy check: --config and --user go together (the live policy of a user)")
	}
	if f.minLength < 0 || f.orgMinLength < 0 {
		return Usage("policy check: lengths must not be negative")
	}
	if _, err := policy.ParseBannedMode(f.bannedMode); err != nil {
		return Usage("policy check: --banned-mode: %v", err)
	}
	p, who, cleanup, err := f.basePolicy(ctx, env)
	if err != nil {
		return err
	}
	defer cleanup()
	if f.bannedMode != "" {
		p.BannedMode = policy.BannedMode(f.bannedMode)
	}
	if p.BannedMode == "" {
		p.BannedMode = policy.BannedStrict
	}
	closeBreached, err := f.addLists(&p)
	if err != nil {
		return err
	}
	defer closeBreached()

	pw, err := readPassword(env.Stdin)
	if err != nil {
		return err
	}
	vs, err := policy.Check(p, who, pw)
	if err != nil {
		return &ExitError{Code: ExitPolicyUnchecked, Err: fmt.Errorf("policy check: %w", err)}
	}
	var reading *policy.BannedReading
	if p.Banned != nil || p.BannedMode == policy.BannedEntra {
		r := policy.ReadBanned(p, who, pw)
		reading = &r
	}
	if err := f.writeVerdict(env.Stdout, p.BannedMode, vs, reading); err != nil {
		return err
	}
	if len(vs) > 0 {
		return &ExitError{Code: 1, Err: fmt.Errorf("the password does not meet the policy (%d violations)", len(vs))}
	}
	return nil
}

// basePolicy is the policy to check and the user it applies to: the live policy
// of --user (with --config; cleanup releases it) or the one the flags give.
func (f *checkFlags) basePolicy(ctx context.Context, env *Env) (p policy.Policy, who policy.User, cleanup func(), err error) {
	if f.config != "" {
		return livePolicy(ctx, env, f.config, f.user, f.domain)
	}
	p = policy.Policy{MinLength: f.minLength, OrgMinLength: f.orgMinLength, ComplexityEnabled: f.complexity}
	p.TenantName = f.tenantName
	who = policy.User{SAMAccountName: f.sam, DisplayName: f.displayName, FirstName: f.firstName, LastName: f.lastName}
	return p, who, func() {}, nil
}

// addLists reads the --banned list and opens the --breached index into p;
// closeBreached closes the index.
func (f *checkFlags) addLists(p *policy.Policy) (closeBreached func(), err error) {
	if f.banned != "" {
		fh, err := os.Open(f.banned)
		if err != nil {
			return nil, Usage("policy check: --banned: %v", err)
		}
		mode, _ := policy.ParseBannedMode(f.bannedMode)
		bl, err := policy.ReadBannedListMode(fh, mode)
		fh.Close()
		if err != nil {
			return nil, Usage("policy check: --banned %s: %v", f.banned, err)
		}
		p.Banned = bl
	}
	if f.breached == "" {
		return func() {}, nil
	}
	ix, err := breach.Open(f.breached)
	if err != nil {
		return nil, Usage("policy check: --breached: %v", err)
	}
	p.Breached = ix
	return func() { ix.Close() }, nil
}

// writeVerdict writes the verdict: the violations' messages (or that there are
// none), or with --json the verdict as one JSON object. reading, when a banned
// list or entra mode applies, is how the banned check read the password,
// refused or not: the terms it found and, in entra mode, the score.
func (f *checkFlags) writeVerdict(w io.Writer, mode policy.BannedMode, vs []policy.Violation, reading *policy.BannedReading) error {
	if f.jsonOut {
		out := struct {
			OK         bool               `json:"ok"`
			BannedMode policy.BannedMode  `json:"banned_mode"`
			Banned     *bannedJSON        `json:"banned,omitempty"`
			Violations []policy.Violation `json:"violations"`
		}{OK: len(vs) == 0, BannedMode: mode, Banned: newBannedJSON(reading), Violations: append([]policy.Violation{}, vs...)}
		b, err := json.Marshal(out)
		if err != nil {
			return fmt.Errorf("policy check: %w", err)
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	var b bytes.Buffer
	if len(vs) == 0 {
		b.WriteString("ok: the password meets the policy\n")
		if r := reading; r != nil && r.Mode == policy.BannedEntra && len(r.Matches) > 0 {
			fmt.Fprintf(&b, "banned (entra): %d points, %d needed\n", r.Score, r.ScoreNeeded)
		}
	}
	for _, v := range vs {
		b.WriteString(v.Message + "\n")
	}
	_, err := w.Write(b.Bytes())
	return err
}

// bannedJSON is --json's "banned": the banned check's reading.
type bannedJSON struct {
	Mode        policy.BannedMode    `json:"mode"`
	Refused     bool                 `json:"refused"`
	Matches     []policy.BannedMatch `json:"matches"`
	MoreMatches int                  `json:"more_matches,omitempty"`
	Score       *int                 `json:"score,omitempty"`
	ScoreNeeded *int                 `json:"score_needed,omitempty"`
	NameMatched bool                 `json:"name_matched,omitempty"`
}

func newBannedJSON(r *policy.BannedReading) *bannedJSON {
	if r == nil {
		return nil
	}
	j := &bannedJSON{Mode: r.Mode, Refused: r.Refused, Matches: append([]policy.BannedMatch{}, r.Matches...),
		MoreMatches: r.MoreMatches, NameMatched: r.NameMatched}
	if r.Mode == policy.BannedEntra {
		j.Score, j.ScoreNeeded = &r.Score, &r.ScoreNeeded
	}
	return j
}

// readPassword reads stdin and removes exactly one trailing "\n" or "\r\n".
func readPassword(r io.Reader) (string, error) {
	if r == nil {
		return "", Usage("policy check: no standard input")
	}
	b, err := io.ReadAll(io.LimitReader(r, maxPasswordInput+1))
	if err != nil {
		return "", Usage("policy check: reading the password from standard input: %v", err)
	}
	if len(b) > maxPasswordInput {
		return "", Usage("policy check: standard input is longer than %d bytes", maxPasswordInput)
	}
	if bytes.HasSuffix(b, []byte("\r\n")) {
		b = b[:len(b)-2]
	} else if bytes.HasSuffix(b, []byte("\n")) {
		b = b[:len(b)-1]
	}
	if !utf8.Valid(b) {
		return "", Usage("policy check: the password on standard input is not valid UTF-8")
	}
	return string(b), nil
}

func policyBuildBreached(ctx context.Context, env *Env, args []string) error {
	fs := flag.NewFlagSet("policy build-breached", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	in := fs.String("in", "", "breached-password list `FILE` in the published format, or - for standard input")
	out := fs.String("out", "", "index `FILE` to write (replaced atomically)")
	minCount := fs.Uint64("min-count", 0, "keep only hashes seen at least `N` times")
	if help, err := parseFlags(fs, env, args); help || err != nil {
		return err
	}
	if *in == "" || *out == "" {
		return Usage("policy build-breached: --in and --out are required")
	}
	var r io.Reader = env.Stdin
	if *in != "-" {
		fh, err := os.Open(*in)
		if err != nil {
			return Usage("policy build-breached: --in: %v", err)
		}
		defer fh.Close()
		r = fh
	}
	st, err := breach.Build(ctx, r, *out, breach.BuildOptions{MinCount: *minCount})
	if err != nil {
		return fmt.Errorf("policy build-breached: %w", err)
	}
	_, err = fmt.Fprintf(env.Stdout, "wrote %s: %d %s hashes from %d lines (%d below --min-count), %d bytes\n",
		*out, st.Records, st.Kind, st.Lines, st.Skipped, st.OutBytes)
	return err
}
