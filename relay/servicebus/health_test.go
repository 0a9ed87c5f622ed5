package servicebus

import (
	"errors"
	"sync"
	"testing"
	"time"
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
