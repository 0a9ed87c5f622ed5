//go:build unix

package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// writeConfig writes minimal(dir) as dir/config.yaml, mode 0644.
func writeConfig(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(p, []byte(minimal(dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func chmod(t *testing.T, file string, mode fs.FileMode) {
	t.Helper()
	if err := os.Chmod(file, mode); err != nil {
		t.Fatal(err)
	}
}

// problemAt is the one problem at path naming file, or fails.
func problemAt(t *testing.T, probs Problems, path, file string) Problem {
	t.Helper()
	for _, p := range probs {
		if p.Path == path && strings.Contains(p.Msg, file) {
			return p
		}
	}
	t.Fatalf("no problem at %q naming %s in:\n%s", path, file, probs.Error())
	return Problem{}
}

// TestLooseFileModesRefused: a secret others can read, or a trust anchor
// (CA file, sender public key, the configuration itself) others can
// change, is a problem at its key, naming the file, its mode and the
// chmod that fixes it.
func TestLooseFileModesRefused(t *testing.T) {
	for _, tc := range []struct {
		name, file, path string
		mode             fs.FileMode
		fix              string
	}{
		{"secret readable by others", "bind.pass", "domains[0].bind.password_file", 0o644, "chmod 600"},
		{"secret readable by group", "conn.str", "queue.connection_string_file", 0o640, "chmod 600"},
		{"CA file writable by group", "ca.pem", "domains[0].tls.ca_file", 0o664, "chmod go-w"},
		{"sender key writable by group", "sender.pub.json", "keys.senders[0]", 0o620, "chmod go-w"},
		{"connector key readable by group", "connector.key.json", "keys.connector[0]", 0o640, "chmod 600"},
		{"config writable by everyone", "config.yaml", "", 0o666, "chmod go-w"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := files(t)
			cfg := writeConfig(t, dir)
			file := filepath.Join(dir, tc.file)
			chmod(t, file, tc.mode)
			_, err := Load(cfg, nil)
			var probs Problems
			if !errors.As(err, &probs) {
				t.Fatalf("mode %04o accepted: %v", tc.mode, err)
			}
			p := problemAt(t, probs, tc.path, file)
			mode := fmt.Sprintf("mode %04o", tc.mode)
			if !strings.Contains(p.Msg, mode) || !strings.Contains(p.Msg, tc.fix+" "+file) {
				t.Errorf("want %q and %q in %q", mode, tc.fix+" "+file, p.Msg)
			}
			if len(probs) != 1 {
				t.Errorf("want one problem, got:\n%s", probs.Error())
			}
		})
	}
}

// TestStrictFileModesAccepted: 0600 and 0400 secrets, 0644 trust anchors
// and a 0644 configuration load.
func TestStrictFileModesAccepted(t *testing.T) {
	dir := files(t)
	cfg := writeConfig(t, dir)
	chmod(t, filepath.Join(dir, "bind.pass"), 0o400)
	chmod(t, filepath.Join(dir, "ca.pem"), 0o644)
	chmod(t, filepath.Join(dir, "sender.pub.json"), 0o644)
	if _, err := Load(cfg, nil); err != nil {
		t.Fatal(err)
	}
}

// TestEveryLooseFileListedAtOnce: the loader lists every offending file in
// one error, beside the configuration's other problems.
func TestEveryLooseFileListedAtOnce(t *testing.T) {
	dir := files(t)
	cfg := writeConfig(t, dir)
	bad := map[string]string{
		"bind.pass":       "domains[0].bind.password_file",
		"conn.str":        "queue.connection_string_file",
		"ca.pem":          "domains[0].tls.ca_file",
		"sender.pub.json": "keys.senders[0]",
		"config.yaml":     "",
	}
	for f, mode := range map[string]fs.FileMode{"bind.pass": 0o644, "conn.str": 0o604, "ca.pem": 0o664, "sender.pub.json": 0o660, "config.yaml": 0o666} {
		chmod(t, filepath.Join(dir, f), mode)
	}
	_, err := Load(cfg, nil)
	var probs Problems
	if !errors.As(err, &probs) {
		t.Fatalf("accepted: %v", err)
	}
	for f, path := range bad {
		problemAt(t, probs, path, filepath.Join(dir, f))
	}
	if len(probs) != len(bad) {
		t.Errorf("want %d problems, got:\n%s", len(bad), probs.Error())
	}
}

type fakeInfo struct {
	mode fs.FileMode
	uid  uint32
}

func (f fakeInfo) Name() string       { return "f" }
func (f fakeInfo) Size() int64        { return 0 }
func (f fakeInfo) Mode() fs.FileMode  { return f.mode }
func (f fakeInfo) ModTime() time.Time { return time.Time{} }
func (f fakeInfo) IsDir() bool        { return false }
func (f fakeInfo) Sys() any           { return &syscall.Stat_t{Uid: f.uid} }

// TestFileOwner: a file owned by another user (who could chmod it) is a
// problem; one owned by this process's user or by root is not.
func TestFileOwner(t *testing.T) {
	const self = 1001
	for _, kind := range []fileKind{trustAnchor, secretFile} {
		if ps := fileProblems("/etc/x", fakeInfo{0o600, self}, kind, self); len(ps) != 0 {
			t.Errorf("owned by this user: %q", ps)
		}
		if ps := fileProblems("/etc/x", fakeInfo{0o600, 0}, kind, self); len(ps) != 0 {
			t.Errorf("owned by root: %q", ps)
		}
		ps := fileProblems("/etc/x", fakeInfo{0o600, 4242}, kind, self)
		if len(ps) != 1 || !strings.Contains(ps[0], "uid 4242") || !strings.Contains(ps[0], "chown 1001 /etc/x") {
			t.Errorf("owned by uid 4242: %q", ps)
		}
	}
}

// TestBearerTokenFileMode: the listener's bearer token is a secret: a
// token file the group can read is refused.
func TestBearerTokenFileMode(t *testing.T) {
	dir := files(t)
	tok := filepath.Join(dir, "http.token")
	if err := os.WriteFile(tok, []byte("tok\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	chmod(t, tok, 0o640)
	_, err := Parse([]byte(withHTTP(dir, "  auth:\n    bearer_token_file: "+tok+"\n")), nil)
	var probs Problems
	if !errors.As(err, &probs) {
		t.Fatalf("mode 0640 token accepted: %v", err)
	}
	problemAt(t, probs, "http.auth.bearer_token_file", tok)
}
