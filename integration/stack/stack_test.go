package stack

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/adwriteback/adwriteback/connector/config"
	"github.com/adwriteback/adwriteback/integration/testdc"
	"github.com/adwriteback/adwriteback/relay/keys"
)

// fullSpec sets every field of ConfigSpec, with its files written in dir.
func fullSpec(t *testing.T, dir string) (ConfigSpec, Keys) {
	t.Helper()
	k, err := WriteKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteSecrets(dir, "Bind!Pass.word1", "Endpoint=sb://127.0.0.1/;SharedAccessKeyName=k;SharedAccessKey=c2VjcmV0"); err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, []byte("not read by the loader"), 0o644); err != nil {
		t.Fatal(err)
	}
	info := &testdc.Info{LDAPSURL: "ldaps://127.77.0.10:636", ServiceDN: "CN=svc,CN=Users,DC=adw,DC=test",
		CAFile: ca, InScopeOU: "OU=Managed,DC=adw,DC=test"}
	s := DCConfig(info, dir)
	s.Servers = append(s.Servers, "ldaps://127.77.0.11:636")
	s.ServerName = "dc1.adw.test"
	s.DialTimeout, s.OperationTimeout = 2*time.Second, 10*time.Second
	s.MinLength = 12
	s.Queue, s.ReplyQueue, s.Concurrency, s.ShutdownGrace = "commands", "replies", 3, 5*time.Second
	s.Transport = "websockets"
	s.Proxy = ProxySpec{URL: "http://127.0.0.1:3128", Username: "edge", PasswordFile: filepath.Join(dir, "proxy.pass"), NoProxy: []string{"login.example"}}
	if err := os.WriteFile(s.Proxy.PasswordFile, []byte("Proxy-Pass.1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.QueueCAFile, s.CustomEndpoint, s.AuthorityHost = ca, "127.0.0.1:5671", "https://127.0.0.1:8443/"
	s.Journal = filepath.Join(dir, "journal-a.db")
	s.PerUser, s.MaxAttempts = 1000, 40
	s.HTTPListen = "127.0.0.1:0"
	s.LogLevel, s.LogFormat = "debug", "text"
	return s, k
}

// TestFullSpecLoads renders a spec with every field set and loads it with
// config.Load, as `adwriteback check-config` does: every field arrives
// where the connector reads it, and nothing is an unknown key.
func TestFullSpecLoads(t *testing.T) {
	dir := t.TempDir()
	s, _ := fullSpec(t, dir)
	path := filepath.Join(dir, "config.yaml")
	if err := s.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(path, nil)
	if err != nil {
		b, _ := os.ReadFile(path)
		t.Fatalf("%v\n%s", err, b)
	}
	if len(c.Domains) != 1 {
		t.Fatalf("%d domains", len(c.Domains))
	}
	d := c.Domains[0]
	for _, f := range []struct {
		name      string
		got, want any
	}{
		{"domain", d.Name, "adw.test"},
		{"servers", d.Servers, s.Servers},
		{"bind.dn", d.Bind.DN, s.BindDN},
		{"bind.password", d.Bind.Password, "Bind!Pass.word1"},
		{"tls.ca_file", d.TLS.CAFile, s.CAFile},
		{"tls.server_name", d.TLS.ServerName, "dc1.adw.test"},
		{"scope.ous", d.Scope.OUs, []string{"OU=Managed,DC=adw,DC=test"}},
		{"dial_timeout", d.DialTimeout, 2 * time.Second},
		{"operation_timeout", d.OpTimeout, 10 * time.Second},
		{"org_policy.min_length", d.OrgPolicy.MinLength, 12},
		{"queue.name", c.Queue.Name, "commands"},
		{"queue.connection_string", c.Queue.ConnectionString, "Endpoint=sb://127.0.0.1/;SharedAccessKeyName=k;SharedAccessKey=c2VjcmV0"},
		{"queue.concurrency", c.Queue.Concurrency, 3},
		{"queue.transport", c.Queue.Transport, "websockets"},
		{"queue.proxy.url", c.Queue.Proxy.URL, "http://127.0.0.1:3128"},
		{"queue.proxy.username", c.Queue.Proxy.Username, "edge"},
		{"queue.proxy.password", c.Queue.Proxy.Password, "Proxy-Pass.1"},
		{"queue.proxy.no_proxy", c.Queue.Proxy.NoProxy, []string{"login.example"}},
		{"queue.ca_file", c.Queue.CAFile, filepath.Join(dir, "ca.pem")},
		{"queue.custom_endpoint", c.Queue.CustomEndpoint, "127.0.0.1:5671"},
		{"queue.authority_host", c.Queue.AuthorityHost, "https://127.0.0.1:8443/"},
		{"queue.shutdown_grace", c.Queue.ShutdownGrace, 5 * time.Second},
		{"keys.connector", c.Keys.Connector, []string{filepath.Join(dir, ConnectorKeyFile)}},
		{"keys.senders", c.Keys.Senders, []string{filepath.Join(dir, SenderPubFile)}},
		{"journal.path", c.Journal.Path, filepath.Join(dir, "journal-a.db")},
		{"audit.path", c.Audit.Path, filepath.Join(dir, AuditFile)},
		{"limits.per_user", *c.Limits.PerUser, 1000},
		{"limits.max_attempts", c.Limits.MaxAttempts, 40},
		{"http.listen", c.HTTP.Listen, "127.0.0.1:0"},
		{"log.level", c.Log.Level, "debug"},
		{"log.format", c.Log.Format, "text"},
	} {
		if !reflect.DeepEqual(f.got, f.want) {
			t.Errorf("%s: %v, want %v", f.name, f.got, f.want)
		}
	}
}

// TestZeroFieldsLeftOut: optional settings not chosen are not written, so
// the connector's defaults apply.
func TestZeroFieldsLeftOut(t *testing.T) {
	dir := t.TempDir()
	s, _ := fullSpec(t, dir)
	s.ServerName, s.DialTimeout, s.OperationTimeout, s.MinLength = "", 0, 0, 0
	s.Concurrency, s.ShutdownGrace, s.PerUser, s.MaxAttempts = 0, 0, 0, 0
	s.HTTPListen, s.LogLevel, s.LogFormat = "", "", ""
	s.Transport, s.Proxy = "", ProxySpec{}
	s.QueueCAFile, s.CustomEndpoint, s.AuthorityHost = "", "", ""
	b, err := s.YAML()
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"server_name", "dial_timeout", "operation_timeout", "org_policy", "concurrency",
		"shutdown_grace", "limits", "http", "log", "transport", "proxy", "custom_endpoint", "authority_host", "auth:"} {
		if strings.Contains(string(b), key+":") {
			t.Errorf("%s written though not set:\n%s", key, b)
		}
	}
	c, err := config.Parse(b, nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if d := c.Domains[0]; d.DialTimeout != 5*time.Second || d.TLS.ServerName != "" || d.OrgPolicy.MinLength != 0 {
		t.Errorf("domain defaults: %+v", d)
	}
	if *c.Limits.PerUser != 5 || c.Limits.MaxAttempts != 5 || c.Queue.Concurrency != 4 || c.HTTP.Listen != "127.0.0.1:8080" || c.Log.Level != "info" {
		t.Errorf("defaults: per_user %d, max_attempts %d, concurrency %d, listen %s, level %s",
			*c.Limits.PerUser, c.Limits.MaxAttempts, c.Queue.Concurrency, c.HTTP.Listen, c.Log.Level)
	}
}

// TestWriteKeys: the files hold the keys returned, with the modes the key
// loader wants.
func TestWriteKeys(t *testing.T) {
	dir := t.TempDir()
	k, err := WriteKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	ck, err := keys.LoadConnectorPrivate(filepath.Join(dir, ConnectorKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if ck.KID != k.Connector.KID {
		t.Errorf("connector key file kid %s, returned %s", ck.KID, k.Connector.KID)
	}
	sp, err := keys.LoadSenderPublic(filepath.Join(dir, SenderPubFile))
	if err != nil {
		t.Fatal(err)
	}
	if sp.KID != k.Sender.Public().KID {
		t.Errorf("sender public key file kid %s, returned %s", sp.KID, k.Sender.Public().KID)
	}
	if st, err := os.Stat(filepath.Join(dir, ConnectorKeyFile)); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("connector key mode: %v %v", st.Mode(), err)
	}
}

// TestWriteSecrets: the password file ends with a newline the loader
// trims; both files are private.
func TestWriteSecrets(t *testing.T) {
	dir := t.TempDir()
	if err := WriteSecrets(dir, "pw", "cs"); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{BindPasswordFile: "pw\n", ConnectionStringFile: "cs"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || string(b) != want {
			t.Errorf("%s: %q %v, want %q", name, b, err, want)
		}
		if st, err := os.Stat(filepath.Join(dir, name)); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode: %v %v", name, st.Mode(), err)
		}
	}
}

// TestBufferConcurrent: concurrent writers lose nothing (run with -race).
func TestBufferConcurrent(t *testing.T) {
	var b Buffer
	done := make(chan struct{})
	for range 4 {
		go func() {
			for range 100 {
				b.Write([]byte("x"))
			}
			done <- struct{}{}
		}()
	}
	for range 4 {
		<-done
	}
	if n := len(b.String()); n != 400 {
		t.Fatalf("%d bytes, want 400", n)
	}
}
