package httpreport

import (
	"context"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/adwriteback/adwriteback/relay/proxy"
	"github.com/adwriteback/adwriteback/relay/proxy/proxytest"
)

type hit struct {
	key, contentType string
	body             string
}

// server is a real TLS endpoint answering with the given statuses in turn (the last repeats).
func server(t *testing.T, statuses ...int) (*httptest.Server, func() []hit) {
	t.Helper()
	var mu sync.Mutex
	var hits []hit
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		n := len(hits)
		hits = append(hits, hit{key: r.Header.Get(IdempotencyKeyHeader), contentType: r.Header.Get("Content-Type"), body: string(b)})
		mu.Unlock()
		if r.Method != http.MethodPost {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		st := statuses[min(n, len(statuses)-1)]
		w.WriteHeader(st)
		_, _ = io.WriteString(w, http.StatusText(st))
	}))
	t.Cleanup(srv.Close)
	return srv, func() []hit {
		mu.Lock()
		defer mu.Unlock()
		return append([]hit(nil), hits...)
	}
}

func caFile(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(p, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func reporter(t *testing.T, srv *httptest.Server, attempts int) *Reporter {
	t.Helper()
	r, err := New(Config{URL: srv.URL + "/results", CAFile: caFile(t, srv), MaxAttempts: attempts,
		Backoff: &backoff.ExponentialBackOff{InitialInterval: time.Millisecond, Multiplier: 2, MaxInterval: 5 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRetries503ThenSucceeds(t *testing.T) {
	srv, hits := server(t, 503, 503, 200)
	r := reporter(t, srv, 5)
	if err := r.Report(context.Background(), "cmd-1", []byte(`{"signed":"result"}`)); err != nil {
		t.Fatalf("report: %v", err)
	}
	h := hits()
	if len(h) != 3 {
		t.Fatalf("attempts = %d, want 3", len(h))
	}
	for _, x := range h {
		if x.key != "cmd-1" || x.body != `{"signed":"result"}` || x.contentType != DefaultContentType {
			t.Fatalf("request %+v", x)
		}
	}
}

func TestGivesUpCleanlyOn400(t *testing.T) {
	for _, st := range []int{400, 401, 403, 404, 409, 422} {
		srv, hits := server(t, st, 200)
		r := reporter(t, srv, 5)
		err := r.Report(context.Background(), "cmd-2", []byte("x"))
		var re *Error
		if !errors.As(err, &re) || re.Kind != KindRejected || re.StatusCode != st || re.Attempts != 1 {
			t.Fatalf("status %d: err %v", st, err)
		}
		if !IsPermanent(err) || errors.Is(err, ErrTransient) {
			t.Fatalf("status %d: not permanent: %v", st, err)
		}
		if n := len(hits()); n != 1 {
			t.Fatalf("status %d: %d attempts, want 1 (4xx is never retried)", st, n)
		}
	}
}

func TestGivesUpAfterBoundOnPersistent503(t *testing.T) {
	srv, hits := server(t, 503)
	r := reporter(t, srv, 4)
	err := r.Report(context.Background(), "cmd-3", []byte("x"))
	var re *Error
	if !errors.As(err, &re) || re.Kind != KindUnavailable || re.StatusCode != 503 || re.Attempts != 4 {
		t.Fatalf("err %v", err)
	}
	if IsPermanent(err) || !errors.Is(err, ErrTransient) {
		t.Fatalf("persistent 503 must be transient: %v", err)
	}
	if n := len(hits()); n != 4 {
		t.Fatalf("attempts = %d, want 4", n)
	}
}

func TestRetries429(t *testing.T) {
	srv, hits := server(t, 429, 200)
	r := reporter(t, srv, 3)
	if err := r.Report(context.Background(), "cmd-4", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if n := len(hits()); n != 2 {
		t.Fatalf("attempts %d", n)
	}
}

func TestUntrustedCertificateIsTLSError(t *testing.T) {
	srv, hits := server(t, 200)
	r, err := New(Config{URL: srv.URL, MaxAttempts: 3,
		Backoff: &backoff.ExponentialBackOff{InitialInterval: time.Millisecond, Multiplier: 1, MaxInterval: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	err = r.Report(context.Background(), "cmd-5", []byte("x"))
	var re *Error
	if !errors.As(err, &re) || re.Kind != KindTLS || re.Attempts != 1 || !IsPermanent(err) {
		t.Fatalf("err %v", err)
	}
	if n := len(hits()); n != 0 {
		t.Fatalf("handler reached %d times through an unverified connection", n)
	}
}

func TestNetworkErrorIsTransientAfterBound(t *testing.T) {
	srv, _ := server(t, 200)
	r := reporter(t, srv, 3)
	srv.Close()
	err := r.Report(context.Background(), "cmd-6", []byte("x"))
	var re *Error
	if !errors.As(err, &re) || re.Kind != KindNetwork || re.Attempts != 3 || IsPermanent(err) {
		t.Fatalf("err %v", err)
	}
}

func TestCanceledContext(t *testing.T) {
	srv, _ := server(t, 503)
	r, err := New(Config{URL: srv.URL, CAFile: caFile(t, srv), MaxAttempts: 100,
		Backoff: &backoff.ExponentialBackOff{InitialInterval: time.Hour, Multiplier: 1, MaxInterval: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Report(ctx, "cmd-7", []byte("x")) }()
	cancel()
	err = <-done
	var re *Error
	if !errors.As(err, &re) || IsPermanent(err) {
		t.Fatalf("err %v", err)
	}
	if re.Kind != KindCanceled || !errors.Is(err, context.Canceled) {
		t.Fatalf("kind %v err %v", re.Kind, err)
	}
}

func TestConfigValidation(t *testing.T) {
	bad := []Config{
		{URL: ""},
		{URL: "ftp://x/"},
		{URL: "http://example.invalid/"},
		{URL: "https://x/", CAFile: filepath.Join(t.TempDir(), "missing.pem")},
		{URL: "https://x/", MaxAttempts: -1},
	}
	for _, c := range bad {
		if _, err := New(c); err == nil {
			t.Errorf("New(%+v) accepted", c)
		}
	}
	empty := filepath.Join(t.TempDir(), "empty.pem")
	_ = os.WriteFile(empty, []byte("not pem"), 0o600)
	if _, err := New(Config{URL: "https://x/", CAFile: empty}); err == nil {
		t.Error("CA file without PEM accepted")
	}
	if _, err := New(Config{URL: "http://localhost/", AllowInsecureHTTP: true}); err != nil {
		t.Errorf("explicit insecure http refused: %v", err)
	}
}

func TestEmptyCommandID(t *testing.T) {
	srv, hits := server(t, 200)
	r := reporter(t, srv, 2)
	if err := r.Report(context.Background(), "", []byte("x")); !IsPermanent(err) {
		t.Fatalf("err %v", err)
	}
	if len(hits()) != 0 {
		t.Fatal("request sent without idempotency key")
	}
}

func TestBackoffBounds(t *testing.T) {
	wait := waits(*DefaultBackoff())
	for attempt := 0; attempt < 40; attempt++ {
		if d := wait(0, 0, attempt, nil); d < 100*time.Millisecond || d > 15*time.Second {
			t.Fatalf("attempt %d: %v out of bounds", attempt, d)
		}
	}
	steady := backoff.ExponentialBackOff{InitialInterval: 10 * time.Millisecond, Multiplier: 2, MaxInterval: 40 * time.Millisecond}
	wait = waits(steady)
	var got []time.Duration
	for attempt := range 4 {
		got = append(got, wait(0, 0, attempt, nil))
	}
	if !slices.Equal(got, []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond, 40 * time.Millisecond}) {
		t.Fatalf("waits %v: want doubling up to the cap", got)
	}
	if d := waits(steady)(0, 0, 0, nil); d != 10*time.Millisecond {
		t.Fatalf("a new report starts over: first wait %v", d)
	}
	resp := &http.Response{StatusCode: 503, Header: http.Header{"Retry-After": {"3600"}}}
	if d := waits(backoff.ExponentialBackOff{InitialInterval: time.Millisecond, Multiplier: 2, MaxInterval: 2 * time.Second})(0, 0, 1, resp); d != 2*time.Second {
		t.Fatalf("Retry-After not capped: %v", d)
	}
	resp = &http.Response{StatusCode: 429, Header: http.Header{"Retry-After": {"1"}}}
	steady.MaxInterval = time.Minute
	if d := waits(steady)(0, 0, 1, resp); d != time.Second {
		t.Fatalf("Retry-After not honoured: %v", d)
	}
}

// TestReportThroughProxy: reports go through the connector's proxy (a real CONNECT proxy
// with basic authentication); a wrong proxy password is KindProxy / ErrProxyAuth, not
// retried, transient (the command comes back), and its text holds no password.
func TestReportThroughProxy(t *testing.T) {
	for _, k := range []string{"HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy"} {
		t.Setenv(k, "")
	}
	srv, hits := server(t, http.StatusOK)
	// the test server's certificate names example.com; the proxy resolves it to the server
	px := proxytest.Start(t, proxytest.Options{Username: "svc", Password: "right-pw",
		Resolve: map[string]string{"example.com:443": srv.Listener.Addr().String()}})
	newReporter := func(pw string) *Reporter {
		r, err := New(Config{URL: "https://example.com/results", CAFile: caFile(t, srv), MaxAttempts: 3,
			Backoff: &backoff.ExponentialBackOff{InitialInterval: time.Millisecond, MaxInterval: time.Millisecond, Multiplier: 1},
			Proxy:   proxy.Config{URL: px.URL(), Username: "svc", Password: pw}})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if err := newReporter("right-pw").Report(context.Background(), "cmd-1", []byte(`{}`)); err != nil {
		t.Fatalf("through the proxy: %v", err)
	}
	if len(hits()) != 1 || !slices.Equal(px.Targets(), []string{"example.com:443"}) {
		t.Fatalf("hits %d, CONNECT targets %v", len(hits()), px.Targets())
	}
	err := newReporter("wrong-pw").Report(context.Background(), "cmd-2", []byte(`{}`))
	var re *Error
	if !errors.As(err, &re) || re.Kind != KindProxy || !errors.Is(err, proxy.ErrProxyAuth) || IsPermanent(err) {
		t.Fatalf("wrong proxy password: %v, want a transient KindProxy / ErrProxyAuth", err)
	}
	if px.Refused() != 1 || strings.Contains(err.Error(), "wrong-pw") || strings.Contains(err.Error(), "right-pw") {
		t.Fatalf("refused %d (want 1, not retried); error %v", px.Refused(), err)
	}
}

// counting wraps h to count the requests it serves.
func counting(h http.HandlerFunc) (http.HandlerFunc, func() int) {
	var mu sync.Mutex
	n := 0
	return func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			n++
			mu.Unlock()
			h(w, r)
		}, func() int {
			mu.Lock()
			defer mu.Unlock()
			return n
		}
}

// redirector is a TLS endpoint that answers every request with status and a
// Location of to; it counts the requests it got.
func redirector(t *testing.T, status int, to string) (*httptest.Server, func() int) {
	t.Helper()
	h, n := counting(func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, to, status) })
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	return srv, n
}

// TestRedirectIsAFailedDelivery: a 3xx is never followed (not to another
// host, not to plain http, not even permanently moved): the result would go
// where the configuration did not say. The report fails once, classified as
// a redirect, and the target of the Location gets nothing.
func TestRedirectIsAFailedDelivery(t *testing.T) {
	other, otherHits := server(t, 200)
	plainHandler, plainHits := counting(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	plain := httptest.NewServer(plainHandler)
	t.Cleanup(plain.Close)
	for _, c := range []struct {
		name   string
		status int
		to     string
		got    func() int
	}{
		{"302 to another server", http.StatusFound, other.URL + "/stolen", func() int { return len(otherHits()) }},
		{"307 to plain http", http.StatusTemporaryRedirect, plain.URL + "/stolen", plainHits},
		{"301 to another server", http.StatusMovedPermanently, other.URL + "/moved", func() int { return len(otherHits()) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := c.got()
			srv, hits := redirector(t, c.status, c.to)
			// httptest's servers share one certificate: the other server would be trusted
			r := reporter(t, srv, 5)
			err := r.Report(context.Background(), "cmd-r", []byte(`{"signed":"result"}`))
			var e *Error
			if !errors.As(err, &e) || e.Kind != KindRedirect || e.StatusCode != c.status {
				t.Errorf("err %v, want a %s failure with HTTP %d", err, KindRedirect, c.status)
			}
			if !errors.Is(err, ErrRedirect) {
				t.Errorf("errors.Is(err, ErrRedirect) is false: %v", err)
			}
			if e != nil && e.Attempts != 1 || hits() != 1 {
				t.Errorf("requests %d: a redirect is not retried within the report", hits())
			}
			if n := c.got() - before; n != 0 {
				t.Errorf("the Location's server got %d request(s): the redirect was followed", n)
			}
		})
	}
}
