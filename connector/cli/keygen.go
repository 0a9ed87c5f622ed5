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
	f := newKeygenFlags(env)
	if help, err := parseFlags(f.fs, env, args); help || err != nil {
		return err
	}
	if f.out == "" {
		f.fs.Usage()
		return Usage("keygen: --out DIR is required")
	}
	doConn, doSender, err := keygenWhich(f.only)
	if err != nil {
		return err
	}
	kem, err := keygenKEM(f.kem)
	if err != nil {
		return err
	}
	now := time.Now()
	ks, err := generateKeys(kem, doConn, doSender, now)
	if err != nil {
		return err
	}
	defer ks.clearPrivate()
	if err := ks.write(f.out, f.force); err != nil {
		return err
	}
	return printKeys(env.Stdout, f.out, ks.conn, ks.snd)
}

// keygenFlags are the flags of "keygen".
type keygenFlags struct {
	fs        *flag.FlagSet
	out, only string
	force     bool
	kem       string
}

func newKeygenFlags(env *Env) *keygenFlags {
	f := &keygenFlags{fs: flag.NewFlagSet("keygen", flag.ContinueOnError)}
	fs := f.fs
	fs.SetOutput(env.Stderr)
	fs.StringVar(&f.out, "out", "", "directory to write the key files to (created 0700 if missing)")
	fs.BoolVar(&f.force, "force", false, "replace existing key files")
	fs.StringVar(&f.only, "only", "", `generate only "connector" or only "sender" keys (for a rotation)`)
	fs.StringVar(&f.kem, "kem", "mlkem768x25519", "connector KEM: mlkem768x25519 (post-quantum hybrid), mlkem768 or x25519")
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
	return f
}

// keygenWhich reads --only: which of the two key pairs to generate.
func keygenWhich(only string) (doConn, doSender bool, err error) {
	switch only {
	case "":
		return true, true, nil
	case "connector":
		return true, false, nil
	case "sender":
		return false, true, nil
	}
	return false, false, Usage("keygen: --only must be connector or sender, not %q", only)
}

// keygenKEM reads --kem.
func keygenKEM(name string) (uint16, error) {
	switch strings.ToLower(name) {
	case "mlkem768x25519", "x-wing", "xwing":
		return protocol.KEMMLKEM768X25519, nil
	case "mlkem768":
		return protocol.KEMMLKEM768, nil
	case "x25519":
		return protocol.KEMX25519, nil
	}
	return 0, Usage("keygen: unknown --kem %q", name)
}

// keySet is the generated keys and the files that hold them.
type keySet struct {
	conn  *keys.ConnectorPrivate
	snd   *keys.SenderPrivate
	files []keyFile
}

type keyFile struct {
	name string
	data []byte
	mode os.FileMode
}

// generateKeys generates the connector and/or the sender key pair and
// marshals them into their files.
func generateKeys(kem uint16, doConn, doSender bool, now time.Time) (*keySet, error) {
	ks := &keySet{}
	if doConn {
		var err error
		if ks.conn, err = keys.GenerateConnector(kem, now); err != nil {
			return nil, err
		}
		priv, err := ks.conn.Marshal()
		if err != nil {
			return nil, err
		}
		ks.files = append(ks.files,
			keyFile{ConnectorKeyFile, priv, keys.PrivateMode},
			keyFile{ConnectorPubKeyFile, ks.conn.Public().Marshal(), keys.PublicMode})
	}
	if doSender {
		var err error
		if ks.snd, err = keys.GenerateSender(now); err != nil {
			return nil, err
		}
		ks.files = append(ks.files,
			keyFile{SenderKeyFile, ks.snd.Marshal(), keys.PrivateMode},
			keyFile{SenderPubKeyFile, ks.snd.Public().Marshal(), keys.PublicMode})
	}
	return ks, nil
}

// clearPrivate zeroes the private key files' bytes.
func (ks *keySet) clearPrivate() {
	for _, f := range ks.files {
		if f.mode == keys.PrivateMode {
			clear(f.data)
		}
	}
}

// write creates dir and writes the files into it. Without force it
// refuses before writing anything, so a refusal leaves no half set.
func (ks *keySet) write(dir string, force bool) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	if !force {
		var existing []string
		for _, f := range ks.files {
			p := filepath.Join(dir, f.name)
			if _, err := os.Lstat(p); err == nil {
				existing = append(existing, p)
			}
		}
		if len(existing) > 0 {
			return &ExitError{Code: 1, Err: fmt.Errorf("keygen: refusing to overwrite %s (use --force to replace)", strings.Join(existing, ", "))}
		}
	}
	for _, f := range ks.files {
		if err := keys.WriteFile(filepath.Join(dir, f.name), f.data, f.mode, force); err != nil {
			return err
		}
	}
	return nil
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
