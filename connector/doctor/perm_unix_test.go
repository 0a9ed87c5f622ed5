//go:build unix

package doctor

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRunLooseFileModes: doctor's config check reports a secret others
// can read and a CA file others can change, as the loader does, each with
// its fix.
func TestRunLooseFileModes(t *testing.T) {
	dir := t.TempDir()
	modes := map[string]os.FileMode{"bind.pass": 0o644, "conn.str": 0o600, "c.key.json": 0o600, "s.pub.json": 0o644, "ca.pem": 0o664}
	for name, mode := range modes {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("x\n"), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	cfg := filepath.Join(dir, "config.yaml")
	src := strings.ReplaceAll(`version: 1
domains:
  - name: adw.test
    servers: [ldaps://dc1.adw.test]
    bind: {dn: "CN=svc,DC=adw,DC=test", password_file: DIR/bind.pass}
    tls: {ca_file: DIR/ca.pem}
    scope: {ous: ["OU=Managed,DC=adw,DC=test"]}
queue: {name: commands, connection_string_file: DIR/conn.str}
results: {reply_queue: results}
keys: {connector: [DIR/c.key.json], senders: [DIR/s.pub.json]}
journal: {path: DIR/journal.db}
audit: {path: "-"}
`, "DIR", dir)
	if err := os.WriteFile(cfg, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	rep := Run(context.Background(), Options{ConfigPath: cfg})
	if len(rep.Checks) != 1 || rep.Checks[0].Status != Fail {
		t.Fatalf("%+v", rep.Checks)
	}
	d := rep.Checks[0].Detail
	for _, want := range []string{
		"2 configuration problem(s)",
		"domains[0].bind.password_file: " + filepath.Join(dir, "bind.pass") + " has mode 0644",
		"chmod 600 " + filepath.Join(dir, "bind.pass"),
		"domains[0].tls.ca_file: " + filepath.Join(dir, "ca.pem") + " has mode 0664",
		"chmod go-w " + filepath.Join(dir, "ca.pem"),
	} {
		if !strings.Contains(d, want) {
			t.Errorf("missing %q in:\n%s", want, d)
		}
	}
}
