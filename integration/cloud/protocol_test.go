//go:build integration

// Package cloud tests the connector as its other user, the cloud SSPR
// team, meets it: a sender written from relay/protocol/PROTOCOL.md alone,
// in a small table-driven client built on the Service Bus SDK
// (azservicebus) and the protocol's primitives (SigningInput, Seal, the
// key types), never relay/sender's Send or Do, talks to a running
// connector through the real queue (integration/stack: the Service Bus
// emulator and the test DC). Each test checks that what the sender gets
// is exactly what the document promises: a signed result with the
// documented code, version and message properties (§6.1, §9.2), or a
// dead letter with the documented reason and no result.
package cloud

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/google/uuid"

	"github.com/adwriteback/adwriteback/integration/sbemu"
	"github.com/adwriteback/adwriteback/integration/stack"
	"github.com/adwriteback/adwriteback/integration/testdc"
	"github.com/adwriteback/adwriteback/relay/keys"
	"github.com/adwriteback/adwriteback/relay/protocol"
)

// The content types of PROTOCOL.md §9, as a second implementer copies
// them from the document.
const (
	commandType = "application/vnd.adwriteback.command+json;v=1"
	resultType  = "application/vnd.adwriteback.result+json;v=1"
)

// docClient is the sender of the document: it builds payloads as JSON
// text, signs and seals them as §3 and §5 say, sends them as §9.1 says,
// and reads results as §9.2 says.
type docClient struct {
	t      *testing.T
	env    *stack.Env
	signer protocol.SigningKey
	sealTo *keys.ConnectorPublic
	trust  protocol.VerifyKeys
	snd    *azservicebus.Sender

	mu      sync.Mutex
	results map[string][]*azservicebus.ReceivedMessage // by CorrelationId
}

func newDocClient(t *testing.T, env *stack.Env) *docClient {
	t.Helper()
	sb, err := azservicebus.NewClientFromConnectionString(env.ConnectionString, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close(context.Background()) })
	c := &docClient{t: t, env: env, signer: env.Keys.Sender.SigningKey(), sealTo: env.Keys.Connector.Public(),
		results: map[string][]*azservicebus.ReceivedMessage{}}
	c.trust = protocol.VerifyKeys{c.sealTo.KID: c.sealTo.Verify}
	if c.snd, err = sb.NewSender(env.Queue, nil); err != nil {
		t.Fatal(err)
	}
	rcv, err := sb.NewReceiverForQueue(env.Replies, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { c.receive(ctx, rcv) })
	t.Cleanup(func() { cancel(); wg.Wait(); rcv.Close(context.Background()) })
	// The results it reads are completed, so the queue scan never sees
	// them: the leak scan reads them here.
	env.AddSurface("document client results", c.texts)
	return c
}

// texts are the result bodies received, for the leak scan.
func (c *docClient) texts() ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b bytes.Buffer
	for _, ms := range c.results {
		for _, m := range ms {
			b.Write(m.Body)
			b.WriteByte('\n')
		}
	}
	return b.Bytes(), nil
}

func (c *docClient) receive(ctx context.Context, rcv *azservicebus.Receiver) {
	stack.ReceiveReplies(ctx, rcv, func(m *azservicebus.ReceivedMessage) {
		c.mu.Lock()
		c.results[*m.CorrelationID] = append(c.results[*m.CorrelationID], m)
		c.mu.Unlock()
	})
}

// payload is a command payload as JSON text (§4), its members in the
// order a hand-written sender might choose.
type payload struct {
	v                  string // the JSON text of v
	id, op, user       string
	issued, expires    time.Time
	secret, extra, act string
}

func (p payload) text() string {
	b := new(strings.Builder)
	fmt.Fprintf(b, `{"v":%s,"id":%q,"op":%q,"user":%s,"actor":%s,"issuedAt":%q,"expiresAt":%q`, p.v, p.id, p.op, p.user,
		p.actorText(), ts(p.issued), ts(p.expires))
	if p.secret != "" {
		b.WriteString(`,"secret":` + p.secret)
	}
	b.WriteString(p.extra + "}")
	return b.String()
}

func (p payload) actorText() string {
	if p.act != "" {
		return p.act
	}
	return `{"kind":"admin","id":"cloud-test"}`
}

func ts(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// newPayload is a valid v2 command of op for the account sam, issued now
// and valid five minutes.
func newPayload(op, sam string) payload {
	now := time.Now().UTC().Truncate(time.Millisecond)
	return payload{v: "2", id: uuid.NewString(), op: op, user: fmt.Sprintf(`{"sam":%q}`, sam), issued: now.Add(-time.Second),
		expires: now.Add(5 * time.Minute)}
}

// seal seals plaintexts to the connector key as §5 says (info from the
// document's rule, one HPKE context, sequence 0 "new", 1 "old") and sets
// p.secret; plaintexts are taken as given (padding is the caller's).
func (c *docClient) seal(p *payload, user [2]string, plain ...[]byte) {
	c.t.Helper()
	info := []byte("adwriteback-v1-secret\x00")
	for _, s := range []string{p.id, p.op, user[0], user[1], ""} {
		info = binary.BigEndian.AppendUint16(info, uint16(len(s)))
		info = append(info, s...)
	}
	enc, s, err := hpke.NewSender(c.sealTo.HPKE, hpke.HKDFSHA256(), hpke.AES256GCM(), info)
	if err != nil {
		c.t.Fatal(err)
	}
	cts := make([]string, len(plain))
	for i, pt := range plain {
		ct, err := s.Seal([]byte([]string{"new", "old"}[i]), pt)
		if err != nil {
			c.t.Fatal(err)
		}
		cts[i] = b64(ct)
	}
	p.secret = fmt.Sprintf(`{"kid":%q,"kem":%d,"kdf":1,"aead":2,"enc":%q,"new":%q}`, c.sealTo.KID, c.sealTo.HPKE.KEM().ID(), b64(enc), cts[0])
}

// padded is a password's plaintext padded with zero bytes to 768 (§5).
func padded(pw string) []byte {
	b := make([]byte, 768)
	copy(b, pw)
	return b
}

// envelope signs payload bytes as §3 says and writes the envelope.
func (c *docClient) envelope(v string, payloadText string) []byte {
	sig := ed25519.Sign(c.signer.Key, protocol.SigningInput("command", []byte(payloadText)))
	return []byte(fmt.Sprintf(`{"v":%s,"type":"command","kid":%q,"sig":%q,"payload":%q}`, v, c.signer.KID, b64(sig), b64([]byte(payloadText))))
}

// send puts body on the command queue as §9.1 says: MessageId, content
// type, time-to-live; no ReplyTo.
func (c *docClient) send(msgID string, body []byte) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ct, ttl := commandType, 5*time.Minute
	if err := c.snd.SendMessage(ctx, &azservicebus.Message{MessageID: &msgID, Body: body, ContentType: &ct, TimeToLive: &ttl}, nil); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// outcome is what became of one message.
type outcome struct {
	result     *protocol.VerifiedResult
	raw        *azservicebus.ReceivedMessage
	deadReason string
}

// await waits for a result to commandID or a dead letter of msgID. A
// result must verify and carry §9.2's message properties.
func (c *docClient) await(msgID, commandID string) outcome {
	c.t.Helper()
	var out outcome
	stack.WaitFor(c.t, 90*time.Second, "a result or a dead letter of "+msgID, func() bool {
		c.mu.Lock()
		ms := c.results[commandID]
		c.mu.Unlock()
		if len(ms) > 0 {
			out = outcome{raw: ms[0], result: c.verify(ms[0], commandID)}
			return true
		}
		st, err := c.env.Emu.Queue(context.Background(), c.env.Queue)
		if err != nil {
			return false
		}
		for _, m := range st.DeadLetters {
			if m.MessageID == msgID {
				out = outcome{deadReason: m.DeadLetterReason}
				return true
			}
		}
		return false
	})
	return out
}

// verify checks a result message as §7 and §9.2 say.
func (c *docClient) verify(m *azservicebus.ReceivedMessage, commandID string) *protocol.VerifiedResult {
	c.t.Helper()
	sum := sha256.Sum256(m.Body)
	switch {
	case m.MessageID != hex.EncodeToString(sum[:]):
		c.t.Errorf("result MessageId %q, want the hex SHA-256 of the body", m.MessageID)
	case m.ContentType == nil || *m.ContentType != resultType:
		c.t.Errorf("result content type %v", m.ContentType)
	case m.TimeToLive == nil || *m.TimeToLive != 10*time.Minute:
		c.t.Errorf("result TTL %v, want results.ttl (10m)", m.TimeToLive)
	}
	r, err := protocol.VerifyResult(m.Body, c.trust)
	if err != nil {
		c.t.Fatalf("result to %s does not verify: %v", commandID, err)
	}
	if r.CommandID != commandID {
		c.t.Fatalf("result names %s, want %s", r.CommandID, commandID)
	}
	return r
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// want is what the document promises for a case: a result (code, in
// version v) or a dead letter (reason).
type want struct {
	code       protocol.ResultCode
	v          int
	deadLetter string
}

func result(code protocol.ResultCode, v int) want { return want{code: code, v: v} }

var deadInvalid = want{deadLetter: "invalid_command"}

// cloudCase is one message the document-only sender puts on the queue.
type cloudCase struct {
	name string
	// build returns the message id, body and the command id a result
	// would answer ("" when none can).
	build func(c *docClient) (msgID string, body []byte, commandID string)
	want  want
}

// signed builds a signed command from p, carried under its own id.
func signed(p payload) func(*docClient) (string, []byte, string) {
	return func(c *docClient) (string, []byte, string) { return p.id, c.envelope(p.v, p.text()), p.id }
}

// envEdit builds a valid envelope of p, then edits its text.
func envEdit(p payload, edit func(env string) string) func(*docClient) (string, []byte, string) {
	return func(c *docClient) (string, []byte, string) {
		return p.id, []byte(edit(string(c.envelope(p.v, p.text())))), p.id
	}
}

// raw builds a signed command from payload text as given.
func raw(id, v, text string) func(*docClient) (string, []byte, string) {
	return func(c *docClient) (string, []byte, string) { return id, c.envelope(v, text), id }
}

// TestCloudEveryFailureKind sends a valid command and one message for
// every failure kind of PROTOCOL.md §6.1 through the real queue, and
// checks the sender gets exactly what the document's table says.
func TestCloudEveryFailureKind(t *testing.T) {
	env := stack.New(t)
	env.Start("a")
	user := testdc.NewUser(t, env.DC, "")
	c := newDocClient(t, env)
	other, err := keys.GenerateSender(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	otherConn, err := keys.GenerateConnector(keys.DefaultKEM, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	unlock := func() payload { return newPayload("unlock", user.SAM) }
	text := func(p payload, old, new string) func(*docClient) (string, []byte, string) {
		s := p.text()
		if !strings.Contains(s, old) {
			t.Fatalf("%q not in %s", old, s)
		}
		return raw(p.id, p.v, strings.Replace(s, old, new, 1))
	}
	sealed := func(op string, plain ...[]byte) payload {
		p := newPayload(op, user.SAM)
		c.seal(&p, [2]string{"sam", user.SAM}, plain...)
		return p
	}
	env.SecretBytes([]byte("Whatever!Pw.1"))
	env.SecretBytes([]byte("Whatever!Pw.2"))
	p := unlock()
	cases := []cloudCase{
		{"valid unlock", signed(unlock()), result(protocol.CodeSucceeded, 2)},
		{"valid check of a short password", signed(sealed("check", padded("a"))), result(protocol.CodePolicyViolation, 2)},
		{"valid v1 unlock", func(c *docClient) (string, []byte, string) {
			p := unlock()
			p.v = "1"
			return p.id, c.envelope("1", p.text()), p.id
		}, result(protocol.CodeSucceeded, 1)},
		{"too large", envEdit(p, func(e string) string { return e[:len(e)-1] + strings.Repeat(" ", 70000) + "}" }), deadInvalid},
		{"envelope trailing data", envEdit(unlock(), func(e string) string { return e + "{}" }), deadInvalid},
		{"envelope unknown member", envEdit(unlock(), func(e string) string { return e[:len(e)-1] + `,"replyTo":"x"}` }), deadInvalid},
		{"envelope v 3", envEdit(unlock(), func(e string) string { return strings.Replace(e, `"v":2`, `"v":3`, 1) }), deadInvalid},
		{"envelope v 2.0", envEdit(unlock(), func(e string) string { return strings.Replace(e, `"v":2`, `"v":2.0`, 1) }), deadInvalid},
		{"unsigned", envEdit(unlock(), func(e string) string {
			i := strings.Index(e, `"sig":"`) + len(`"sig":"`)
			return e[:i] + e[i+88:]
		}), deadInvalid},
		{"unknown signer", func(c *docClient) (string, []byte, string) {
			p := unlock()
			sig := ed25519.Sign(other.Sign, protocol.SigningInput("command", []byte(p.text())))
			return p.id, []byte(fmt.Sprintf(`{"v":2,"type":"command","kid":%q,"sig":%q,"payload":%q}`, other.KID, b64(sig), b64([]byte(p.text())))), p.id
		}, deadInvalid},
		{"bad signature", envEdit(unlock(), func(e string) string {
			i := strings.Index(e, `"sig":"`) + len(`"sig":"`)
			flip := map[byte]byte{'A': 'B'}[e[i]]
			if flip == 0 {
				flip = 'A'
			}
			return e[:i] + string(flip) + e[i+1:]
		}), deadInvalid},
		{"signed payload with an unknown member", text(unlock(), `"op":`, `"replyTo":"x","op":`), deadInvalid},
		{"signed payload with a lone surrogate", text(unlock(), `"cloud-test"`, `"cloud\ud800test"`), deadInvalid},
		{"signed payload with null", text(unlock(), `"sam":`, `"domain":null,"sam":`), deadInvalid},
		{"signed payload without an id", func(c *docClient) (string, []byte, string) {
			p := unlock()
			s := strings.Replace(p.text(), `"id":"`+p.id+`",`, "", 1)
			return p.id, c.envelope("2", s), ""
		}, deadInvalid},
		{"bad timestamp", text(unlock(), `Z","expiresAt"`, `+00:00","expiresAt"`), result(protocol.CodeInvalidCommand, 1)},
		{"payload v 2.0", text(unlock(), `{"v":2,`, `{"v":2.0,`), result(protocol.CodeInvalidCommand, 1)},
		{"control character in actor.id", text(unlock(), `"cloud-test"`, `"cloud\u0085test"`), result(protocol.CodeInvalidCommand, 1)},
		{"lifetime over 1 h", func(c *docClient) (string, []byte, string) {
			p := unlock()
			p.expires = p.issued.Add(time.Hour + time.Second)
			return p.id, c.envelope("2", p.text()), p.id
		}, result(protocol.CodeInvalidCommand, 2)},
		{"message id differs", func(c *docClient) (string, []byte, string) {
			p := unlock()
			return p.id + "-copy", c.envelope("2", p.text()), p.id
		}, want{deadLetter: "message_id_mismatch"}},
		{"expired", func(c *docClient) (string, []byte, string) {
			p := unlock()
			p.issued, p.expires = p.issued.Add(-time.Hour), p.issued.Add(-50*time.Minute)
			return p.id, c.envelope("2", p.text()), p.id
		}, result(protocol.CodeExpired, 2)},
		{"issued in the future", func(c *docClient) (string, []byte, string) {
			p := unlock()
			p.issued, p.expires = p.issued.Add(10*time.Minute), p.issued.Add(15*time.Minute)
			return p.id, c.envelope("2", p.text()), p.id
		}, result(protocol.CodeExpired, 2)},
		{"sealed to another connector key", func(c *docClient) (string, []byte, string) {
			p := newPayload("check", user.SAM)
			saved := c.sealTo
			c.sealTo = otherConn.Public()
			c.seal(&p, [2]string{"sam", user.SAM}, padded("Whatever!Pw.1"))
			c.sealTo = saved
			return p.id, c.envelope("2", p.text()), p.id
		}, result(protocol.CodeInvalidCommand, 2)},
		{"secret moved to another id", func(c *docClient) (string, []byte, string) {
			p := sealed("check", padded("Whatever!Pw.2"))
			p.id = uuid.NewString()
			return p.id, c.envelope("2", p.text()), p.id
		}, result(protocol.CodeInvalidCommand, 2)},
		{"password with a NUL", signed(sealed("check", padded("a\x00b"))), result(protocol.CodeInvalidCommand, 2)},
		{"amqp-value body", func(c *docClient) (string, []byte, string) { return "amqp-value-" + uuid.NewString(), nil, "" }, deadInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c.t = t
			defer func() { c.t = nil }()
			msgID, body, commandID := tc.build(c)
			if body == nil {
				c.sendAMQPValue(msgID)
			} else {
				c.send(msgID, body)
			}
			checkOutcome(t, c.await(msgID, commandID), tc.want)
		})
	}
	t.Run("replay and conflict", func(t *testing.T) {
		c.t = t
		p := unlock()
		first := c.envelope("2", p.text())
		c.send(p.id, first)
		o := c.await(p.id, p.id)
		checkOutcome(t, o, result(protocol.CodeSucceeded, 2))
		// The same envelope again: the first result, byte for byte (the
		// same MessageId).
		c.forget(p.id)
		c.send(p.id, first)
		again := c.await(p.id, p.id)
		if string(again.raw.Body) != string(o.raw.Body) || again.raw.MessageID != o.raw.MessageID {
			t.Fatal("a replay was not answered with the first result")
		}
		// Other bytes under the same id: invalid_command.
		c.forget(p.id)
		p.act = `{"kind":"self_service","id":"cloud-test"}`
		c.send(p.id, c.envelope("2", p.text()))
		checkOutcome(t, c.await(p.id, p.id), result(protocol.CodeInvalidCommand, 2))
	})
}

// sendAMQPValue sends a message whose body is an amqp-value section.
func (c *docClient) sendAMQPValue(msgID string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m := &azservicebus.AMQPAnnotatedMessage{Body: azservicebus.AMQPAnnotatedMessageBody{Value: `{"v":2}`},
		Properties: &azservicebus.AMQPAnnotatedMessageProperties{MessageID: msgID}}
	if err := c.snd.SendAMQPAnnotatedMessage(ctx, m, nil); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

func (c *docClient) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.results, id)
}

func checkOutcome(t *testing.T, o outcome, w want) {
	t.Helper()
	switch {
	case w.deadLetter != "":
		if o.result != nil || o.deadReason != w.deadLetter {
			t.Fatalf("got result %v / dead letter %q, want dead letter %q and no result", code(o), o.deadReason, w.deadLetter)
		}
	case o.result == nil:
		t.Fatalf("dead-lettered %q, want a result %s", o.deadReason, w.code)
	case o.result.Code != w.code || o.result.V != w.v:
		t.Fatalf("result %s v%d (%s), want %s v%d", o.result.Code, o.result.V, o.result.Message, w.code, w.v)
	case w.v == 2 && o.result.CommandDigest == "":
		t.Fatal("a version 2 result without commandDigest")
	case w.v == 1 && o.result.CommandDigest != "":
		t.Fatal("a version 1 result with commandDigest")
	}
}

func code(o outcome) string {
	if o.result == nil {
		return "none"
	}
	return string(o.result.Code)
}

// TestCloudUndeliverableResult: with the reply queue gone, a command is
// not looped until the queue's MaxDeliveryCount: once its delivery count
// reaches limits.max_attempts it is dead-lettered result_undeliverable
// (PROTOCOL.md §9.4), and the audit record says so.
func TestCloudUndeliverableResult(t *testing.T) {
	env := stack.New(t, stack.WithCommandQueue("commands", sbemu.QueueOptions{LockDuration: 10 * time.Second, MaxDeliveryCount: 10}))
	env.Start("a", stack.Configure(func(s *stack.ConfigSpec) { s.ReplyQueue, s.MaxAttempts = "gone", 2 }))
	user := testdc.NewUser(t, env.DC, "")
	c := newDocClient(t, env)
	p := newPayload("unlock", user.SAM)
	c.send(p.id, c.envelope("2", p.text()))
	o := c.await(p.id, p.id)
	if o.deadReason != "result_undeliverable" {
		t.Fatalf("dead letter %q, result %s; want dead letter result_undeliverable", o.deadReason, code(o))
	}
	st, err := env.Emu.Queue(context.Background(), env.Queue)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range st.DeadLetters {
		if m.MessageID == p.id && m.DeliveryCount > 3 {
			t.Fatalf("dead-lettered after %d deliveries; max_attempts is 2", m.DeliveryCount)
		}
	}
	stack.WaitFor(t, 30*time.Second, "the audit record", func() bool {
		for _, l := range env.AuditLines(p.id) {
			if strings.Contains(l, `"settlement":"dead_lettered"`) && strings.Contains(l, "result undeliverable") {
				return true
			}
		}
		return false
	})
}
