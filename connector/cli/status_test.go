package cli

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/adwriteback/adwriteback/relay/keys"
	"github.com/adwriteback/adwriteback/relay/protocol"
	"github.com/adwriteback/adwriteback/relay/sender"
)

var statusNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

type fixedStatus []sender.StatusMessage

func (f fixedStatus) PeekStatus(context.Context) ([]sender.StatusMessage, error) { return f, nil }

func signedHeartbeat(t *testing.T, k *keys.ConnectorPrivate, sentAt time.Time, state protocol.StatusState) sender.StatusMessage {
	t.Helper()
	s := protocol.Status{V: 2, ConnectorKID: k.KID, Instance: "site-1", Version: "1.0.0",
		StartedAt: protocol.At(statusNow.Add(-time.Hour)), SentAt: protocol.At(sentAt), State: state,
		TakingWork: state == protocol.StatusRunning,
		Queue:      protocol.QueueStatus{State: "up"}, Journal: protocol.JournalStatus{State: "ok"},
		Domains: []protocol.DomainStatus{{Name: "adw.test", DCsUp: 1, DCsDown: 1}}, Interval: 60}
	raw, err := protocol.SignStatus(&s, k.SigningKey())
	if err != nil {
		t.Fatal(err)
	}
	return sender.StatusMessage{Body: raw}
}

// TestStatusExitCodes: 0 available, 1 stale or stopping or none, 3 only
// unverifiable messages; text and JSON say which.
func TestStatusExitCodes(t *testing.T) {
	k, err := keys.GenerateConnector(0, statusNow)
	if err != nil {
		t.Fatal(err)
	}
	other, err := keys.GenerateConnector(0, statusNow)
	if err != nil {
		t.Fatal(err)
	}
	vk, err := keys.ResultKeysOf(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		msgs fixedStatus
		code int
		text string
	}{
		{"fresh", fixedStatus{signedHeartbeat(t, k, statusNow.Add(-10*time.Second), protocol.StatusRunning)}, 0, "writeback available"},
		{"stale", fixedStatus{signedHeartbeat(t, k, statusNow.Add(-3*time.Minute), protocol.StatusRunning)}, 1, "gone (stale)"},
		{"stopping", fixedStatus{signedHeartbeat(t, k, statusNow.Add(-time.Second), protocol.StatusStopping)}, 1, "stopping"},
		{"none", nil, 1, "no verified heartbeat"},
		{"forged", fixedStatus{signedHeartbeat(t, other, statusNow, protocol.StatusRunning)}, 3, "no verified heartbeat"},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, asJSON := range []bool{false, true} {
				env, out, _ := testEnv()
				f := newStatusFlags(env)
				f.asJSON, f.queue = asJSON, "status"
				err := f.report(context.Background(), env, sender.StatusConfig{Keys: vk, Source: c.msgs,
					Clock: clockwork.NewFakeClockAt(statusNow)})
				if ExitCode(err) != c.code {
					t.Fatalf("json=%v: exit %d (%v), want %d", asJSON, ExitCode(err), err, c.code)
				}
				if !asJSON && !strings.Contains(out.String(), c.text) {
					t.Errorf("output %q lacks %q", out, c.text)
				}
				var js statusJSON
				if asJSON {
					if err := json.Unmarshal(out.Bytes(), &js); err != nil {
						t.Fatalf("%v: %s", err, out)
					}
					if js.Available != (c.code == 0) {
						t.Errorf("json available=%v for exit %d", js.Available, c.code)
					}
				}
			}
		})
	}
}

func TestStatusUsage(t *testing.T) {
	env, _, _ := testEnv()
	err := runStatus(context.Background(), env, nil)
	if ExitCode(err) != 2 || !strings.Contains(err.Error(), "--queue") || !strings.Contains(err.Error(), "--connector-key") {
		t.Fatalf("%v", err)
	}
	err = runStatus(context.Background(), env, []string{"--queue", "s", "--connector-key", filepath.Join(t.TempDir(), "none.json")})
	if ExitCode(err) != 2 {
		t.Fatalf("missing key file: %v", err)
	}
}
