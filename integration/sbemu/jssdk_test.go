//go:build integration

package sbemu_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/adwriteback/adwriteback/integration/sbemu"
)

// jsStep is one line of jssdk/contract.mjs's output.
type jsStep struct {
	Step    string `json:"step"`
	OK      bool   `json:"ok"`
	Skipped bool   `json:"skipped"`
	Error   string `json:"error"`
	Code    string `json:"code"`
}

// jsSteps are the steps contract.mjs runs, in order; each must report ok.
var jsSteps = []string{"send", "peek", "receive", "renew", "complete", "abandon", "lock-expiry",
	"deadletter", "defer", "schedule", "empty-peek", "ttl", "receive-and-delete", "session-accept",
	"session-accept-next", "errors"}

// TestJSSDKContract runs Microsoft's JavaScript SDK (@azure/service-bus, pinned in
// package.json) against the emulator through jssdk/contract.mjs: send (single and batched),
// peek, peek-lock receive, lock renewal, complete, abandon, lock expiry, dead-letter and
// read-back from the dead-letter sub-queue, deferral and receive by sequence number, scheduled
// messages (and a cancelled one), TTL expiry, receive-and-delete, sessions, and the errors a
// client tells apart (entity not found, unauthorized, lock lost, session cannot be locked) (accept a named session
// and the next one, session lock renewal, session state). It then checks what the emulator
// recorded through its control endpoint, so the emulator answers another client than the Go
// SDK as Service Bus would.
func TestJSSDKContract(t *testing.T) {
	e := emulator(t)
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal(sbemu.ErrNodeMissing)
	}
	// Short, so the renew step outlives the lock it renewed and the lock-expiry step is quick;
	// long enough that a loaded machine (late timers, slow round trips) keeps the renewal
	// inside the lock.
	const lock = 4 * time.Second
	const reason, description = "js-contract-reason", "dead-lettered by the JavaScript SDK contract test"
	q := newQueue(t, e, sbemu.QueueOptions{LockDuration: lock})
	sq := newQueue(t, e, sbemu.QueueOptions{LockDuration: lock, RequiresSession: true})

	cmd := exec.CommandContext(ctxT(t, 3*time.Minute), node, filepath.Join("jssdk", "contract.mjs"))
	cmd.Env = append(os.Environ(),
		"SBEMU_CONNECTION_STRING="+e.ConnectionString(),
		"SBEMU_QUEUE="+q,
		"SBEMU_SESSION_QUEUE="+sq,
		"SBEMU_LOCK_DURATION_MS="+strconv.FormatInt(lock.Milliseconds(), 10),
		"SBEMU_STEP_TIMEOUT_MS=20000",
		"SBEMU_DEADLETTER_REASON="+reason,
		"SBEMU_DEADLETTER_DESCRIPTION="+description,
	)
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()

	got := map[string]jsStep{}
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var s jsStep
		if err := json.Unmarshal([]byte(line), &s); err != nil || s.Step == "" {
			t.Errorf("contract.mjs printed a line that is not a step: %q", line)
			continue
		}
		got[s.Step] = s
		switch {
		case s.Skipped:
			t.Logf("JS SDK step %s: skipped", s.Step)
		case !s.OK:
			t.Errorf("JS SDK step %s failed (code %q): %s", s.Step, s.Code, s.Error)
		default:
			t.Logf("JS SDK step %s: ok", s.Step)
		}
	}
	for _, name := range jsSteps {
		if s, ok := got[name]; !ok {
			t.Errorf("JS SDK step %s: no result", name)
		} else if s.Skipped {
			t.Errorf("JS SDK step %s: skipped after an earlier failure", name)
		}
	}
	if runErr != nil {
		t.Errorf("node jssdk/contract.mjs: %v\nstderr:\n%s", runErr, stderr.String())
	}
	if t.Failed() {
		return
	}

	// What the emulator recorded: the completed messages are gone, the dead-lettered one
	// carries the reason and description the SDK sent, the expired one was dead-lettered.
	// (The SDK sends a string body as JSON in a data section.)
	qs := queueState(t, e, q)
	if qs.Active != 0 || qs.Locked != 0 || qs.Deferred != 0 || qs.Scheduled != 0 || len(qs.Messages) != 0 ||
		len(qs.LockedMessages) != 0 || len(qs.ScheduledMessages) != 0 {
		t.Errorf("queue after the contract: active %d locked %d deferred %d scheduled %d, want empty: %+v",
			qs.Active, qs.Locked, qs.Deferred, qs.Scheduled, qs)
	}
	// enqueued: 3 sent (two in one batch), js-defer, two scheduled (the cancelled one never
	// is), js-ttl, js-rad; completed counts js-rad, deleted on receipt
	if qs.Stats.Enqueued != 8 || qs.Stats.Completed != 6 || qs.Stats.DeadLettered != 2 || qs.Stats.Expired != 1 {
		t.Errorf("stats: %+v, want 8 enqueued, 6 completed, 2 dead-lettered, 1 expired", qs.Stats)
	}
	dead := map[string]sbemu.MessageState{}
	for _, m := range qs.DeadLetters {
		dead[m.MessageID] = m
	}
	if len(dead) != 2 {
		t.Fatalf("dead letters: %+v, want js-deadletter and js-ttl", qs.DeadLetters)
	}
	if m := dead["js-deadletter"]; m.DeadLetterReason != reason || m.DeadLetterDescription != description ||
		string(m.Body) != `"dead-letter me"` {
		t.Errorf("js-deadletter as the emulator recorded it: reason %q description %q body %q",
			m.DeadLetterReason, m.DeadLetterDescription, m.Body)
	}
	if m := dead["js-ttl"]; m.DeadLetterReason != "TTLExpiredException" {
		t.Errorf("js-ttl as the emulator recorded it: reason %q, want TTLExpiredException", m.DeadLetterReason)
	}
	if _, ok := dead["js-complete"]; ok {
		t.Errorf("the completed message js-complete is in the dead-letter queue")
	}
	if ss := queueState(t, e, sq); ss.Active != 0 || ss.Locked != 0 || ss.Stats.Completed != 3 || len(ss.DeadLetters) != 0 {
		t.Errorf("session queue after the contract: %+v, want its three messages completed", ss)
	}
}
