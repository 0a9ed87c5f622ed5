package stack

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestProxyConfig: the tinyproxy configuration listens on loopback only,
// demands the credential, cuts idle connections after the timeout in whole
// seconds, and lets CONNECT reach only the ports given (none: port 0, as
// no ConnectPort line would allow every port).
func TestProxyConfig(t *testing.T) {
	dir := t.TempDir()
	p := &HTTPProxy{addr: "127.0.0.1:3128", user: "u", password: "p-w.1", idle: 2 * time.Second,
		conf: filepath.Join(dir, "tinyproxy.conf"), logF: filepath.Join(dir, "tinyproxy.log")}
	for _, tc := range []struct {
		ports []int
		want  []string
	}{
		{[]int{443, 8443}, []string{"ConnectPort 443\n", "ConnectPort 8443\n"}},
		{nil, []string{"ConnectPort 0\n"}},
	} {
		if err := p.writeConfig(tc.ports); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(p.conf)
		if err != nil {
			t.Fatal(err)
		}
		conf := string(b)
		for _, line := range append(tc.want, "Port 3128\n", "Listen 127.0.0.1\n", "Allow 127.0.0.1\n", "Timeout 2\n", "BasicAuth u p-w.1\n") {
			if !strings.Contains(conf, line) {
				t.Errorf("config lacks %q:\n%s", line, conf)
			}
		}
		if n := strings.Count(conf, "ConnectPort"); n != len(tc.want) {
			t.Errorf("%d ConnectPort lines, want %d", n, len(tc.want))
		}
		if st, err := os.Stat(p.conf); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("config mode %v %v (it holds the password)", st.Mode(), err)
		}
	}
	if got := p.BasicCredential(); got != "Basic dTpwLXcuMQ==" {
		t.Errorf("BasicCredential %q", got)
	}
}

// TestProxyCredentialRule: credentials tinyproxy's BasicAuth cannot parse
// are refused before it starts.
func TestProxyCredentialRule(t *testing.T) {
	for _, s := range []string{"Good-1.x_y", "abc"} {
		if !proxyCredential.MatchString(s) {
			t.Errorf("%q refused", s)
		}
	}
	for _, s := range []string{"", "has space", "quo\"te", "colon:x", "bang!"} {
		if proxyCredential.MatchString(s) {
			t.Errorf("%q accepted", s)
		}
	}
}
