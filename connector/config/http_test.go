package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/adwriteback/adwriteback/integration/testca"
)

// withHTTP is minimal(dir) with an http section.
func withHTTP(dir, section string) string {
	return minimal(dir) + "http:\n" + section
}

// TestHTTPTrustKeys: the bearer token comes from a file or an environment
// variable, allowed_hosts and status.redact_user_dns are read as given.
func TestHTTPTrustKeys(t *testing.T) {
	dir := files(t)
	if err := os.WriteFile(filepath.Join(dir, "http.token"), []byte("tok-123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Parse([]byte(withHTTP(dir, `  listen: 0.0.0.0:8443
  auth:
    bearer_token_file: `+dir+`/http.token
  allowed_hosts: [localhost, health.corp.example, "::1"]
  status:
    redact_user_dns: true
`)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTP.Auth.BearerToken != "tok-123" {
		t.Errorf("bearer token %q", c.HTTP.Auth.BearerToken)
	}
	if strings.Join(c.HTTP.AllowedHosts, " ") != "localhost health.corp.example ::1" || !c.HTTP.Status.RedactUserDNs {
		t.Errorf("http = %+v", c.HTTP)
	}

	env := func(k string) string { return map[string]string{"HTTP_TOKEN": "from-env"}[k] }
	c, err = Parse([]byte(withHTTP(dir, "  auth:\n    bearer_token_env: HTTP_TOKEN\n")), env)
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTP.Auth.BearerToken != "from-env" {
		t.Errorf("bearer token from env %q", c.HTTP.Auth.BearerToken)
	}

	// The defaults are today's behaviour.
	c, err = Parse([]byte(minimal(dir)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTP.Auth.BearerToken != "" || c.HTTP.AllowedHosts != nil || c.HTTP.Status.RedactUserDNs {
		t.Errorf("defaults: %+v", c.HTTP)
	}
}

// TestHTTPTrustKeysRefused: an empty token file, an unset variable, both
// sources, an inline token, unknown keys and bad host names are each a
// problem at their path, all listed at once.
func TestHTTPTrustKeysRefused(t *testing.T) {
	dir := files(t)
	if err := os.WriteFile(filepath.Join(dir, "empty.token"), []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, section, path, msg string
	}{
		{"empty token file", "  auth:\n    bearer_token_file: " + dir + "/empty.token\n", "http.auth.bearer_token_file", "empty"},
		{"missing token file", "  auth:\n    bearer_token_file: " + dir + "/nope\n", "http.auth.bearer_token_file", "cannot read"},
		{"unset token variable", "  auth:\n    bearer_token_env: NOPE\n", "http.auth.bearer_token_env", "NOPE"},
		{"both sources", "  auth:\n    bearer_token_file: " + dir + "/bind.pass\n    bearer_token_env: X\n", "http.auth", "not both"},
		{"inline token", "  auth:\n    bearer_token: hunter2\n", "http.auth.bearer_token", "unknown"},
		{"unknown auth key", "  auth:\n    mtls: true\n", "http.auth.mtls", "unknown"},
		{"unknown status key", "  status:\n    redact: true\n", "http.status.redact", "unknown"},
		{"host with port", "  allowed_hosts: [\"localhost:8080\"]\n", "http.allowed_hosts[0]", "port"},
		{"bracketed IPv6", "  allowed_hosts: [\"[::1]\"]\n", "http.allowed_hosts[0]", "brackets"},
		{"empty host", "  allowed_hosts: [\"\"]\n", "http.allowed_hosts[0]", "empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(withHTTP(dir, tc.section)), func(string) string { return "" })
			var probs Problems
			if !errors.As(err, &probs) {
				t.Fatalf("accepted: %v", err)
			}
			for _, p := range probs {
				if p.Path == tc.path && strings.Contains(p.Msg, tc.msg) {
					if strings.Contains(probs.Error(), "hunter2") {
						t.Errorf("the inline token is echoed: %s", probs.Error())
					}
					return
				}
			}
			t.Fatalf("no problem at %q with %q in:\n%s", tc.path, tc.msg, probs.Error())
		})
	}
}

// clientCA writes a CA certificate (PEM) into dir as client-ca.pem, and
// the listener's certificate and key as http.pem and http.key.
func clientCA(t *testing.T, dir string) {
	t.Helper()
	ca, err := testca.New("client CA")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.ServerPEM("localhost")
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"client-ca.pem": ca.PEM(), "http.pem": certPEM, "http.key": keyPEM} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestHTTPClientCertKeys: client_ca_file and client_names are read as
// given next to the listener's TLS pair; by default there are none.
func TestHTTPClientCertKeys(t *testing.T) {
	dir := files(t)
	clientCA(t, dir)
	c, err := Parse([]byte(withHTTP(dir, strings.ReplaceAll(`  tls_cert_file: DIR/http.pem
  tls_key_file: DIR/http.key
  client_ca_file: DIR/client-ca.pem
  client_names: [prometheus, scraper.corp.example]
`, "DIR", dir))), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTP.ClientCAFile != filepath.Join(dir, "client-ca.pem") || strings.Join(c.HTTP.ClientNames, " ") != "prometheus scraper.corp.example" {
		t.Errorf("http = %+v", c.HTTP)
	}
	if c, err = Parse([]byte(minimal(dir)), nil); err != nil || c.HTTP.ClientCAFile != "" || c.HTTP.ClientNames != nil {
		t.Errorf("defaults: %+v, %v", c.HTTP, err)
	}
}

// TestHTTPClientCertKeysRefused: a client CA without the listener's TLS
// pair, one that is missing or holds no certificate, names without a
// client CA and an empty name are each a problem at their path.
func TestHTTPClientCertKeysRefused(t *testing.T) {
	dir := files(t)
	clientCA(t, dir)
	tlsPair := "  tls_cert_file: " + dir + "/http.pem\n  tls_key_file: " + dir + "/http.key\n"
	for _, tc := range []struct {
		name, section, path, msg string
	}{
		{"client CA without TLS", "  client_ca_file: " + dir + "/client-ca.pem\n", "http.client_ca_file", "needs tls_cert_file and tls_key_file"},
		{"missing client CA", tlsPair + "  client_ca_file: " + dir + "/nope.pem\n", "http.client_ca_file", "no such file"},
		{"client CA holds no certificate", tlsPair + "  client_ca_file: " + dir + "/http.key\n", "http.client_ca_file", "no PEM certificate"},
		{"names without a client CA", tlsPair + "  client_names: [prometheus]\n", "http.client_names", "needs client_ca_file"},
		{"empty name", tlsPair + "  client_ca_file: " + dir + "/client-ca.pem\n  client_names: [\" \"]\n", "http.client_names[0]", "empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(withHTTP(dir, tc.section)), nil)
			var probs Problems
			if !errors.As(err, &probs) {
				t.Fatalf("accepted: %v", err)
			}
			for _, p := range probs {
				if p.Path == tc.path && strings.Contains(p.Msg, tc.msg) {
					return
				}
			}
			t.Fatalf("no problem at %q with %q in:\n%s", tc.path, tc.msg, probs.Error())
		})
	}
}
