package httpreport

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestBindingAsDocumented pins PROTOCOL.md §9.3: one POST of the exact
// body with the result content type, the command id as Idempotency-Key
// and User-Agent adwriteback; any 2xx is a delivery.
func TestBindingAsDocumented(t *testing.T) {
	type seen struct {
		method, ct, key, ua string
		body                []byte
	}
	got := make(chan seen, 1)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.Header.Get("Content-Type"), r.Header.Get("Idempotency-Key"), r.Header.Get("User-Agent"), b}
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(srv.Close)
	r, err := New(Config{URL: srv.URL, CAFile: caFile(t, srv)})
	if err != nil {
		t.Fatal(err)
	}
	body := []byte("{\"v\":2,\"type\":\"result\"}\n")
	if err := r.Report(context.Background(), "cmd-9", body); err != nil {
		t.Fatal(err)
	}
	s := <-got
	if s.method != http.MethodPost || s.ct != "application/vnd.adwriteback.result+json;v=1" || s.key != "cmd-9" ||
		s.ua != "adwriteback" || string(s.body) != string(body) {
		t.Fatalf("request %+v", s)
	}
}
