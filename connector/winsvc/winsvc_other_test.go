//go:build !windows

package winsvc

import (
	"context"
	"errors"
	"testing"
)

func TestNotWindows(t *testing.T) {
	ctx := context.Background()
	if ok, err := IsService(); ok || err != nil {
		t.Errorf("IsService = %v, %v", ok, err)
	}
	called := false
	errs := map[string]error{
		"Run":           Run("x", func(context.Context) error { called = true; return nil }),
		"Install":       Install("x", "/bin/x", nil, InstallOptions{}),
		"Uninstall":     Uninstall("x"),
		"Start":         Start(ctx, "x"),
		"Stop":          Stop(ctx, "x"),
		"ProtectFolder": ProtectFolder("/tmp/x", "O:BAD:P"),
	}
	_, errs["AccountSID"] = AccountSID("x", `CORP\svc`)
	if sid, err := AccountSID("x", ""); err != nil || sid != ServiceSID("x") {
		t.Errorf("AccountSID of the virtual account = %s, %v", sid, err)
	}
	_, _, errs["NewEventLogHandler"] = NewEventLogHandler("x", nil)
	_, _, errs["NewEventLogWriter"] = NewEventLogWriter("x")
	for name, err := range errs {
		if !errors.Is(err, ErrNotWindows) {
			t.Errorf("%s = %v, want ErrNotWindows", name, err)
		}
	}
	if called {
		t.Error("Run called the function outside Windows")
	}
	if ErrNotWindows.Error() != "winsvc: Windows services are only available on Windows" {
		t.Errorf("message %q", ErrNotWindows)
	}
}
