package stack

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/adwriteback/adwriteback/relay/keys"
)

// Keys are one stack's connector and sender key pairs.
type Keys struct {
	Connector *keys.ConnectorPrivate
	Sender    *keys.SenderPrivate
}

// WriteKeys generates fresh keys and writes them into dir as `adwriteback
// keygen` does: the connector's private key (ConnectorKeyFile, mode 0600)
// and the sender's public key (SenderPubFile, mode 0644), where DCConfig
// points the connector, and the sender's private key (SenderKeyFile) and
// the connector's public key (ConnectorPubFile), which `adwriteback send`
// reads.
func WriteKeys(dir string) (Keys, error) {
	now := time.Now()
	ck, err := keys.GenerateConnector(keys.DefaultKEM, now)
	if err != nil {
		return Keys{}, fmt.Errorf("stack: connector key: %w", err)
	}
	sk, err := keys.GenerateSender(now)
	if err != nil {
		return Keys{}, fmt.Errorf("stack: sender key: %w", err)
	}
	b, err := ck.Marshal()
	if err != nil {
		return Keys{}, fmt.Errorf("stack: connector key: %w", err)
	}
	for _, f := range []struct {
		name string
		b    []byte
		mode os.FileMode
	}{
		{ConnectorKeyFile, b, keys.PrivateMode},
		{ConnectorPubFile, ck.Public().Marshal(), keys.PublicMode},
		{SenderKeyFile, sk.Marshal(), keys.PrivateMode},
		{SenderPubFile, sk.Public().Marshal(), keys.PublicMode},
	} {
		if err := os.WriteFile(filepath.Join(dir, f.name), f.b, f.mode); err != nil {
			return Keys{}, fmt.Errorf("stack: %w", err)
		}
	}
	return Keys{Connector: ck, Sender: sk}, nil
}

// WriteSecrets writes the service account's password (BindPasswordFile, with
// a newline, as an operator's editor leaves it) and the Service Bus
// connection string (ConnectionStringFile) into dir, both mode 0600.
func WriteSecrets(dir, bindPassword, connectionString string) error {
	for name, b := range map[string][]byte{
		BindPasswordFile:     []byte(bindPassword + "\n"),
		ConnectionStringFile: []byte(connectionString),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return fmt.Errorf("stack: %w", err)
		}
	}
	return nil
}
