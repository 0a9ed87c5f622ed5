package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
