package servicebus

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// lazyError builds its text on first use without a lock, as azidentity's
// AuthenticationFailedError does with the token endpoint's response.
type lazyError struct{ text []byte }

func (e *lazyError) Error() string {
	if e.text == nil {
		e.text = []byte("token endpoint said no")
	}
	return string(e.text)
}

// TestHealthErrorTextReadOnce: the last error's text is read when it is
// recorded, so /readyz may read Health from several goroutines at once
// (go test -race fails this without it), and errors.Is still finds the
// cause.
func TestHealthErrorTextReadOnce(t *testing.T) {
	var tr healthTracker
	cause := &lazyError{}
	tr.linkFailed(func(h *Health) { h.LastError = cause })
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if got := tr.snapshot().LastError.Error(); got != "token endpoint said no" {
				t.Errorf("LastError %q", got)
			}
		})
	}
	wg.Wait()
	if err := tr.snapshot().LastError; !errors.Is(err, cause) {
		t.Fatalf("errors.Is lost the cause: %v", err)
	}
	tr.fail(time.Now(), nil)
	if err := tr.snapshot().LastError; err != nil {
		t.Fatalf("nil recorded as %v", err)
	}
}

// TestClassifyTokenRefusal: Entra ID's refusal of a token is ErrTokenRefused
// on one line, with the AADSTS code and reason of the answer, and the SDK's
// error still found by errors.As.
func TestClassifyTokenRefusal(t *testing.T) {
	body := `{"error":"invalid_client","error_codes":[7000222],"error_description":"AADSTS7000222: The provided client secret keys for app 'a1' are expired.\r\nTrace ID: t1"}`
	resp := &http.Response{StatusCode: http.StatusUnauthorized, Status: "401 Unauthorized",
		Body: io.NopCloser(strings.NewReader(body)), Request: httptest.NewRequest(http.MethodPost, "https://login.example/t/oauth2/v2.0/token", nil)}
	err := Classify(fmt.Errorf("receive: %w", &azidentity.AuthenticationFailedError{RawResponse: resp}))
	want := "servicebus: Entra ID refused a token: HTTP 401 invalid_client: AADSTS7000222: The provided client secret keys for app 'a1' are expired. Trace ID: t1"
	if err.Error() != want {
		t.Fatalf("Classify:\n got %q\nwant %q", err, want)
	}
	var afe *azidentity.AuthenticationFailedError
	if !errors.Is(err, ErrTokenRefused) || !errors.As(err, &afe) {
		t.Fatalf("%v: not ErrTokenRefused, or the SDK's error lost", err)
	}
}
