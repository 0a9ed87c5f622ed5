//go:build windows

package winsvc

import (
	"context"
	"errors"
	"testing"
	"time"

	"golang.org/x/sys/windows/svc"
)

// execute drives handler.Execute as the SCM would, without a service.
func execute(t *testing.T, h *handler) (req chan svc.ChangeRequest, status chan svc.Status, done chan [2]any) {
	t.Helper()
	req, status, done = make(chan svc.ChangeRequest), make(chan svc.Status, 16), make(chan [2]any, 1)
	go func() {
		ssec, code := h.Execute(nil, req, status)
		done <- [2]any{ssec, code}
	}()
	for _, want := range []svc.State{svc.StartPending, svc.Running} {
		if st := <-status; st.State != want {
			t.Fatalf("state %v, want %v", st.State, want)
		}
	}
	return req, status, done
}

func TestExecuteStopCancelsContext(t *testing.T) {
	started := make(chan struct{})
	h := &handler{run: func(ctx context.Context) error { close(started); <-ctx.Done(); return nil }}
	req, status, done := execute(t, h)
	<-started
	cur := svc.Status{State: svc.Running}
	req <- svc.ChangeRequest{Cmd: svc.Interrogate, CurrentStatus: cur}
	if st := <-status; st != cur {
		t.Errorf("interrogate answered %+v", st)
	}
	req <- svc.ChangeRequest{Cmd: svc.Stop}
	if st := <-status; st.State != svc.StopPending || st.WaitHint == 0 {
		t.Errorf("after Stop: %+v", st)
	}
	select {
	case r := <-done:
		if r[0].(bool) || r[1].(uint32) != 0 {
			t.Errorf("Execute = %v", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Execute did not return after Stop")
	}
}

func TestExecuteFailureIsServiceSpecificExit(t *testing.T) {
	boom := errors.New("boom")
	h := &handler{run: func(ctx context.Context) error { return boom }}
	_, _, done := execute(t, h)
	r := <-done
	if !r[0].(bool) || r[1].(uint32) != 1 || !errors.Is(h.err, boom) {
		t.Errorf("Execute = %v, err %v", r, h.err)
	}
}
