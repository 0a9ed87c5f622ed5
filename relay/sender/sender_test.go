package sender_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/adwriteback/adwriteback/relay/keys"
	"github.com/adwriteback/adwriteback/relay/protocol"
	"github.com/adwriteback/adwriteback/relay/sender"
)

var now = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

type world struct {
	conn, conn2 *keys.ConnectorPrivate
	snd         *keys.SenderPrivate
	tr          *sender.Memory
	client      *sender.Client
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{tr: sender.NewMemory()}
	var err error
	if w.conn, err = keys.GenerateConnector(0, now); err != nil {
		t.Fatal(err)
	}
	if w.conn2, err = keys.GenerateConnector(0, now); err != nil {
		t.Fatal(err)
	}
	if w.snd, err = keys.GenerateSender(now); err != nil {
		t.Fatal(err)
	}
	cfg, err := sender.ConfigFromKeys(w.snd, w.conn.Public(), w.conn2.Public())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Transport = w.tr
	cfg.Clock = clockwork.NewFakeClockAt(now)
	if w.client, err = sender.New(cfg); err != nil {
		t.Fatal(err)
	}
	return w
}

// fakeConnector answers commands from the transport the way the real
// connector will: verify and open, then a signed result. What it opened is
// reported on the seen channel.
func (w *world) fakeConnector(ctx context.Context, t *testing.T, seen chan<- string) {
	ok, _ := keys.OpenKeysOf(w.conn)
	vk, _ := keys.VerifyKeysOf(w.snd.Public())
	rcv := &protocol.Receiver{Senders: vk, Keys: ok, Replay: protocol.NewMemoryReplayCache(nil, 0),
		Clock: clockwork.NewFakeClockAt(now.Add(time.Second))}
	for {
		env, err := w.tr.Receive(ctx)
		if err != nil {
			return
		}
		d, _ := protocol.EnvelopeDigest(env.Body)
		res := protocol.Result{V: 2, CommandID: env.ID, CommandDigest: protocol.DigestString(d),
			ReceivedAt: protocol.At(now), CompletedAt: protocol.At(now.Add(time.Second))}
		got, err := rcv.Receive(ctx, env.Body, env.ID)
		if err != nil {
			res.Code = protocol.CodeOf(err)
		} else {
			res.Code = protocol.CodeSucceeded
			res.DC = "dc1.corp.example.com"
			if got.Op == protocol.OpDescribe {
				res.Policy = &protocol.Policy{MinLength: 7, MaxLength: 256, Source: protocol.SourceDomain}
			}
			seen <- string(got.Secrets.New.Bytes())
			got.Secrets.Zero()
		}
		res.Message = res.Code.DefaultMessage()
		body, err := protocol.SignResult(&res, w.conn.SigningKey())
		if err != nil {
			t.Error(err)
			return
		}
		if err := w.tr.Reply(ctx, sender.Envelope{ID: env.ID, Body: body, ContentType: sender.ContentTypeResult}); err != nil {
			t.Error(err)
			return
		}
	}
}

func TestDoEndToEnd(t *testing.T) {
	w := newWorld(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	seen := make(chan string, 10)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); w.fakeConnector(ctx, t, seen) }()
	defer func() { cancel(); wg.Wait() }()

	res, err := w.client.Do(ctx, sender.Request{
		Op: protocol.OpReset, User: protocol.UserRef{UPN: "ada@corp.example.com"},
		Options:     protocol.Options{MustChange: true},
		Actor:       protocol.Actor{Kind: protocol.ActorSelfService, ID: "s1"},
		NewPassword: protocol.SecretFromString("Sekrit-Passw0rd!"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Code != protocol.CodeSucceeded || res.SignerKID != w.conn.KID || res.DC != "dc1.corp.example.com" {
		t.Fatalf("result %+v", res.Result)
	}
	if got := <-seen; got != "Sekrit-Passw0rd!" {
		t.Fatal("connector opened a different password")
	}

	// An unlock, which carries no password.
	res, err = w.client.Do(ctx, sender.Request{Op: protocol.OpUnlock, User: protocol.UserRef{SAM: "ada"},
		Actor: protocol.Actor{Kind: protocol.ActorAdmin, ID: "helpdesk"}})
	if err != nil || res.Code != protocol.CodeSucceeded {
		t.Fatalf("unlock: %v %+v", err, res)
	}
	<-seen

	// A describe carries no password either; its result the policy.
	res, err = w.client.Do(ctx, sender.Request{Op: protocol.OpDescribe, User: protocol.UserRef{SAM: "ada"},
		Actor: protocol.Actor{Kind: protocol.ActorSelfService, ID: "s1"}})
	if err != nil || res.Code != protocol.CodeSucceeded || res.Policy == nil || res.Policy.MinLength != 7 {
		t.Fatalf("describe: %v %+v", err, res)
	}
	if got := <-seen; got != "" {
		t.Fatal("a describe opened a password")
	}

	// A sender the connector does not trust gets a signed invalid_command.
	stranger, _ := keys.GenerateSender(now)
	cfg, _ := sender.ConfigFromKeys(stranger, w.conn.Public())
	cfg.Transport = w.tr
	c2, err := sender.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	res, err = c2.Do(ctx, sender.Request{Op: protocol.OpUnlock, User: protocol.UserRef{SAM: "ada"},
		Actor: protocol.Actor{Kind: protocol.ActorAdmin, ID: "helpdesk"}})
	if err != nil || res.Code != protocol.CodeInvalidCommand {
		t.Fatalf("untrusted sender: %v %+v", err, res)
	}
}

func TestBuildProducesVerifiableCommand(t *testing.T) {
	w := newWorld(t)
	ids := map[string]bool{}
	for range 3 {
		p, err := w.client.Build(sender.Request{
			Op: protocol.OpChange, User: protocol.UserRef{SAM: "ada"},
			Actor:       protocol.Actor{Kind: protocol.ActorSelfService, ID: "s"},
			NewPassword: protocol.SecretFromString("new-Passw0rd!"), OldPassword: protocol.SecretFromString("old-Passw0rd!"),
		})
		if err != nil {
			t.Fatal(err)
		}
		if ids[p.Command.ID] || len(p.Command.ID) != 36 {
			t.Fatalf("id %q", p.Command.ID)
		}
		ids[p.Command.ID] = true
		if p.Envelope.ID != p.Command.ID || p.Envelope.ContentType != sender.ContentTypeCommand ||
			!p.Envelope.ExpiresAt.Equal(now.Add(sender.DefaultTTL)) || p.Command.Secret.KID != w.conn.KID {
			t.Fatalf("envelope %+v", p.Envelope)
		}
		vk, _ := keys.VerifyKeysOf(w.snd.Public())
		v, err := protocol.VerifyCommand(p.Envelope.Body, vk)
		if err != nil {
			t.Fatal(err)
		}
		ok, _ := keys.OpenKeysOf(w.conn)
		s, err := v.Open(ok)
		if err != nil || string(s.Old.Bytes()) != "old-Passw0rd!" {
			t.Fatalf("open: %v", err)
		}
	}
}

func TestBuildRefuses(t *testing.T) {
	w := newWorld(t)
	base := sender.Request{Op: protocol.OpReset, User: protocol.UserRef{SAM: "ada"},
		Actor: protocol.Actor{Kind: protocol.ActorAdmin, ID: "a"}, NewPassword: protocol.SecretFromString("pw-123456789")}
	cases := map[string]func(r *sender.Request){
		"no-password":        func(r *sender.Request) { r.NewPassword = protocol.Secret{} },
		"password-on-unlock": func(r *sender.Request) { r.Op = protocol.OpUnlock },
		"password-describe":  func(r *sender.Request) { r.Op = protocol.OpDescribe },
		"bad-user":           func(r *sender.Request) { r.User = protocol.UserRef{} },
		"bad-op":             func(r *sender.Request) { r.Op = "nuke" },
		"bad-id":             func(r *sender.Request) { r.ID = "has space" },
		"change-no-old":      func(r *sender.Request) { r.Op = protocol.OpChange },
		"negative-ttl":       func(r *sender.Request) { r.TTL = -time.Minute },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			r := base
			mutate(&r)
			if _, err := w.client.Build(r); err == nil {
				t.Fatal("built an invalid command")
			} else if errors.Is(err, protocol.ErrBadSecret) && name != "no-password" && name != "change-no-old" {
				t.Fatalf("unexpected kind: %v", err)
			}
		})
	}
}

func TestAwaitRejectsBadResults(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	p := &sender.Prepared{Command: protocol.Command{ID: "cmd-1"}, Digest: [32]byte{1}}
	res := protocol.Result{V: 2, CommandID: "cmd-1", CommandDigest: protocol.DigestString(p.Digest), Code: protocol.CodeSucceeded,
		Message: "ok", ReceivedAt: protocol.At(now), CompletedAt: protocol.At(now)}
	// Signed by a connector key the sender does not know.
	stranger, _ := keys.GenerateConnector(0, now)
	body, _ := protocol.SignResult(&res, stranger.SigningKey())
	w.tr.Reply(ctx, sender.Envelope{ID: "cmd-1", Body: body})
	if _, err := w.client.Await(ctx, p); !errors.Is(err, protocol.ErrUnknownSigner) {
		t.Fatalf("stranger: %v", err)
	}
	// Signed by the second (rotated-in) connector key: accepted.
	body, _ = protocol.SignResult(&res, w.conn2.SigningKey())
	w.tr.Reply(ctx, sender.Envelope{ID: "cmd-1", Body: body})
	if r, err := w.client.Await(ctx, p); err != nil || r.SignerKID != w.conn2.KID {
		t.Fatalf("rotated key: %v", err)
	}
	// A genuine result for another command delivered under this id.
	res.CommandID = "cmd-2"
	body, _ = protocol.SignResult(&res, w.conn.SigningKey())
	w.tr.Reply(ctx, sender.Envelope{ID: "cmd-1", Body: body})
	if _, err := w.client.Await(ctx, p); !errors.Is(err, sender.ErrWrongCommand) {
		t.Fatalf("wrong command: %v", err)
	}
	// A genuine result for another command that reused this id (a v2
	// result names the command's digest).
	res.CommandID, res.CommandDigest = "cmd-1", protocol.DigestString([32]byte{2})
	body, _ = protocol.SignResult(&res, w.conn.SigningKey())
	w.tr.Reply(ctx, sender.Envelope{ID: "cmd-1", Body: body})
	if _, err := w.client.Await(ctx, p); !errors.Is(err, sender.ErrWrongCommand) {
		t.Fatalf("same id, other digest: %v", err)
	}
	// A v1 result (from a v1 connector) has no digest: its id is checked.
	v1 := protocol.Result{V: 1, CommandID: "cmd-1", Code: protocol.CodeSucceeded, Message: "ok",
		ReceivedAt: protocol.At(now), CompletedAt: protocol.At(now)}
	body, _ = protocol.SignResult(&v1, w.conn.SigningKey())
	w.tr.Reply(ctx, sender.Envelope{ID: "cmd-1", Body: body})
	if _, err := w.client.Await(ctx, p); err != nil {
		t.Fatalf("v1 result: %v", err)
	}
	// A policy answers a describe only, and a succeeded describe has one.
	withPolicy := res
	withPolicy.CommandDigest = protocol.DigestString(p.Digest)
	withPolicy.Policy = &protocol.Policy{MinLength: 7, MaxLength: 256, Source: protocol.SourceDomain}
	body, _ = protocol.SignResult(&withPolicy, w.conn.SigningKey())
	w.tr.Reply(ctx, sender.Envelope{ID: "cmd-1", Body: body})
	if _, err := w.client.Await(ctx, p); !errors.Is(err, protocol.ErrInvalidField) {
		t.Fatalf("policy answering a reset: %v", err)
	}
	describe := &sender.Prepared{Command: protocol.Command{ID: "cmd-1", Op: protocol.OpDescribe}, Digest: p.Digest}
	withPolicy.Policy = nil
	body, _ = protocol.SignResult(&withPolicy, w.conn.SigningKey())
	w.tr.Reply(ctx, sender.Envelope{ID: "cmd-1", Body: body})
	if _, err := w.client.Await(ctx, describe); !errors.Is(err, protocol.ErrInvalidField) {
		t.Fatalf("describe without a policy: %v", err)
	}
	// No result: Await ends with the context.
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := w.client.Await(cctx, &sender.Prepared{Command: protocol.Command{ID: "never"}}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("await: %v", err)
	}
}

func TestMemoryTransportOrderAndEarlyResult(t *testing.T) {
	tr := sender.NewMemory()
	ctx := context.Background()
	// A result that arrives before AwaitResult is still returned.
	tr.Reply(ctx, sender.Envelope{ID: "a", Body: []byte("r")})
	if env, err := tr.AwaitResult(ctx, "a"); err != nil || string(env.Body) != "r" {
		t.Fatal(err)
	}
	for _, id := range []string{"1", "2", "3"} {
		if err := tr.Send(ctx, sender.Envelope{ID: id, Body: []byte(id)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{"1", "2", "3"} {
		env, err := tr.Receive(ctx)
		if err != nil || env.ID != want {
			t.Fatalf("got %q %v", env.ID, err)
		}
	}
	if err := tr.Send(ctx, sender.Envelope{ID: "big", Body: make([]byte, protocol.MaxEnvelopeSize+1)}); err == nil {
		t.Fatal("oversized envelope sent")
	}
	if err := tr.Send(ctx, sender.Envelope{Body: []byte("x")}); err == nil {
		t.Fatal("envelope without id sent")
	}
	// A waiter blocked before the reply is woken by it.
	done := make(chan error, 1)
	go func() {
		_, err := tr.AwaitResult(ctx, "late")
		done <- err
	}()
	tr.Reply(ctx, sender.Envelope{ID: "late", Body: []byte("x")})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestNewValidatesConfig(t *testing.T) {
	_, err := sender.New(sender.Config{})
	if err == nil {
		t.Fatal("empty config accepted")
	}
	for _, want := range []string{"Signer", "SealTo", "ResultKeys"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not list %s", err, want)
		}
	}
}
