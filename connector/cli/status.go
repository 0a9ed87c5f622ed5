package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/adwriteback/adwriteback/relay/keys"
	"github.com/adwriteback/adwriteback/relay/protocol"
	"github.com/adwriteback/adwriteback/relay/sender"
	"github.com/adwriteback/adwriteback/relay/servicebus"
)

// StatusCommand is `adwriteback status`: the portal's view of the
// connector, read from its heartbeats on the status queue.
func StatusCommand() Command {
	return Command{Name: "status", Summary: "read and verify the connector's heartbeat from its status queue", Run: runStatus}
}

const statusUsage = `Usage: adwriteback status --queue STATUS_QUEUE --connector-key FILE [--json]

Peeks the status queue (nothing is taken: other readers see the same),
verifies each heartbeat with the connector's public key(s), and reports
the newest of each instance. The connection string is taken as send takes
it ($ADW_SERVICEBUS or --connection-string-file); peeking needs the
Listen right on the status queue.

Exit status: 0 a verified heartbeat younger than 2 intervals from a
running connector that takes work (offer writeback); 1 none, stale,
stopping, or running without taking work (hide writeback or say "try
later"); 2 usage error; 3 messages on the queue, none of which verifies
(ignore them and alert).

Flags:
`

// statusFlags are the flags of "status".
type statusFlags struct {
	fs                *flag.FlagSet
	queue, instance   string
	connEnv, connFile string
	connectorKeys     string
	asJSON            bool
	timeout           time.Duration
}

func newStatusFlags(env *Env) *statusFlags {
	f := &statusFlags{fs: flag.NewFlagSet("status", flag.ContinueOnError)}
	fs := f.fs
	fs.StringVar(&f.queue, "queue", "", "the connector's status queue (its status.queue)")
	fs.StringVar(&f.connectorKeys, "connector-key", "", "connector public key file(s), comma-separated")
	fs.StringVar(&f.instance, "instance", "", "only this connector instance's heartbeats")
	fs.StringVar(&f.connEnv, "connection-string-env", "ADW_SERVICEBUS", "environment variable holding the Service Bus connection string")
	fs.StringVar(&f.connFile, "connection-string-file", "", "file holding the Service Bus connection string (instead of the environment)")
	fs.BoolVar(&f.asJSON, "json", false, "print the report as JSON")
	fs.DurationVar(&f.timeout, "timeout", 30*time.Second, "how long reading the queue may take")
	fs.Usage = func() {
		fmt.Fprint(env.Stderr, statusUsage)
		fs.PrintDefaults()
	}
	return f
}

func runStatus(ctx context.Context, env *Env, args []string) error {
	f := newStatusFlags(env)
	if help, err := parseFlags(f.fs, env, args); help || err != nil {
		return err
	}
	vk, err := f.keys()
	if err != nil {
		return err
	}
	src, closeQueue, err := f.dial(env)
	if err != nil {
		return err
	}
	defer closeQueue()
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	return f.report(ctx, env, sender.StatusConfig{Keys: vk, Source: src, Instance: f.instance})
}

// keys checks the flags and loads the connector's public keys.
func (f *statusFlags) keys() (protocol.VerifyKeys, error) {
	var missing []string
	if f.queue == "" {
		missing = append(missing, "--queue")
	}
	if f.connectorKeys == "" {
		missing = append(missing, "--connector-key")
	}
	if len(missing) > 0 {
		return nil, Usage("status: missing %s", strings.Join(missing, ", "))
	}
	var pubs []*keys.ConnectorPublic
	for _, p := range strings.Split(f.connectorKeys, ",") {
		k, err := keys.LoadConnectorPublic(p)
		if err != nil {
			return nil, Usage("status: --connector-key: %v", err)
		}
		pubs = append(pubs, k)
	}
	vk, err := keys.ResultKeysOf(pubs...)
	if err != nil {
		return nil, Usage("status: --connector-key: %v", err)
	}
	return vk, nil
}

// dial connects to Service Bus and returns a peeker on the status queue
// with the function that closes it.
func (f *statusFlags) dial(env *Env) (sender.StatusSource, func(), error) {
	conn, err := readConnectionString(env, f.connFile, f.connEnv)
	if err != nil {
		return nil, nil, Usage("status: %v", err)
	}
	sb, err := servicebus.NewClient(servicebus.Config{Auth: servicebus.AuthConnectionString, ConnectionString: conn})
	if err != nil {
		return nil, nil, fmt.Errorf("status: %w", err)
	}
	p, err := servicebus.NewStatusPeeker(sb, f.queue)
	if err != nil {
		sb.Close(context.Background())
		return nil, nil, fmt.Errorf("status: %w", err)
	}
	return p, func() {
		p.Close(context.Background())
		sb.Close(context.Background())
	}, nil
}

// report reads the status through cfg, prints it and returns the exit
// status the usage describes.
func (f *statusFlags) report(ctx context.Context, env *Env, cfg sender.StatusConfig) error {
	r, err := sender.NewStatusReader(cfg)
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	rep, err := r.Status(ctx)
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	if f.asJSON {
		printStatusJSON(env, rep)
	} else {
		printStatus(env, rep)
	}
	switch {
	case rep.Unverified > 0 && !rep.Verified:
		return &ExitError{Code: 3, Err: fmt.Errorf("status: %d message(s) on %s, none verifies: %w", rep.Unverified, f.queue, rep.UnverifiedErr)}
	case rep.Unverified > 0:
		fmt.Fprintf(env.Stderr, "warning: %d message(s) on the status queue do not verify (%v): ignored; find out who sends them\n",
			rep.Unverified, rep.UnverifiedErr)
	}
	if !rep.Available() {
		return &ExitError{Code: 1}
	}
	return nil
}

// statusJSON is the --json form of a report.
type statusJSON struct {
	Available  bool                 `json:"available"`
	Stale      bool                 `json:"stale"`
	Verified   bool                 `json:"verified"`
	AgeSeconds *float64             `json:"ageSeconds,omitempty"`
	Last       *protocol.Status     `json:"last,omitempty"`
	Instances  []statusInstanceJSON `json:"instances"`
	Unverified int                  `json:"unverified"`
}

type statusInstanceJSON struct {
	Instance   string          `json:"instance"`
	Stale      bool            `json:"stale"`
	AgeSeconds float64         `json:"ageSeconds"`
	Status     protocol.Status `json:"status"`
}

func printStatusJSON(env *Env, rep sender.StatusReport) {
	out := statusJSON{Available: rep.Available(), Stale: rep.Stale, Verified: rep.Verified,
		Unverified: rep.Unverified, Instances: []statusInstanceJSON{}}
	if rep.Last != nil {
		age := rep.Age.Seconds()
		out.AgeSeconds, out.Last = &age, &rep.Last.Status
	}
	for _, i := range rep.Instances {
		out.Instances = append(out.Instances, statusInstanceJSON{Instance: i.Status.Instance, Stale: i.Stale,
			AgeSeconds: i.Age.Seconds(), Status: i.Status.Status})
	}
	enc := json.NewEncoder(env.Stdout)
	enc.SetIndent("", "  ")
	_ = enc.Encode(out)
}

func printStatus(env *Env, rep sender.StatusReport) {
	if len(rep.Instances) == 0 {
		fmt.Fprintln(env.Stdout, "no verified heartbeat on the status queue: the connector is gone or never started (hide writeback)")
		return
	}
	verdict := "writeback available"
	if !rep.Available() {
		verdict = "writeback NOT available (hide it, or say try later)"
	}
	fmt.Fprintln(env.Stdout, verdict)
	for _, i := range rep.Instances {
		printInstance(env, i)
	}
}

// printInstance prints one instance's newest heartbeat.
func printInstance(env *Env, i sender.InstanceStatus) {
	s := i.Status
	state := string(s.State)
	switch {
	case i.Stale && s.State == protocol.StatusRunning:
		state = "gone (stale)"
	case s.TakingWork:
		state += ", taking work"
	case s.State == protocol.StatusRunning:
		state += ", not taking work"
	}
	fmt.Fprintf(env.Stdout, "instance %s (key %s, version %s): %s\n", s.Instance, s.ConnectorKID, s.Version, state)
	fmt.Fprintf(env.Stdout, "  last heartbeat %s ago (every %ds), started %s\n",
		i.Age.Round(time.Second), s.Interval, s.StartedAt.Format(time.RFC3339))
	fmt.Fprintf(env.Stdout, "  queue %s, journal %s\n", s.Queue.State, s.Journal.State)
	for _, d := range s.Domains {
		fmt.Fprintf(env.Stdout, "  domain %s: DCs %d up, %d down, %d unknown\n", d.Name, d.DCsUp, d.DCsDown, d.DCsUnknown)
	}
}
