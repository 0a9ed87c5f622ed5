//go:build integration

package oncall

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/adwriteback/adwriteback/integration/stack"
	"github.com/adwriteback/adwriteback/integration/testdc"
	"github.com/adwriteback/adwriteback/relay/keys"
	"github.com/adwriteback/adwriteback/relay/protocol"
	"github.com/adwriteback/adwriteback/relay/sender"
)

// TestOnCallSenderKeyReload: an admin adds a second sender key to
// keys.senders and reloads; its commands are taken without a restart.
// A corrupt key file in its place is refused, naming the file, and the
// keys in force (both) keep working.
func TestOnCallSenderKeyReload(t *testing.T) {
	env := stack.New(t)
	c := env.Start("a")
	c.WaitReady(200)
	u := testdc.NewUser(t, env.DC, "")
	unlock := sender.Request{Op: protocol.OpUnlock, User: protocol.UserRef{SAM: u.SAM}}
	first := env.Sender()

	sk2, err := keys.GenerateSender(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pub2 := env.WriteFile("sender2.pub.json", sk2.Public().Marshal(), keys.PublicMode)
	second := env.Sender(func(o *stack.SenderOptions) { o.Keys.Sender = sk2 })
	c.WriteConfig(stack.Configure(func(s *stack.ConfigSpec) { s.SenderKeys = slices.Concat(s.SenderKeys, []string{pub2}) }))
	if err := c.App().Reload(context.Background()); err != nil {
		t.Fatalf("reload with a second sender key: %v", err)
	}
	wantSucceeded(t, "second key after the reload", second.Do(unlock))
	if strings.Contains(c.Logs(), "only a restart applies") {
		t.Error("a reload of the keys alone reported settings needing a restart")
	}

	if err := os.WriteFile(pub2, []byte(`{"v":1,"type":"adwriteback-sender-public-key"`), keys.PublicMode); err != nil {
		t.Fatal(err)
	}
	err = c.App().Reload(context.Background())
	if err == nil || !strings.Contains(err.Error(), pub2) {
		t.Fatalf("reload with a corrupt key file: %v, want a refusal naming %s", err, pub2)
	}
	if !strings.Contains(c.Logs(), "reload refused") {
		t.Error(`no "reload refused" in the log`)
	}
	wantSucceeded(t, "first key after the refused reload", first.Do(unlock))
	wantSucceeded(t, "second key after the refused reload", second.Do(unlock))
}

func wantSucceeded(t *testing.T, what string, res *protocol.VerifiedResult) {
	t.Helper()
	if res.Code != protocol.CodeSucceeded {
		t.Fatalf("%s: %+v", what, res.Result)
	}
}
