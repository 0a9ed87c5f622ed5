package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func files(t *testing.T) (dir string) {
	dir = t.TempDir()
	for _, f := range []string{"bind.pass", "conn.str", "connector.key.json", "sender.pub.json", "ca.pem"} {
		content := "secret-value\n"
		if err := os.WriteFile(filepath.Join(dir, f), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func minimal(dir string) string {
	return strings.ReplaceAll(`version: 1
domains:
  - name: adw.test
    servers: [ldaps://dc1.adw.test]
    bind:
      dn: CN=svc,DC=adw,DC=test
      password_file: DIR/bind.pass
    tls:
      ca_file: DIR/ca.pem
    scope:
      ous: ["OU=Managed,DC=adw,DC=test"]
queue:
  name: commands
  connection_string_file: DIR/conn.str
results:
  reply_queue: results
keys:
  connector: [DIR/connector.key.json]
  senders: [DIR/sender.pub.json]
journal:
  path: DIR/journal.db
audit:
  path: "-"
`, "DIR", dir)
}

func TestMinimalConfigAndDefaults(t *testing.T) {
	dir := files(t)
	c, err := Parse([]byte(minimal(dir)), nil)
	if err != nil {
		t.Fatal(err)
	}
	d := c.Domains[0]
	if d.Bind.Password != "secret-value" || c.Queue.ConnectionString != "secret-value" {
		t.Fatal("secrets not resolved from files (one trailing newline stripped)")
	}
	if d.PoolSize != 4 || *c.Limits.PerUser != 5 || c.Limits.Window.Hours() != 24 || c.Results.Mode != "reply_queue" ||
		c.HTTP.Listen != "127.0.0.1:8080" || c.Queue.Transport != "amqp" {
		t.Fatalf("defaults: %+v %+v", d, c)
	}
}

func TestEveryProblemListedWithPath(t *testing.T) {
	dir := files(t)
	bad := `version: 2
domains:
  - name: adw.test
    servers: [http://dc1]
    bind: {dn: x, password_env: NOPE}
    scope: {ouss: [x]}
    pool_sise: 3
queue:
  name: ""
  auth: kerberos
  prefetch: lots
keys: {connector: [` + dir + `/missing.key]}
limits: {per_user: -1}
log: {level: loud}
extra: 1
`
	_, err := Parse([]byte(bad), func(string) string { return "" })
	var probs Problems
	if !errors.As(err, &probs) {
		t.Fatalf("got %v", err)
	}
	msg := err.Error()
	for _, want := range []string{
		"version: 2 is not supported",
		"domains[0].servers[0]",
		"domains[0].bind.password_env: environment variable NOPE",
		`domains[0].scope.ouss (line 6): unknown key (did you mean "ous"?)`,
		`domains[0].pool_sise (line 7): unknown key (did you mean "pool_size"?)`,
		"domains[0].scope.ous: list the OUs",
		"queue.name: required",
		`queue.auth: "kerberos"`,
		"cannot unmarshal !!str `lots`",
		"keys.connector[0]",
		"keys.senders: at least one",
		"journal.path: required",
		"limits.per_user: must not be negative",
		`log.level: "loud"`,
		"extra (line 15): unknown key",
		"audit.path: required",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in:\n%s", want, msg)
		}
	}
	if len(probs) < 16 {
		t.Errorf("only %d problems", len(probs))
	}
}

func TestSecretsFromEnvAndNeverInline(t *testing.T) {
	dir := files(t)
	src := strings.Replace(minimal(dir), "password_file: "+dir+"/bind.pass", "password_env: BIND_PW", 1)
	c, err := Parse([]byte(src), func(k string) string {
		if k == "BIND_PW" {
			return "from-env"
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.Domains[0].Bind.Password != "from-env" {
		t.Fatal("env secret not read")
	}
	inline := strings.Replace(minimal(dir), "password_file: "+dir+"/bind.pass", "password: hunter2", 1)
	_, err = Parse([]byte(inline), nil)
	if err == nil || !strings.Contains(err.Error(), "domains[0].bind.password") || !strings.Contains(err.Error(), "unknown key") {
		t.Fatalf("inline password accepted or badly reported: %v", err)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Fatal("the inline secret appears in the error")
	}
}

func TestNotYAMLAndEmptyAndTwoDocuments(t *testing.T) {
	for _, src := range []string{"", "version: [", "version: 1\n---\nversion: 1\n"} {
		if _, err := Parse([]byte(src), nil); err == nil {
			t.Errorf("%q accepted", src)
		}
	}
}

func TestShippedConfigsParse(t *testing.T) {
	for _, name := range []string{"minimal.yaml", "reference.yaml"} {
		data, err := os.ReadFile(filepath.Join("..", "..", "configs", name))
		if err != nil {
			t.Fatal(err)
		}
		var root struct{}
		_ = root
		_, err = Parse(data, func(string) string { return "x" })
		// The shipped files name paths under /etc that do not exist here:
		// only file-existence problems may remain.
		var probs Problems
		if err != nil && !errors.As(err, &probs) {
			t.Fatalf("%s: %v", name, err)
		}
		for _, p := range probs {
			if !strings.Contains(p.Msg, "no such file") && !strings.Contains(p.Msg, "cannot read") {
				t.Errorf("%s: %s", name, p)
			}
		}
	}
}

func TestScopeGroupsMustBeDNs(t *testing.T) {
	dir := files(t)
	doc := strings.Replace(minimal(dir), `      ous: ["OU=Managed,DC=adw,DC=test"]`,
		`      ous: ["OU=Managed,DC=adw,DC=test"]
      exclude_groups: ["CN=No Writeback,OU=Groups,DC=adw,DC=test", "No Writeback"]
      tier0_groups: ["CN=DnsAdmins,CN=Users,DC=adw,DC=test", "CN=a,,DC=x"]`, 1)
	_, err := Parse([]byte(doc), nil)
	msg := fmt.Sprint(err)
	for _, want := range []string{
		`domains[0].scope.exclude_groups[1]: "No Writeback" is not a DN`,
		`domains[0].scope.tier0_groups[1]: "CN=a,,DC=x" is not a DN`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in:\n%s", want, msg)
		}
	}
	for _, good := range []string{"exclude_groups[0]", "tier0_groups[0]"} {
		if strings.Contains(msg, good) {
			t.Errorf("a valid DN refused (%s):\n%s", good, msg)
		}
	}
}

func TestLogPath(t *testing.T) {
	dir := files(t)
	for _, tc := range []struct{ path, want string }{
		{"", ""},
		{dir + "/adwriteback.log", ""},
		{dir + "/nope/adwriteback.log", "log.path: " + dir + "/nope/adwriteback.log: the folder " + dir + "/nope does not exist"},
		{dir, "log.path: " + dir + " is a folder"},
	} {
		c, err := Parse([]byte(minimal(dir)+"log:\n  path: \""+tc.path+"\"\n"), nil)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v", tc.path, err)
		case tc.want == "" && c.Log.Path != tc.path:
			t.Errorf("%q: got path %q", tc.path, c.Log.Path)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q: got %v, want %q", tc.path, err, tc.want)
		}
	}
}

func TestOrgPolicyBannedMode(t *testing.T) {
	dir := files(t)
	c, err := Parse([]byte(minimal(dir)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if m := c.Domains[0].OrgPolicy.BannedMode; m != "strict" {
		t.Fatalf("default banned_mode %q, want strict", m)
	}
	withMode := func(mode string) string {
		return strings.Replace(minimal(dir), `      ous: ["OU=Managed,DC=adw,DC=test"]`,
			`      ous: ["OU=Managed,DC=adw,DC=test"]
    org_policy:
      banned_mode: `+mode+`
      tenant_name: Contoso`, 1)
	}
	c, err = Parse([]byte(withMode("entra")), nil)
	if err != nil {
		t.Fatal(err)
	}
	if op := c.Domains[0].OrgPolicy; op.BannedMode != "entra" || op.TenantName != "Contoso" {
		t.Fatalf("org_policy %+v", op)
	}
	_, err = Parse([]byte(withMode("loose")), nil)
	if want := `domains[0].org_policy.banned_mode: "loose": want strict or entra`; !strings.Contains(fmt.Sprint(err), want) {
		t.Fatalf("error %v, want %q", err, want)
	}
}
