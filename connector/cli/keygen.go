package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/adwriteback/adwriteback/relay/keys"
	"github.com/adwriteback/adwriteback/relay/protocol"
)

// Key file names written by keygen.
const (
	ConnectorKeyFile    = "connector.key.json"
	ConnectorPubKeyFile = "connector.pub.json"
	SenderKeyFile       = "sender.key.json"
	SenderPubKeyFile    = "sender.pub.json"
)

// KeygenCommand returns the "keygen" command: it writes a connector key
// pair (HPKE sealing key + result signing key) and a sender signing key
// pair, private files mode 0600, and prints the public parts.
func KeygenCommand() Command {
	return Command{
		Name:    "keygen",
		Summary: "generate connector and sender key pairs",
		Run:     runKeygen,
	}
}

func runKeygen(ctx context.Context, env *Env, args []string) error {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	out := fs.String("out", "", "directory to write the key files to (created 0700 if missing)")
	force := fs.Bool("force", false, "replace existing key files")
	only := fs.String("only", "", `generate only "connector" or only "sender" keys (for a rotation)`)
	kemName := fs.String("kem", "mlkem768x25519", "connector KEM: mlkem768x25519 (post-quantum hybrid), mlkem768 or x25519")
	fs.Usage = func() {
		fmt.Fprintf(env.Stderr, `Usage: adwriteback keygen --out DIR [--force] [--only connector|sender] [--kem NAME]

Writes into DIR:
  %s  connector private key (mode 0600): stays on the connector host
  %s  connector public key: goes into the sender's configuration
  %s     sender private key (mode 0600): stays with the cloud sender
  %s     sender public key: goes into the connector's configuration

Flags:
`, ConnectorKeyFile, ConnectorPubKeyFile, SenderKeyFile, SenderPubKeyFile)
		fs.PrintDefaults()
	}
	if help, err := parseFlags(fs, env, args); help || err != nil {
		return err
	}
	if *out == "" {
		fs.Usage()
		return Usage("keygen: --out DIR is required")
	}
	doConn, doSender := true, true
	switch *only {
	case "":
	case "connector":
		doSender = false
	case "sender":
		doConn = false
	default:
		return Usage("keygen: --only must be connector or sender, not %q", *only)
	}
	var kem uint16
	switch strings.ToLower(*kemName) {
	case "mlkem768x25519", "x-wing", "xwing":
		kem = protocol.KEMMLKEM768X25519
	case "mlkem768":
		kem = protocol.KEMMLKEM768
	case "x25519":
		kem = protocol.KEMX25519
	default:
		return Usage("keygen: unknown --kem %q", *kemName)
	}

	type file struct {
		name string
		data []byte
		mode os.FileMode
	}
	var files []file
	now := time.Now()
	var conn *keys.ConnectorPrivate
	var snd *keys.SenderPrivate
	if doConn {
		var err error
		if conn, err = keys.GenerateConnector(kem, now); err != nil {
			return err
		}
		priv, err := conn.Marshal()
		if err != nil {
			return err
		}
		files = append(files,
			file{ConnectorKeyFile, priv, keys.PrivateMode},
			file{ConnectorPubKeyFile, conn.Public().Marshal(), keys.PublicMode})
	}
	if doSender {
		var err error
		if snd, err = keys.GenerateSender(now); err != nil {
			return err
		}
		files = append(files,
			file{SenderKeyFile, snd.Marshal(), keys.PrivateMode},
			file{SenderPubKeyFile, snd.Public().Marshal(), keys.PublicMode})
	}
	defer func() {
		for _, f := range files {
			if f.mode == keys.PrivateMode {
				clear(f.data)
			}
		}
	}()

	if err := os.MkdirAll(*out, 0o700); err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	// Refuse before writing anything, so a refusal leaves no half set.
	if !*force {
		var existing []string
		for _, f := range files {
			p := filepath.Join(*out, f.name)
			if _, err := os.Lstat(p); err == nil {
				existing = append(existing, p)
			}
		}
		if len(existing) > 0 {
			return &ExitError{Code: 1, Err: fmt.Errorf("keygen: refusing to overwrite %s (use --force to replace)", strings.Join(existing, ", "))}
		}
	}
	for _, f := range files {
		if err := keys.WriteFile(filepath.Join(*out, f.name), f.data, f.mode, *force); err != nil {
			return err
		}
	}
	return printKeys(env.Stdout, *out, conn, snd)
}

func printKeys(w io.Writer, dir string, conn *keys.ConnectorPrivate, snd *keys.SenderPrivate) error {
	var b strings.Builder
	if conn != nil {
		fmt.Fprintf(&b, "Connector key %s\n  private (keep on the connector host, mode 0600): %s\n  public  (give to the sender):                    %s\n",
			conn.KID, filepath.Join(dir, ConnectorKeyFile), filepath.Join(dir, ConnectorPubKeyFile))
	}
	if snd != nil {
		fmt.Fprintf(&b, "Sender key %s\n  private (keep with the cloud sender, mode 0600): %s\n  public  (give to the connector):                  %s\n",
			snd.KID, filepath.Join(dir, SenderKeyFile), filepath.Join(dir, SenderPubKeyFile))
	}
	if conn != nil {
		fmt.Fprintf(&b, "\n# Connector public key, for the sender's configuration:\n%s", conn.Public().Marshal())
	}
	if snd != nil {
		fmt.Fprintf(&b, "\n# Sender public key, for the connector's configuration:\n%s", snd.Public().Marshal())
	}
	_, err := io.WriteString(w, b.String())
	return err
}
