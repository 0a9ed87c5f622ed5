package proxy

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestProblems(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want []string
	}{
		{Config{}, nil},
		{Config{URL: "http://proxy:3128", Username: "u", Password: "p", NoProxy: []string{".corp", "10.0.0.0/8", "*"}}, nil},
		{Config{URL: "socks5://proxy:1080"}, []string{"url"}},
		{Config{URL: "http://u:hunter2@proxy:3128"}, []string{"url"}},
		{Config{URL: "http://proxy:3128/path"}, []string{"url"}},
		{Config{URL: "http://proxy:3128", Username: "u"}, []string{"username"}},
		{Config{Username: "u", Password: "p"}, []string{"url"}},
		{Config{URL: "http://proxy:3128", NoProxy: []string{"a,b", " "}}, []string{"no_proxy[0]", "no_proxy[1]"}},
	} {
		var got []string
		for _, p := range c.cfg.Problems() {
			got = append(got, p.Field)
			if !errors.Is(p, ErrConfig) || strings.Contains(p.Error(), "hunter2") {
				t.Errorf("%+v: %v", c.cfg.URL, p)
			}
		}
		if strings.Join(got, " ") != strings.Join(c.want, " ") {
			t.Errorf("%q: problems %v, want %v", c.cfg.URL, got, c.want)
		}
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestFor: the configured proxy, with its credentials, for https destinations not excluded;
// plain http (a managed identity endpoint) and loopback go direct; the environment applies
// only when no URL is configured.
func TestFor(t *testing.T) {
	t.Setenv("HTTPS_PROXY", "http://envproxy:8080")
	t.Setenv("NO_PROXY", "env.example")
	s, err := New(Config{URL: "http://proxy:3128", Username: "u", Password: "pw", NoProxy: []string{".corp.example", "10.0.0.0/8"}})
	if err != nil {
		t.Fatal(err)
	}
	for dest, want := range map[string]string{
		"https://ns.servicebus.windows.net/": "http://u:pw@proxy:3128",
		"https://login.microsoftonline.com/": "http://u:pw@proxy:3128",
		"https://env.example/":               "http://u:pw@proxy:3128",
		"https://results.corp.example/":      "",
		"https://10.1.2.3/":                  "",
		"https://127.0.0.1:8443/":            "",
		"http://169.254.169.254/metadata":    "",
	} {
		p, err := s.For(mustURL(t, dest))
		got := ""
		if p != nil {
			got = p.String()
		}
		if err != nil || got != want {
			t.Errorf("%s: proxy %q (%v), want %q", dest, got, err, want)
		}
	}
	env, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := env.For(mustURL(t, "https://ns.servicebus.windows.net/")); p == nil || p.Host != "envproxy:8080" {
		t.Errorf("environment proxy: %v", p)
	}
	if p, _ := env.For(mustURL(t, "https://env.example/")); p != nil {
		t.Errorf("NO_PROXY from the environment ignored: %v", p)
	}
}

func TestConnectErrorClassifies(t *testing.T) {
	req := &http.Request{Host: "ns.servicebus.windows.net:443"}
	err := OnConnectResponse(context.Background(), mustURL(t, "http://u:hunter2@proxy:3128"), req,
		&http.Response{StatusCode: http.StatusProxyAuthRequired, Status: "407 Proxy Authentication Required"})
	if !errors.Is(err, ErrProxyAuth) || errors.Is(err, ErrProxyRefused) || !Is(err) || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("407: %v", err)
	}
	// tinyproxy answers a wrong password with 401
	err = OnConnectResponse(context.Background(), mustURL(t, "http://u:hunter2@proxy:3128"), req,
		&http.Response{StatusCode: http.StatusUnauthorized, Status: "401 Unauthorized"})
	if !errors.Is(err, ErrProxyAuth) || errors.Is(err, ErrProxyRefused) || !strings.Contains(err.Error(), "401") || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("401: %v", err)
	}
	err = OnConnectResponse(context.Background(), mustURL(t, "http://proxy:3128"), req, &http.Response{StatusCode: http.StatusForbidden, Status: "403 Forbidden"})
	if !errors.Is(err, ErrProxyRefused) || errors.Is(err, ErrProxyAuth) {
		t.Fatalf("403: %v", err)
	}
	if err := OnConnectResponse(context.Background(), mustURL(t, "http://proxy:3128"), req, &http.Response{StatusCode: http.StatusOK}); err != nil {
		t.Fatalf("200: %v", err)
	}
}

func TestRedact(t *testing.T) {
	if got := Redact("http://u:hunter2@proxy:3128"); strings.Contains(got, "hunter2") || !strings.Contains(got, "proxy:3128") {
		t.Fatal(got)
	}
	if got := Redact("http://proxy:3128"); got != "http://proxy:3128" {
		t.Fatal(got)
	}
	if got := Redact("http://u:hunter2@proxy:3128/%zz"); strings.Contains(got, "hunter2") {
		t.Fatal(got)
	}
}
