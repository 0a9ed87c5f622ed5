package health

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const testToken = "s3cret-bearer-token"

// guarded serves NewHandler with o's trust options over the sample state.
func guarded(t *testing.T, o Options) *httptest.Server {
	t.Helper()
	reg := prometheus.NewRegistry()
	recent := NewRecent(10)
	for _, r := range sampleRecords() {
		recent.Add(r)
	}
	st := &state{s: healthy()}
	o.Snapshot, o.Recent, o.Version = st.get, recent, "v1.2.3"
	o.Metrics = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	srv := httptest.NewServer(NewHandler(o))
	t.Cleanup(srv.Close)
	return srv
}

// do sends a GET for path with the Authorization and Host given ("": none,
// the server's own).
func do(t *testing.T, srv *httptest.Server, path, auth, host string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("GET", srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if host != "" {
		req.Host = host
	}
	return send(t, srv.Client(), req)
}

// TestBearerTokenGuardsAdminPages: with a token configured, /status (and
// /), /metrics and /readyz answer 401 with WWW-Authenticate: Bearer and an
// empty body unless the request carries exactly that token; /livez stays
// open.
func TestBearerTokenGuardsAdminPages(t *testing.T) {
	srv := guarded(t, Options{BearerToken: testToken})
	for _, path := range []string{"/status", "/", "/metrics", "/readyz"} {
		for _, auth := range []string{"", "Bearer wrong-token", "Bearer " + testToken + "x", "Basic " + testToken, "Bearer"} {
			resp, body := do(t, srv, path, auth, "")
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s with %q: status %d, want 401", path, auth, resp.StatusCode)
			}
			if got := resp.Header.Get("WWW-Authenticate"); got != "Bearer" {
				t.Errorf("%s with %q: WWW-Authenticate %q, want Bearer", path, auth, got)
			}
			if body != "" {
				t.Errorf("%s with %q: a body of %d bytes, want none", path, auth, len(body))
			}
		}
		resp, body := do(t, srv, path, "Bearer "+testToken, "")
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s with the token: status %d, want 200", path, resp.StatusCode)
		}
		if strings.Contains(body, testToken) {
			t.Errorf("%s shows the token", path)
		}
	}
	if resp, body := do(t, srv, "/livez", "", ""); resp.StatusCode != http.StatusOK || body != "ok\n" {
		t.Errorf("/livez without a token = %d %q, want 200", resp.StatusCode, body)
	}
}

// TestNoTokenKeepsPagesOpen: the default (no token) is today's behaviour.
func TestNoTokenKeepsPagesOpen(t *testing.T) {
	srv := guarded(t, Options{})
	for _, path := range []string{"/status", "/metrics", "/readyz", "/livez"} {
		if resp, _ := do(t, srv, path, "", ""); resp.StatusCode != http.StatusOK {
			t.Errorf("%s without a token: %d, want 200", path, resp.StatusCode)
		}
	}
}

// TestHostAllowList: with allowed_hosts set, a request whose Host (port
// stripped, case ignored) is not listed is 421 with an empty body, even
// with the right token: a DNS-rebound name cannot read the pages.
func TestHostAllowList(t *testing.T) {
	srv := guarded(t, Options{BearerToken: testToken, AllowedHosts: []string{"localhost", "127.0.0.1", "Health.Corp.Example", "::1"}})
	for _, host := range []string{"evil.example", "evil.example:8080", "localhost.evil.example", "127.0.0.2"} {
		for _, path := range []string{"/status", "/metrics", "/readyz"} {
			resp, body := do(t, srv, path, "Bearer "+testToken, host)
			if resp.StatusCode != http.StatusMisdirectedRequest || body != "" {
				t.Errorf("%s with Host %q = %d and %d body bytes, want 421 and none", path, host, resp.StatusCode, len(body))
			}
		}
	}
	for _, host := range []string{"localhost", "localhost:8080", "127.0.0.1:9", "health.corp.example:443", "[::1]:8080"} {
		if resp, _ := do(t, srv, "/status", "Bearer "+testToken, host); resp.StatusCode != http.StatusOK {
			t.Errorf("/status with Host %q = %d, want 200", host, resp.StatusCode)
		}
	}
}

// TestRedactUserDNs: with RedactUserDNs the status page shows each DN with
// its first RDN's value masked; the full DN, and the name, are absent.
func TestRedactUserDNs(t *testing.T) {
	srv := guarded(t, Options{RedactUserDNs: true})
	_, body := do(t, srv, "/status", "", "")
	for _, r := range sampleRecords() {
		if strings.Contains(body, r.UserDN) {
			t.Errorf("/status shows %q", r.UserDN)
		}
	}
	for _, name := range []string{"Alice Martin", "Bob Stone", "alert"} {
		if strings.Contains(body, name) {
			t.Errorf("/status shows %q", name)
		}
	}
	if !strings.Contains(body, "CN=***,OU=Staff,DC=corp,DC=example") {
		t.Error("/status lacks the masked DN")
	}
	// Off, the DN is shown as before.
	_, body = do(t, guarded(t, Options{}), "/status", "", "")
	if !strings.Contains(body, "CN=Alice Martin,OU=Staff,DC=corp,DC=example") {
		t.Error("/status without redaction lacks the DN")
	}
}

func TestRedactDN(t *testing.T) {
	for in, want := range map[string]string{
		"CN=Alice,OU=Staff,DC=corp,DC=example":          "CN=***,OU=Staff,DC=corp,DC=example",
		`CN=Martin\, Alice,OU=Staff,DC=corp,DC=example`: "CN=***,OU=Staff,DC=corp,DC=example",
		`CN=a\\,OU=Staff`:                               "CN=***,OU=Staff",
		"CN=Alice+UID=alice,OU=Staff":                   "CN=***,OU=Staff",
		"CN=Alice":                                      "CN=***",
		"no equals sign":                                "***",
		"":                                              "",
	} {
		if got := redactDN(in); got != want {
			t.Errorf("redactDN(%q) = %q, want %q", in, got, want)
		}
	}
}
