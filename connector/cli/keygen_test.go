package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/adwriteback/adwriteback/relay/keys"
)

func runKeygenForTest(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var o, e bytes.Buffer
	env := &Env{Stdin: strings.NewReader(""), Stdout: &o, Stderr: &e, Getenv: func(string) string { return "" }}
	err = KeygenCommand().Run(context.Background(), env, args)
	return o.String(), e.String(), err
}

func TestKeygenWritesKeys(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	out, _, err := runKeygenForTest(t, "--out", dir)
	if err != nil {
		t.Fatal(err)
	}
	modes := map[string]os.FileMode{
		ConnectorKeyFile: 0o600, SenderKeyFile: 0o600,
		ConnectorPubKeyFile: 0o644, SenderPubKeyFile: 0o644,
	}
	for name, want := range modes {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if runtime.GOOS != "windows" && st.Mode().Perm() != want {
			t.Fatalf("%s: mode %o, want %o", name, st.Mode().Perm(), want)
		}
	}
	conn, err := keys.LoadConnectorPrivate(filepath.Join(dir, ConnectorKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	snd, err := keys.LoadSenderPrivate(filepath.Join(dir, SenderKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	cpub, err := keys.LoadConnectorPublic(filepath.Join(dir, ConnectorPubKeyFile))
	if err != nil || cpub.KID != conn.KID {
		t.Fatalf("connector public: %v", err)
	}
	spub, err := keys.LoadSenderPublic(filepath.Join(dir, SenderPubKeyFile))
	if err != nil || spub.KID != snd.KID {
		t.Fatalf("sender public: %v", err)
	}
	// The public parts are printed; the private ones are not.
	if !strings.Contains(out, string(conn.Public().Marshal())) || !strings.Contains(out, string(snd.Public().Marshal())) {
		t.Fatalf("public keys not printed:\n%s", out)
	}
	privC, _ := os.ReadFile(filepath.Join(dir, ConnectorKeyFile))
	for _, secret := range []string{b64field(t, privC, "hpke"), b64field(t, privC, "ed25519")} {
		if strings.Contains(out, secret) {
			t.Fatal("private key printed")
		}
	}
}

func b64field(t *testing.T, file []byte, name string) string {
	t.Helper()
	i := bytes.Index(file, []byte(`"`+name+`": "`))
	if i < 0 {
		t.Fatalf("no %s in key file", name)
	}
	rest := file[i+len(name)+5:]
	return string(rest[:bytes.IndexByte(rest, '"')])
}

func TestKeygenRefusesOverwrite(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := runKeygenForTest(t, "--out", dir); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, ConnectorKeyFile))
	_, _, err := runKeygenForTest(t, "--out", dir)
	if err == nil || ExitCode(err) != 1 || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("got %v", err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, ConnectorKeyFile))
	if !bytes.Equal(before, after) {
		t.Fatal("existing key changed")
	}
	// --only sender refuses too (sender files exist), and with --force it
	// replaces only the sender key.
	if _, _, err := runKeygenForTest(t, "--out", dir, "--only", "sender"); err == nil {
		t.Fatal("overwrote the sender key")
	}
	oldSender, _ := os.ReadFile(filepath.Join(dir, SenderKeyFile))
	if _, _, err := runKeygenForTest(t, "--out", dir, "--only", "sender", "--force"); err != nil {
		t.Fatal(err)
	}
	newSender, _ := os.ReadFile(filepath.Join(dir, SenderKeyFile))
	after, _ = os.ReadFile(filepath.Join(dir, ConnectorKeyFile))
	if bytes.Equal(oldSender, newSender) || !bytes.Equal(before, after) {
		t.Fatal("--only sender --force did not replace exactly the sender key")
	}
	if st, _ := os.Stat(filepath.Join(dir, SenderKeyFile)); runtime.GOOS != "windows" && st.Mode().Perm() != 0o600 {
		t.Fatalf("replaced key mode %o", st.Mode().Perm())
	}
}

func TestKeygenUsage(t *testing.T) {
	for _, args := range [][]string{{}, {"--out"}, {"--out", t.TempDir(), "extra"}, {"--out", t.TempDir(), "--only", "both"}, {"--out", t.TempDir(), "--kem", "rsa"}, {"--bogus"}} {
		if _, _, err := runKeygenForTest(t, args...); ExitCode(err) != 2 {
			t.Fatalf("%v: exit %d (%v)", args, ExitCode(err), err)
		}
	}
	if _, _, err := runKeygenForTest(t, "-h"); err != nil {
		t.Fatalf("-h: %v", err)
	}
	// Other KEMs work.
	dir := t.TempDir()
	if _, _, err := runKeygenForTest(t, "--out", dir, "--kem", "x25519", "--only", "connector"); err != nil {
		t.Fatal(err)
	}
	k, err := keys.LoadConnectorPrivate(filepath.Join(dir, ConnectorKeyFile))
	if err != nil || k.HPKE.KEM().ID() != 0x0020 {
		t.Fatalf("x25519 key: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, SenderKeyFile)); !os.IsNotExist(err) {
		t.Fatal("--only connector wrote a sender key")
	}
}
