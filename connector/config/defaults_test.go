package config

import (
	"strings"
	"testing"
	"time"
)

// TestDefaultsTable: every default comes from Defaults, a set value is kept, a nil domain
// stays nil for validate to report, and limits.per_user: 0 (no limit) is not defaulted.
func TestDefaultsTable(t *testing.T) {
	dir := files(t)
	c, err := Parse([]byte(minimal(dir)), nil)
	if err != nil {
		t.Fatal(err)
	}
	def := Defaults()
	q, dd := c.Queue, def.Domains[0]
	if q.Prefetch != def.Queue.Prefetch || q.Concurrency != def.Queue.Concurrency || q.ShutdownGrace != def.Queue.ShutdownGrace ||
		q.Auth != def.Queue.Auth || c.Results.TTL != def.Results.TTL || c.Journal.Retention != def.Journal.Retention ||
		c.Limits.MaxAttempts != def.Limits.MaxAttempts || c.Log != def.Log || *c.Limits.PerUser != *def.Limits.PerUser {
		t.Errorf("defaults not applied: %+v", c)
	}
	if d := c.Domains[0]; d.PoolSize != dd.PoolSize || d.DialTimeout != dd.DialTimeout || d.OpTimeout != dd.OpTimeout ||
		d.PolicyRefresh != dd.PolicyRefresh {
		t.Errorf("domain defaults not applied: %+v", d)
	}
	if c.Limits.PerUser == def.Limits.PerUser {
		t.Error("the defaults table's pointer is shared with the configuration")
	}

	src := strings.Replace(minimal(dir), "queue:\n", "queue:\n  prefetch: 3\n  shutdown_grace: 1s\n", 1) + "limits: {per_user: 0}\n"
	if c, err = Parse([]byte(src), nil); err != nil {
		t.Fatal(err)
	}
	if c.Queue.Prefetch != 3 || c.Queue.ShutdownGrace != time.Second || *c.Limits.PerUser != 0 {
		t.Errorf("set values overridden: prefetch %d, grace %v, per_user %d", c.Queue.Prefetch, c.Queue.ShutdownGrace, *c.Limits.PerUser)
	}
	if _, err := Parse([]byte(strings.Replace(minimal(dir), "domains:\n", "domains:\n  - null\n", 1)), nil); err == nil ||
		!strings.Contains(err.Error(), "domains[0]: empty") {
		t.Errorf("nil domain: %v", err)
	}
}

// TestQueueAuthUsesServiceBusRules: the queue section is checked with servicebus's rules,
// each problem at its key, and a missing secret is reported once, the config's way.
func TestQueueAuthUsesServiceBusRules(t *testing.T) {
	dir := files(t)
	base := strings.Replace(minimal(dir), "  connection_string_file: "+dir+"/conn.str\n", "", 1)
	for _, c := range []struct {
		queue, want string
		n           int
	}{
		{"  auth: client_secret\n  namespace: https://ns.example/\n  tenant_id: t\n  client_id: c\n  client_secret_file: " + dir + "/conn.str\n",
			`queue.namespace: namespace "https://ns.example/" must be a host name`, 1},
		{"  auth: client_secret\n  namespace: ns.example\n  client_secret_file: " + dir + "/conn.str\n",
			"queue.client_id: required for this auth kind", 2},
		{"  auth: managed_identity\n  namespace: ns.example\n  proxy:\n    url: http://proxy:3128\n",
			"queue.proxy.url: AMQP on TCP 5671 cannot go through an HTTP proxy: set transport: websockets", 1},
		{"  auth: managed_identity\n  namespace: ns.example\n  transport: websockets\n  proxy:\n    url: http://u:hunter2@proxy:3128\n",
			`queue.proxy.url: "http://REDACTED@proxy:3128" holds user information: put the user name in username and the password in password_file or password_env`, 1},
		{"  auth: managed_identity\n  namespace: ns.example\n  transport: websockets\n  proxy:\n    url: http://proxy:3128\n    username: svc\n",
			"queue.proxy: password_file or password_env is required (secrets are never inline)", 1},
		{"  auth: managed_identity\n  namespace: ns.example\n  transport: websockets\n  proxy:\n    url: http://proxy:3128\n    username: svc\n    password_env: ADW_TEST_PROXY_PW\n    no_proxy: [\"a, b\"]\n",
			`queue.proxy.no_proxy[0]: "a, b": one host, domain, IP address or CIDR range per entry`, 1},
		{"  auth: managed_identity\n  namespace: ns.example\n  custom_endpoint: amqps://127.0.0.1:5671/\n  ca_file: /nonexistent/ca.pem\n",
			`queue.custom_endpoint: "amqps://127.0.0.1:5671/" must be host or host:port, not a URL`, 2},
		{"  auth: managed_identity\n  namespace: ns.example\n  authority_host: login.microsoftonline.us\n",
			`queue.authority_host: "login.microsoftonline.us" must be https://host/`, 1},
		{"  connection_string_env: CS\n  proxy_url: http://proxy:3128\n", "queue.proxy_url (line", 1},
		{"  connection_string_env: CS\n  proxy_url: http://proxy:3128\n", "unknown key (moved to queue.proxy.url)", 1},
		{"", "queue: connection_string_file or connection_string_env is required (secrets are never inline)", 1},
		{"  connection_string_env: NOPE\n", "queue.connection_string_env: environment variable NOPE is empty or unset", 1},
	} {
		src := strings.Replace(base, "queue:\n", "queue:\n"+c.queue, 1)
		_, err := Parse([]byte(src), func(k string) string {
			switch k {
			case "ADW_TEST_PROXY_PW":
				return "hunter2"
			case "CS":
				return "Endpoint=sb://ns.example/;SharedAccessKeyName=k;SharedAccessKey=eA=="
			}
			return ""
		})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: want %q in %v", c.queue, c.want, err)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%q: the proxy password is in the error: %v", c.queue, err)
		}
		if n := strings.Count(err.Error(), "\n  - "); n != c.n {
			t.Errorf("%q: %d problems, want %d: %v", c.queue, n, c.n, err)
		}
	}
}
