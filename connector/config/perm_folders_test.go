package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// writeYAML writes a configuration file into dir and returns its path.
func writeYAML(t *testing.T, dir, text string) string {
	t.Helper()
	p := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(p, []byte(strings.ReplaceAll(text, "DIR", dir)), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestFoldersOf: the configuration's folder, each key folder once (not
// the configuration's again) in order, and the journal's, read without
// the loader's checks (the secrets need not exist yet).
func TestFoldersOf(t *testing.T) {
	dir := t.TempDir()
	p := writeYAML(t, dir, `version: 1
keys:
  connector: [DIR/connector.key.json, DIR/keys/old.key.json, DIR/keys/new.key.json]
  senders: [DIR/senders/sender.pub.json]
journal:
  path: DIR/journal/journal.db
unknown_key_is_not_checked_here: true
`)
	f, err := FoldersOf(p)
	if err != nil {
		t.Fatal(err)
	}
	if f.Config != dir || f.Journal != filepath.Join(dir, "journal") ||
		!slices.Equal(f.Keys, []string{filepath.Join(dir, "keys"), filepath.Join(dir, "senders")}) {
		t.Errorf("FoldersOf = %+v", f)
	}
}

// TestFoldersOfRefused: relative paths, no journal, a journal beside the
// configuration or a key, and YAML that does not parse are each named.
func TestFoldersOfRefused(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"relative key", "keys:\n  connector: [connector.key.json]\njournal:\n  path: DIR/j/journal.db\n", `keys.connector[0]: "connector.key.json" is not an absolute path`},
		{"relative journal", "journal:\n  path: journal.db\n", `journal.path: "journal.db" is not an absolute path`},
		{"no journal", "keys:\n  senders: [DIR/s.pub.json]\n", "journal.path: required"},
		{"journal beside the config", "journal:\n  path: DIR/journal.db\n", "give the journal a folder of its own (e.g. DIR/journal/journal.db)"},
		{"journal beside a key", "keys:\n  senders: [DIR/k/s.pub.json]\njournal:\n  path: DIR/k/journal.db\n", "give the journal a folder of its own"},
		{"not YAML", "keys: [\n", "not valid YAML"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			_, err := FoldersOf(writeYAML(t, dir, tc.yaml))
			if want := strings.ReplaceAll(tc.want, "DIR", dir); !errors.Is(err, ErrFolders) || !strings.Contains(err.Error(), want) {
				t.Errorf("FoldersOf: %v, want %q", err, want)
			}
		})
	}
	if _, err := FoldersOf(filepath.Join(t.TempDir(), "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}
