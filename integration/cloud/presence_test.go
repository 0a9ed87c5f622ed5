//go:build integration

package cloud

import (
	"context"
	"errors"
	"os/exec"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"github.com/adwriteback/adwriteback/integration/sbemu"
	"github.com/adwriteback/adwriteback/integration/stack"
	"github.com/adwriteback/adwriteback/relay/keys"
	"github.com/adwriteback/adwriteback/relay/protocol"
	"github.com/adwriteback/adwriteback/relay/sender"
	"github.com/adwriteback/adwriteback/relay/servicebus"
)

// presenceInterval is the heartbeat interval of these tests: the
// configuration's minimum.
const presenceInterval = time.Second

// presenceWorld is a stack with a status queue, one connector (the
// binary) heartbeating to it every presenceInterval, and a portal-side
// reader of the status queue on its own Service Bus client.
type presenceWorld struct {
	*stack.Env
	a      *stack.Connector
	reader *sender.StatusReader
	sb     *azservicebus.Client
	bin    string
}

// connectorBinary is the production binary, built for the test and removed after
// it (the build cache makes every build after the first a link). No
// TestMain: other files of this package may bring their own.
func connectorBinary(t *testing.T) string {
	t.Helper()
	b, err := stack.BuildBinaries(context.Background(), stack.Production)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b.Path(stack.Production)
}

func newPresenceWorld(t *testing.T) *presenceWorld {
	t.Helper()
	bin := connectorBinary(t)
	env := stack.New(t)
	env.AddQueue("status", sbemu.QueueOptions{NoDeadLetterOnExpiry: true})
	w := &presenceWorld{Env: env, bin: bin}
	w.a = env.Connector("a", stack.Binary(bin), stack.Configure(func(c *stack.ConfigSpec) {
		c.StatusQueue, c.StatusInterval, c.StatusInstance = "status", presenceInterval, "site-1"
		c.ShutdownGrace = 2 * time.Second
	}))
	sb, err := servicebus.NewClient(servicebus.Config{Auth: servicebus.AuthConnectionString, ConnectionString: env.ConnectionString})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sb.Close(context.Background()) })
	peeker, err := servicebus.NewStatusPeeker(sb, "status")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = peeker.Close(context.Background()) })
	vk, err := keys.ResultKeysOf(env.Keys.Connector.Public())
	if err != nil {
		t.Fatal(err)
	}
	if w.reader, err = sender.NewStatusReader(sender.StatusConfig{Keys: vk, Source: peeker}); err != nil {
		t.Fatal(err)
	}
	w.sb = sb
	return w
}

// status reads the status queue as a portal does.
func (w *presenceWorld) status(t *testing.T) sender.StatusReport {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rep, err := w.reader.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Unverified > 0 {
		t.Fatalf("%d heartbeats do not verify: %v", rep.Unverified, rep.UnverifiedErr)
	}
	return rep
}

// waitStatus polls the status until cond holds, failing after timeout.
func (w *presenceWorld) waitStatus(t *testing.T, timeout time.Duration, what string, cond func(sender.StatusReport) bool) sender.StatusReport {
	t.Helper()
	var rep sender.StatusReport
	stack.WaitFor(t, timeout, what, func() bool {
		rep = w.status(t)
		return cond(rep)
	})
	return rep
}

// cli runs `adwriteback status` against the status queue and returns
// its exit status.
func (w *presenceWorld) cli(t *testing.T) int {
	t.Helper()
	cmd := exec.Command(w.bin, "status", "--queue", "status", "--connector-key", w.Path(stack.ConnectorPubFile), "--json")
	cmd.Env = []string{"ADW_SERVICEBUS=" + w.ConnectionString}
	out, err := cmd.CombinedOutput()
	w.Results.Write(out)
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	t.Fatalf("adwriteback status: %v\n%s", err, out)
	return -1
}

// TestCloudPresenceAppearsWithinOneInterval: once the connector is ready,
// a verified heartbeat saying it takes work is on the status queue within
// one interval (plus the time one read of the queue takes), and each
// message is what §12's binding says.
func TestCloudPresenceAppearsWithinOneInterval(t *testing.T) {
	w := newPresenceWorld(t)
	w.a.Start()
	w.a.WaitReady(200)
	ready := time.Now()
	rep := w.waitStatus(t, presenceInterval+2*time.Second, "a heartbeat taking work", sender.StatusReport.Available)
	if took := time.Since(ready); took > presenceInterval+time.Second {
		t.Errorf("the heartbeat took %s after readiness, more than one interval", took)
	}
	s := rep.Last
	if s.Instance != "site-1" || s.SignerKID != w.Keys.Connector.KID || s.Interval != 1 || s.Queue.State != "up" ||
		s.Journal.State != "ok" || len(s.Domains) != 1 || s.Domains[0].Name != "adw.test" || s.Domains[0].DCsUp < 1 {
		t.Errorf("heartbeat %+v", s.Status)
	}
	if code := w.cli(t); code != 0 {
		t.Errorf("adwriteback status exited %d while the connector runs, want 0", code)
	}
	checkMessages(t, w.sb)
}

// checkMessages peeks the status queue as Service Bus carries it: unique
// MessageIds, the status content type and subject, a TTL of 2 intervals,
// the unsigned properties.
func checkMessages(t *testing.T, sb *azservicebus.Client) {
	t.Helper()
	r, err := sb.NewReceiverForQueue("status", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	from := int64(0)
	msgs, err := r.PeekMessages(ctx, 100, &azservicebus.PeekMessagesOptions{FromSequenceNumber: &from})
	if err != nil || len(msgs) == 0 {
		t.Fatalf("peek: %d messages, %v", len(msgs), err)
	}
	ids := map[string]bool{}
	for _, m := range msgs {
		if ids[m.MessageID] || m.MessageID == "" {
			t.Errorf("message id %q repeated or empty", m.MessageID)
		}
		ids[m.MessageID] = true
		if m.ContentType == nil || *m.ContentType != sender.ContentTypeStatus || m.Subject == nil || *m.Subject != servicebus.StatusSubject {
			t.Errorf("content type %v, subject %v", m.ContentType, m.Subject)
		}
		if m.TimeToLive == nil || *m.TimeToLive != 2*presenceInterval {
			t.Errorf("TTL %v, want 2 intervals", m.TimeToLive)
		}
		if m.ApplicationProperties[servicebus.StatusPropInstance] != "site-1" {
			t.Errorf("properties %v", m.ApplicationProperties)
		}
	}
}

// TestCloudPresenceStaleAfterKill: a connector killed (SIGKILL, no last
// word) sends nothing more, and its presence goes stale within 2
// intervals of its last heartbeat: the report is stale, and whatever
// heartbeat is still seen (its TTL is those same 2 intervals, so it leaves
// the queue as it goes stale) says running, sent before the kill.
func TestCloudPresenceStaleAfterKill(t *testing.T) {
	w := newPresenceWorld(t)
	w.a.Start()
	w.a.WaitReady(200)
	w.waitStatus(t, presenceInterval+2*time.Second, "a heartbeat taking work", sender.StatusReport.Available)
	w.a.Kill()
	killed := time.Now()
	rep := w.waitStatus(t, 2*presenceInterval+2*time.Second, "the presence to go stale", func(r sender.StatusReport) bool {
		if r.Last != nil && (r.Last.State != protocol.StatusRunning || r.Last.SentAt.After(killed)) {
			t.Fatalf("after SIGKILL: %+v", r.Last.Status)
		}
		return r.Stale
	})
	if rep.Last != nil && rep.Age < 2*presenceInterval {
		t.Errorf("stale at %s old", rep.Age)
	}
	if code := w.cli(t); code != 1 {
		t.Errorf("adwriteback status exited %d for a killed connector, want 1", code)
	}
}

// TestCloudPresenceStoppingOnSIGTERM: a graceful stop's last heartbeat
// says stopping, and the portal hides writeback at once, without waiting
// 2 intervals.
func TestCloudPresenceStoppingOnSIGTERM(t *testing.T) {
	w := newPresenceWorld(t)
	w.a.Start()
	w.a.WaitReady(200)
	w.waitStatus(t, presenceInterval+2*time.Second, "a heartbeat taking work", sender.StatusReport.Available)
	w.a.Stop()
	rep := w.status(t)
	if rep.Last == nil || rep.Last.State != protocol.StatusStopping || rep.Last.TakingWork || !rep.Stale || rep.Available() {
		t.Fatalf("after SIGTERM: %+v", rep)
	}
	if rep.Age >= 2*presenceInterval {
		t.Errorf("the stopping heartbeat is %s old: it was not the last word", rep.Age)
	}
	if code := w.cli(t); code != 1 {
		t.Errorf("adwriteback status exited %d for a stopped connector, want 1", code)
	}
	// The connector comes back: running again.
	w.a.Start()
	w.waitStatus(t, 90*time.Second, "a running heartbeat after the restart", sender.StatusReport.Available)
}
