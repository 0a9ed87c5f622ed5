package protocol_test

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/adwriteback/adwriteback/relay/keys"
)

// TestTestKeysFileModes pins PROTOCOL.md §8: the checked-in test keys are
// fixtures git stores 0644; the loaders the connector and the CLIs use
// refuse a private key file at that mode and accept it at 0600, while a
// public key file is read at any mode.
func TestTestKeysFileModes(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows checks the file's ACL, not its mode")
	}
	dir := t.TempDir()
	copyAt := func(name string, mode os.FileMode) string {
		b, err := os.ReadFile(filepath.Join("testdata", "keys", name))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // umask aside
			t.Fatal(err)
		}
		return p
	}
	for _, name := range []string{"connector-a.key.json", "sender.key.json"} {
		p := copyAt(name, 0o644)
		load := func() error {
			if name == "sender.key.json" {
				_, err := keys.LoadSenderPrivate(p)
				return err
			}
			_, err := keys.LoadConnectorPrivate(p)
			return err
		}
		if err := load(); !errors.Is(err, keys.ErrInvalidKey) {
			t.Errorf("%s at 0644: %v, want refused", name, err)
		}
		if err := os.Chmod(p, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := load(); err != nil {
			t.Errorf("%s at 0600: %v", name, err)
		}
	}
	if _, err := keys.LoadSenderPublic(copyAt("sender.pub.json", 0o644)); err != nil {
		t.Errorf("public key at 0644: %v", err)
	}
}
