package config

import (
	"bufio"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/adwriteback/adwriteback/relay/keys"
)

// unitFile is the systemd unit shipped in configs/. Its header tells admins
// how to install the files this package's Load reads.
const unitFile = "../../configs/adwriteback.service"

// readUnit splits the unit into its header (the comment lines before the
// first section) and the settings of its [Service] section (a key set twice
// keeps every value).
func readUnit(t *testing.T) (header []string, service map[string][]string) {
	t.Helper()
	f, err := os.Open(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	service = map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "["):
			section = line
		case strings.HasPrefix(line, "#"):
			if section == "" {
				header = append(header, line)
			}
		case section == "[Service]" && line != "":
			k, v, _ := strings.Cut(line, "=")
			service[k] = append(service[k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return header, service
}

// TestUnitLimits: no core dump (it would hold the passwords in memory at
// the time) and a memory cap.
func TestUnitLimits(t *testing.T) {
	_, svc := readUnit(t)
	if got := svc["LimitCORE"]; len(got) != 1 || got[0] != "0" {
		t.Errorf("LimitCORE = %q, want exactly 0", got)
	}
	if got := svc["MemoryMax"]; len(got) != 1 || got[0] == "" || got[0] == "infinity" {
		t.Errorf("MemoryMax = %q, want one finite cap", got)
	}
}

var octalMode = regexp.MustCompile(`\b0[0-7]{3}\b`)

// TestUnitHeaderModesAreAccepted: every file mode the unit's header tells
// admins to set is one the loader accepts. A file owned by the service user
// is a secret: owner-only (the connector's private key must also pass
// relay/keys' own check). Every other file (config, public keys, CA) is read
// through the service's group: group may read, not write; others nothing.
func TestUnitHeaderModesAreAccepted(t *testing.T) {
	header, svc := readUnit(t)
	user, group := strings.Join(svc["User"], ""), strings.Join(svc["Group"], "")
	keyLines := 0
	for _, line := range header {
		modes := octalMode.FindAllString(line, -1)
		if len(modes) == 0 || strings.Contains(line, "install -d") ||
			strings.Contains(line, "/usr/local/bin") || strings.Contains(line, "/etc/systemd/") {
			continue // directories, the binary and the unit itself
		}
		secret := strings.Contains(line, "-o "+user+" ")
		key := strings.Contains(line, ".key") || strings.Contains(line, "keys/")
		for _, m := range modes {
			mode, err := strconv.ParseUint(m, 8, 32)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case secret && key:
				keyLines++
				if err := loadPrivateKeyAt(t, fs.FileMode(mode)); err != nil {
					t.Errorf("header %q: the loader refuses a private key at %s: %v", line, m, err)
				}
			case secret:
				if mode&0o077 != 0 {
					t.Errorf("header %q: a secret at %s must be owner-only", line, m)
				}
			case key:
				t.Errorf("header %q: a private key must belong to the service user %s", line, user)
			default:
				if mode&0o007 != 0 || mode&0o040 == 0 || mode&0o020 != 0 {
					t.Errorf("header %q: mode %s must let group %s read (not write) and give others nothing", line, m, group)
				}
			}
		}
	}
	if keyLines == 0 {
		t.Error("the header does not say how to install the connector's private key")
	}
}

// loadPrivateKeyAt writes a fresh connector private key with mode and
// loads it as Load's keys.connector files are loaded.
func loadPrivateKeyAt(t *testing.T, mode fs.FileMode) error {
	t.Helper()
	k, err := keys.GenerateConnector(keys.DefaultKEM, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b, err := k.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "connector.key")
	if err := keys.WriteFile(p, b, mode, false); err != nil {
		t.Fatal(err)
	}
	_, err = keys.LoadConnectorPrivate(p)
	return err
}
