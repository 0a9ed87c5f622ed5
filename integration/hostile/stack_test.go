//go:build integration

package hostile

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/hpke"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"github.com/adwriteback/adwriteback/connector/app"
	"github.com/adwriteback/adwriteback/connector/config"
	"github.com/adwriteback/adwriteback/integration/sbemu"
	shared "github.com/adwriteback/adwriteback/integration/stack"
	"github.com/adwriteback/adwriteback/integration/testdc"
	"github.com/adwriteback/adwriteback/relay/keys"
	"github.com/adwriteback/adwriteback/relay/protocol"
)

// stack: the shared test DC, an emulator of its own, and one connector
// running in this process, fed raw bodies through azservicebus.
//
// On a Premium namespace the command queue takes messages up to 100 MB (the
// largest Service Bus allows), so a hostile body far over the connector's own
// envelope limit reaches it and must be refused by its bounded decoder. On
// Standard, Service Bus caps a message at 256 KB and refuses a larger send.
type stack struct {
	t       *testing.T
	dc      *testdc.Info
	emu     *sbemu.Emulator
	dir     string
	connKey *keys.ConnectorPrivate
	sendKey *keys.SenderPrivate
	logs    *shared.Buffer
	audits  *shared.Buffer
	done    chan error
	sb      *azservicebus.Client
	snd     *azservicebus.Sender
	// httpAddr is the connector's health/metrics listener.
	httpAddr string

	mu      sync.Mutex
	replies map[string][]byte // by correlation id (raw result envelope)
	secrets [][]byte
}

const (
	queue   = "commands"
	replyQ  = "replies"
	ctCmd   = "application/vnd.adwriteback.command+json;v=1"
	maxWait = 90 * time.Second
)

func newStack(t *testing.T, tier sbemu.Tier) *stack {
	t.Helper()
	s := &stack{t: t, dc: testdc.Ensure(t), emu: sbemu.Start(t, &sbemu.Options{Tier: tier}), dir: t.TempDir(),
		logs: &shared.Buffer{}, audits: &shared.Buffer{}, replies: map[string][]byte{}, done: make(chan error, 1)}
	s.httpAddr = shared.FreeAddr(t)
	ctx := context.Background()
	qo := sbemu.QueueOptions{LockDuration: 20 * time.Second, MaxDeliveryCount: 5}
	if tier == sbemu.TierPremium {
		qo.MaxMessageSizeInKilobytes = sbemu.PremiumMaxMaxMessageSizeKB
	}
	if err := shared.Queues(ctx, s.emu, shared.Queue{Name: queue, Options: qo}, shared.Queue{Name: replyQ}); err != nil {
		t.Fatal(err)
	}
	k, err := shared.WriteKeys(s.dir)
	if err != nil {
		t.Fatal(err)
	}
	s.connKey, s.sendKey = k.Connector, k.Sender
	if err := shared.WriteSecrets(s.dir, s.dc.ServicePass, s.emu.ConnectionString()); err != nil {
		t.Fatal(err)
	}
	p := func(n string) string { return filepath.Join(s.dir, n) }
	spec := shared.DCConfig(s.dc, s.dir)
	spec.MinLength = 12
	spec.Queue = queue
	spec.PerUser = 100
	spec.HTTPListen = s.httpAddr
	spec.LogLevel = "debug"
	if err := spec.WriteFile(p("config.yaml")); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(p("config.yaml"), os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.Build(ctx, cfg, app.Deps{Logger: slog.New(slog.NewJSONHandler(s.logs, &slog.HandlerOptions{Level: slog.LevelDebug})), AuditOut: s.audits})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	go func() { s.done <- a.Run(runCtx) }()
	t.Cleanup(func() {
		pages := s.fetchPages() // while the connector still serves them
		cancel()
		select {
		case err := <-s.done:
			if err != nil {
				t.Errorf("connector run: %v", err)
			}
		case <-time.After(time.Minute):
			t.Error("connector did not stop")
		}
		a.Close(context.Background())
		s.scanForSecrets(pages)
	})

	s.sb, err = azservicebus.NewClientFromConnectionString(s.emu.ConnectionString(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.sb.Close(context.Background()) })
	s.snd, err = s.sb.NewSender(queue, nil)
	if err != nil {
		t.Fatal(err)
	}
	rcv, err := s.sb.NewReceiverForQueue(replyQ, nil)
	if err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithCancel(ctx)
	var rwg sync.WaitGroup
	rwg.Add(1)
	go func() {
		defer rwg.Done()
		for rctx.Err() == nil {
			msgs, err := rcv.ReceiveMessages(rctx, 10, nil)
			if err != nil {
				continue
			}
			for _, m := range msgs {
				if m.CorrelationID != nil {
					s.mu.Lock()
					s.replies[*m.CorrelationID] = m.Body
					s.mu.Unlock()
				}
				_ = rcv.CompleteMessage(rctx, m, nil)
			}
		}
	}()
	t.Cleanup(func() { rcancel(); rwg.Wait(); rcv.Close(context.Background()) })
	return s
}

// secret registers plaintext for the leak scan.
func (s *stack) secret(b []byte) {
	s.mu.Lock()
	s.secrets = append(s.secrets, bytes.Clone(b))
	s.mu.Unlock()
}

// send puts a raw body on the command queue.
func (s *stack) send(msgID string, body []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ct, rt := ctCmd, replyQ
	return s.snd.SendMessage(ctx, &azservicebus.Message{MessageID: &msgID, Body: body, ContentType: &ct, ReplyTo: &rt}, nil)
}

// outcome is what became of a message: a verified result or a dead letter.
type outcome struct {
	result     *protocol.VerifiedResult
	rawResult  []byte
	deadReason string
	deadDesc   string
}

// await waits for a reply to commandID (if not empty) or a dead letter of
// msgID, whichever comes.
func (s *stack) await(t *testing.T, msgID, commandID string) outcome {
	t.Helper()
	rk, err := keys.ResultKeysOf(s.connKey.Public())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(maxWait)
	var snapErr error // the last failed snapshot: reported, never taken for "not yet"
	for time.Now().Before(deadline) {
		if commandID != "" {
			s.mu.Lock()
			raw, ok := s.replies[commandID]
			s.mu.Unlock()
			if ok {
				r, err := protocol.VerifyResult(raw, rk)
				if err != nil {
					t.Fatalf("reply to %s does not verify: %v", commandID, err)
				}
				return outcome{result: r, rawResult: raw}
			}
		}
		st, err := s.emu.Queue(context.Background(), queue)
		snapErr = err
		if err == nil {
			for _, m := range st.DeadLetters {
				if m.MessageID == msgID {
					return outcome{deadReason: m.DeadLetterReason, deadDesc: m.DeadLetterDescription}
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if snapErr != nil {
		t.Logf("the last queue snapshot failed: %v", snapErr)
	}
	st, err := s.emu.Queue(context.Background(), queue)
	if err != nil {
		t.Logf("queue snapshot: %v", err)
	} else {
		t.Logf("queue: %d active, %d locked, %d dead-lettered, stats %+v", st.Active, st.Locked, st.DeadLettered, st.Stats)
	}
	t.Logf("connector log (tail): %s", tailString(s.logs.String(), 3000))
	t.Fatalf("no reply and no dead letter for message %s (command %q) within %s", msgID, commandID, maxWait)
	return outcome{}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// signRaw signs any payload bytes as a command envelope with key k.
func signRaw(payload []byte, k protocol.SigningKey) []byte {
	env := protocol.Envelope{V: protocol.Version, Type: protocol.TypeCommand, KID: k.KID,
		Sig: b64(ed25519.Sign(k.Key, protocol.SigningInput(protocol.TypeCommand, payload))), Payload: b64(payload)}
	b, err := json.Marshal(env)
	if err != nil {
		panic(err)
	}
	return b
}

// command is a fresh, valid, unsealed reset command for ref.
func command(ref protocol.UserRef) *protocol.Command {
	now := time.Now().UTC().Truncate(time.Millisecond)
	return &protocol.Command{V: protocol.Version, ID: newID(), Op: protocol.OpReset, User: ref,
		Actor: protocol.Actor{Kind: protocol.ActorSelfService, ID: "hostile"}, IssuedAt: protocol.At(now), ExpiresAt: protocol.At(now.Add(5 * time.Minute))}
}

var idSeq struct {
	sync.Mutex
	n int
}

func newID() string {
	idSeq.Lock()
	defer idSeq.Unlock()
	idSeq.n++
	return fmt.Sprintf("hostile-%d-%d", time.Now().UnixNano(), idSeq.n)
}

// sealRaw seals arbitrary password bytes exactly as protocol.Seal does
// (same HPKE info binding and padding) but without its validation, to
// deliver passwords a correct sender would refuse to send.
func sealRaw(c *protocol.Command, to *keys.ConnectorPublic, pw []byte) {
	kind, value := c.User.Kind()
	info := []byte("adwriteback-v1-secret\x00")
	for _, f := range []string{c.ID, string(c.Op), kind, value, c.User.Domain} {
		info = binary.BigEndian.AppendUint16(info, uint16(len(f)))
		info = append(info, f...)
	}
	enc, snd, err := hpke.NewSender(to.HPKE, hpke.HKDFSHA256(), hpke.AES256GCM(), info)
	if err != nil {
		panic(err)
	}
	buf := make([]byte, max(protocol.MaxPasswordBytes, len(pw)))
	copy(buf, pw)
	ct, err := snd.Seal([]byte("new"), buf)
	if err != nil {
		panic(err)
	}
	c.Secret = &protocol.Sealed{KID: to.KID, KEM: to.HPKE.KEM().ID(), KDF: protocol.KDFHKDFSHA256, AEAD: protocol.AEADAES256GCM,
		Enc: b64(enc), New: b64(ct)}
}

// signed seals pw (validated, via protocol.Seal) and signs c without
// validating c, so hostile user references reach the connector.
func (s *stack) signed(c *protocol.Command, pw string) []byte {
	s.t.Helper()
	sec := protocol.SecretFromString(pw)
	s.secret([]byte(pw))
	if err := protocol.Seal(c, s.connKey.Public().SealKey(), protocol.DefaultSuite(), sec, protocol.Secret{}); err != nil {
		s.t.Fatal(err)
	}
	payload, err := json.Marshal(c)
	if err != nil {
		s.t.Fatal(err)
	}
	return signRaw(payload, s.sendKey.SigningKey())
}

// serving checks the connector is up and still applies a valid command:
// a fresh user's password is reset and binds.
func (s *stack) serving(t *testing.T, pw string) {
	t.Helper()
	select {
	case err := <-s.done:
		t.Fatalf("the connector stopped: %v", err)
	default:
	}
	u := testdc.NewUser(t, s.dc, "")
	c := command(protocol.UserRef{SAM: u.SAM})
	if err := s.send(newID(), s.signed(c, pw)); err != nil {
		t.Fatal(err)
	}
	o := s.await(t, "-", c.ID)
	if o.result == nil || o.result.Code != protocol.CodeSucceeded {
		t.Fatalf("a valid command: %+v", o)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := testdc.Bind(ctx, s.dc, u.DN, pw)
	if err != nil {
		t.Fatalf("bind with the new password: %v", err)
	}
	conn.Close()
}

// fetchPages reads the connector's status and metrics pages for the leak
// scan; a page it cannot read fails the test (the scan would be incomplete).
func (s *stack) fetchPages() []byte {
	var b bytes.Buffer
	for _, page := range []string{"/metrics", "/status", "/readyz"} {
		p, err := shared.HTTPGet("http://" + s.httpAddr + page)
		if err != nil {
			s.t.Errorf("leak scan: %s not scanned: %v", page, err)
			continue
		}
		b.Write(p)
	}
	return b.Bytes()
}

// scanForSecrets fails the test if a password it sent appears in any log
// line, audit record, result, dead-letter text or the pages given.
func (s *stack) scanForSecrets(pages []byte) {
	var hay bytes.Buffer
	hay.WriteString(s.logs.String())
	hay.WriteString(s.audits.String())
	s.mu.Lock()
	for _, r := range s.replies {
		hay.Write(r)
		if env := decodePayload(r); env != nil {
			hay.Write(env)
		}
	}
	secrets := s.secrets
	s.mu.Unlock()
	if st, err := s.emu.Queue(context.Background(), queue); err == nil {
		for _, m := range st.DeadLetters {
			hay.WriteString(m.DeadLetterReason)
			hay.WriteString(m.DeadLetterDescription)
		}
	} else {
		s.t.Errorf("leak scan: dead letters not scanned: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(s.dir, "audit.jsonl")); err == nil {
		hay.Write(b)
	}
	hay.Write(pages)
	if hay.Len() == 0 {
		s.t.Error("leak scan: nothing to scan")
	}
	all := hay.Bytes()
	for _, pw := range secrets {
		if len(pw) >= 6 && bytes.Contains(all, pw) {
			s.t.Errorf("leak scan: a password sent by the test appears in logs, audit, results or dead letters")
		}
	}
}

// decodePayload returns the decoded payload of a result envelope.
func decodePayload(raw []byte) []byte {
	var env protocol.Envelope
	if json.Unmarshal(raw, &env) != nil {
		return nil
	}
	b, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		return nil
	}
	return b
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func tailString(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
