package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Folders are the folders a configuration keeps the service's files in,
// which service install protects with a DACL of their own.
type Folders struct {
	// Config is the configuration file's folder.
	Config string
	// Keys are the folders of the keys.connector and keys.senders files
	// other than Config, each once.
	Keys []string
	// Journal is journal.path's folder.
	Journal string
}

// ErrFolders is wrapped by FoldersOf's errors about the configuration.
var ErrFolders = errors.New("config: folders")

// FoldersOf reads the configuration at path for the folders of its files,
// without the checks Load makes: service install protects the folders so
// that the files in them can pass those checks. Every path must be
// absolute (a service starts in the system folder), and the journal,
// which the service writes, must have a folder apart from the
// configuration and the keys, which it only reads.
func FoldersOf(path string) (Folders, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Folders{}, fmt.Errorf("read config: %w", err)
	}
	var c struct {
		Keys    Keys    `yaml:"keys"`
		Journal Journal `yaml:"journal"`
	}
	if err := yaml.Unmarshal(data, &c); err != nil {
		return Folders{}, fmt.Errorf("%w: %s is not valid YAML: %v", ErrFolders, path, err)
	}
	var probs []string
	f := Folders{Config: filepath.Dir(path), Journal: folderOf("journal.path", c.Journal.Path, &probs)}
	seen := map[string]bool{strings.ToLower(f.Config): true}
	for _, k := range []struct {
		key   string
		files []string
	}{{"keys.connector", c.Keys.Connector}, {"keys.senders", c.Keys.Senders}} {
		for i, file := range k.files {
			if d := folderOf(fmt.Sprintf("%s[%d]", k.key, i), file, &probs); !seen[strings.ToLower(d)] {
				seen[strings.ToLower(d)] = true
				f.Keys = append(f.Keys, d)
			}
		}
	}
	if c.Journal.Path != "" && seen[strings.ToLower(f.Journal)] {
		probs = append(probs, fmt.Sprintf("journal.path: %s is in the folder of the configuration or a key, which the service may only read; give the journal a folder of its own (e.g. %s)",
			c.Journal.Path, filepath.Join(f.Config, "journal", filepath.Base(c.Journal.Path))))
	}
	if len(probs) > 0 {
		return Folders{}, fmt.Errorf("%w: %s", ErrFolders, strings.Join(probs, "; "))
	}
	return f, nil
}

// folderOf is file's folder; a file that is missing or not absolute is a
// problem for key, added to probs.
func folderOf(key, file string, probs *[]string) string {
	if file == "" {
		*probs = append(*probs, key+": required")
	} else if !filepath.IsAbs(file) {
		*probs = append(*probs, fmt.Sprintf("%s: %q is not an absolute path (the service starts in the system folder)", key, file))
	}
	return filepath.Dir(file)
}
