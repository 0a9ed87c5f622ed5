package servicebus

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"github.com/adwriteback/adwriteback/relay/proxy"
	"github.com/adwriteback/adwriteback/relay/transport"
)

// TestBackoffs: the reconnect backoff steps per consecutive failure and starts over after a
// success; the abandon wait is the step matching the delivery count.
func TestBackoffs(t *testing.T) {
	cfg := SourceConfig{}
	cfg.defaults()
	for _, b := range []*backoff.ExponentialBackOff{cfg.ReconnectBackoff, cfg.AbandonBackoff} {
		if b.RandomizationFactor != 0.5 || b.Multiplier != 2 || b.MaxInterval != 30*time.Second {
			t.Errorf("default backoff %+v", b)
		}
	}
	if cfg.ReconnectBackoff.InitialInterval != 250*time.Millisecond || cfg.AbandonBackoff.InitialInterval != time.Second {
		t.Errorf("default initial intervals %v, %v", cfg.ReconnectBackoff.InitialInterval, cfg.AbandonBackoff.InitialInterval)
	}

	steady := &backoff.ExponentialBackOff{InitialInterval: 100 * time.Millisecond, Multiplier: 2, MaxInterval: time.Second}
	s := &Source{cfg: SourceConfig{AbandonBackoff: steady}}
	want := []time.Duration{100, 100, 200, 400, 800, 1000, 1000}
	for n, w := range want {
		if got := s.abandonWait(uint32(n)); got != w*time.Millisecond {
			t.Errorf("abandonWait(%d) = %v, want %dms", n, got, w)
		}
	}

	l := &runLoop{backoff: *steady}
	l.backoff.Reset()
	var got []time.Duration
	for range 3 {
		got = append(got, l.backoff.NextBackOff())
	}
	l.succeeded()
	got = append(got, l.backoff.NextBackOff())
	if !slices.Equal(got, []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 100 * time.Millisecond}) {
		t.Errorf("reconnect delays %v: want doubling, then the first step again after a success", got)
	}

	jittered := SourceConfig{}
	jittered.defaults()
	s = &Source{cfg: jittered}
	for n := range uint32(100) {
		if d := s.abandonWait(n); d < 500*time.Millisecond || d > 45*time.Second+time.Nanosecond {
			t.Fatalf("abandonWait(%d) = %v out of bounds", n, d)
		}
	}
}

func TestSanitizeDeadLetterText(t *testing.T) {
	if got := SanitizeDeadLetterText("a\nb\tc\x00d", 100); got != "a b c d" {
		t.Fatalf("%q", got)
	}
	long := strings.Repeat("é", 600) // 2 bytes each
	got := SanitizeDeadLetterText(long, 1023)
	if len(got) != 1022 || !strings.HasPrefix(long, got) {
		t.Fatalf("truncation: len %d", len(got))
	}
	if got := SanitizeDeadLetterText("bad\xffutf8", 100); got != "bad?utf8" {
		t.Fatalf("%q", got)
	}
}

func TestConfigValidateListsEveryProblem(t *testing.T) {
	err := Config{Auth: AuthClientSecret, Namespace: "https://x/", Transport: "carrier-pigeon",
		Proxy: proxy.Config{URL: "socks5://u:hunter2@p"}, CustomEndpoint: "sb://x"}.Validate()
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, want := range []string{"client secret", "host name", "carrier-pigeon", "proxy.url", "must be http://host:port", "AMQP on TCP 5671 cannot go through an HTTP proxy", "custom_endpoint"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing problem %q in %v", want, err)
		}
	}
	if !errors.Is(err, ErrConfig) {
		t.Fatal("not ErrConfig")
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("the proxy password is in the error: %v", err)
	}
	if err := (Config{}).Validate(); err == nil {
		t.Fatal("empty auth accepted")
	}
	if err := (Config{Auth: AuthManagedIdentity, Namespace: "ns.servicebus.windows.net", Transport: TransportWebSockets,
		Proxy: proxy.Config{URL: "http://proxy:3128"}, CustomEndpoint: "127.0.0.1:5671"}).Validate(); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
}

func TestCredentialSelection(t *testing.T) {
	certFile := writeTestCert(t)
	cases := []struct {
		cfg  Config
		want any
	}{
		{Config{Auth: AuthClientSecret, Namespace: "n", TenantID: "00000000-0000-0000-0000-000000000001", ClientID: "c", ClientSecret: "s"}, &azidentity.ClientSecretCredential{}},
		{Config{Auth: AuthClientCertificate, Namespace: "n", TenantID: "00000000-0000-0000-0000-000000000001", ClientID: "c", CertificateFile: certFile}, &azidentity.ClientCertificateCredential{}},
		{Config{Auth: AuthManagedIdentity, Namespace: "n", ManagedIdentityClientID: "abc"}, &azidentity.ManagedIdentityCredential{}},
		{Config{Auth: AuthWorkloadIdentity, Namespace: "n", TenantID: "00000000-0000-0000-0000-000000000001", ClientID: "c", TokenFile: certFile}, &azidentity.WorkloadIdentityCredential{}},
		{Config{Auth: AuthDefault, Namespace: "n"}, &azidentity.DefaultAzureCredential{}},
	}
	for _, c := range cases {
		cred, err := Credential(c.cfg)
		if err != nil {
			t.Fatalf("%s: %v", c.cfg.Auth, err)
		}
		if fmt.Sprintf("%T", cred) != fmt.Sprintf("%T", c.want) {
			t.Fatalf("%s: got %T, want %T", c.cfg.Auth, cred, c.want)
		}
		if _, err := NewClient(c.cfg); err != nil {
			t.Fatalf("%s: client: %v", c.cfg.Auth, err)
		}
	}
	if _, err := Credential(Config{Auth: AuthClientCertificate, CertificateFile: filepath.Join(t.TempDir(), "missing")}); err == nil {
		t.Fatal("missing certificate accepted")
	}
	bad := filepath.Join(t.TempDir(), "bad.pem")
	_ = os.WriteFile(bad, []byte("nope"), 0o600)
	if _, err := Credential(Config{Auth: AuthClientCertificate, TenantID: "t", ClientID: "c", CertificateFile: bad}); !errors.Is(err, ErrConfig) {
		t.Fatalf("bad certificate: %v", err)
	}
	if _, err := Credential(Config{Auth: AuthConnectionString}); err == nil {
		t.Fatal("connection string has no credential")
	}
}

func TestNewClientDoesNotLeakConnectionString(t *testing.T) {
	_, err := NewClient(Config{Auth: AuthConnectionString, ConnectionString: "garbage SUPERSECRET"})
	if err == nil || strings.Contains(err.Error(), "SUPERSECRET") {
		t.Fatalf("err %v", err)
	}
}

func writeTestCert(t *testing.T) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "t"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	p := filepath.Join(t.TempDir(), "cert.pem")
	data := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})...)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// fakeReceiver is an in-memory receiver: a queue of messages, recording settlements.
type fakeReceiver struct {
	mu        sync.Mutex
	queue     []*azservicebus.ReceivedMessage
	settled   map[string]string
	renewals  atomic.Int32
	lockLost  bool
	recvErr   error
	closed    atomic.Bool
	available chan struct{}
}

func newFake(msgs ...*azservicebus.ReceivedMessage) *fakeReceiver {
	f := &fakeReceiver{queue: msgs, settled: map[string]string{}, available: make(chan struct{}, 1)}
	return f
}

func (f *fakeReceiver) ReceiveMessages(ctx context.Context, n int, _ *azservicebus.ReceiveMessagesOptions) ([]*azservicebus.ReceivedMessage, error) {
	f.mu.Lock()
	if f.recvErr != nil {
		err := f.recvErr
		f.mu.Unlock()
		return nil, err
	}
	if len(f.queue) > 0 {
		k := min(n, len(f.queue))
		out := f.queue[:k]
		f.queue = f.queue[k:]
		f.mu.Unlock()
		return out, nil
	}
	f.mu.Unlock()
	<-ctx.Done()
	return nil, ctx.Err()
}

func (f *fakeReceiver) settle(m *azservicebus.ReceivedMessage, how string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lockLost {
		return &azservicebus.Error{Code: azservicebus.CodeLockLost}
	}
	f.settled[m.MessageID] = how
	return nil
}

func (f *fakeReceiver) CompleteMessage(_ context.Context, m *azservicebus.ReceivedMessage, _ *azservicebus.CompleteMessageOptions) error {
	return f.settle(m, "complete")
}
func (f *fakeReceiver) AbandonMessage(_ context.Context, m *azservicebus.ReceivedMessage, _ *azservicebus.AbandonMessageOptions) error {
	return f.settle(m, "abandon")
}
func (f *fakeReceiver) DeadLetterMessage(_ context.Context, m *azservicebus.ReceivedMessage, o *azservicebus.DeadLetterOptions) error {
	return f.settle(m, "deadletter:"+*o.Reason+":"+*o.ErrorDescription)
}
func (f *fakeReceiver) RenewMessageLock(_ context.Context, m *azservicebus.ReceivedMessage, _ *azservicebus.RenewMessageLockOptions) error {
	f.renewals.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lockLost {
		return &azservicebus.Error{Code: azservicebus.CodeLockLost}
	}
	lu := time.Now().Add(100 * time.Millisecond)
	m.LockedUntil = &lu
	return nil
}
func (f *fakeReceiver) PeekMessages(context.Context, int, *azservicebus.PeekMessagesOptions) ([]*azservicebus.ReceivedMessage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return nil, f.recvErr
}
func (f *fakeReceiver) Close(context.Context) error { f.closed.Store(true); return nil }

func (f *fakeReceiver) result(id string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.settled[id]
}

func msg(id string, lock time.Duration) *azservicebus.ReceivedMessage {
	lu := time.Now().Add(lock)
	return &azservicebus.ReceivedMessage{MessageID: id, Body: []byte(id), DeliveryCount: 1, LockedUntil: &lu}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

func startFake(t *testing.T, f *fakeReceiver, h transport.Handler) *Source {
	t.Helper()
	s, err := newSource(func() (receiver, error) { return f, nil }, SourceConfig{
		Queue: "q", Prefetch: 8, Concurrency: 4, ReceiveTimeout: 50 * time.Millisecond, ShutdownGrace: time.Second,
		AbandonBackoff: &backoff.ExponentialBackOff{InitialInterval: time.Millisecond, RandomizationFactor: 0.5,
			Multiplier: 2, MaxInterval: 2 * time.Millisecond},
	}, h)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return s
}

func TestSourceDispositionsWithFake(t *testing.T) {
	f := newFake(msg("ok", time.Minute), msg("retry", time.Minute), msg("poison", time.Minute), msg("panic", time.Minute), msg("weird", time.Minute))
	s := startFake(t, f, transport.HandlerFunc(func(ctx context.Context, d *transport.Delivery) transport.Disposition {
		switch d.MessageID {
		case "ok":
			return transport.Complete()
		case "retry":
			return transport.Abandon()
		case "poison":
			return transport.DeadLetter("invalid_command", "bad\nsignature")
		case "panic":
			panic("handler bug")
		}
		return transport.Disposition{}
	}))
	waitUntil(t, "all settled", func() bool { h := s.Health(); return h.Completed+h.Abandoned+h.DeadLettered == 5 })
	want := map[string]string{"ok": "complete", "retry": "abandon", "poison": "deadletter:invalid_command:bad signature", "panic": "abandon", "weird": "abandon"}
	for id, w := range want {
		if got := f.result(id); got != w {
			t.Errorf("%s: %q, want %q", id, got, w)
		}
	}
}

func TestSourceRenewsUntilSettledWithFake(t *testing.T) {
	f := newFake(msg("slow", 100*time.Millisecond))
	release := make(chan struct{})
	s := startFake(t, f, transport.HandlerFunc(func(ctx context.Context, d *transport.Delivery) transport.Disposition {
		<-release
		return transport.Complete()
	}))
	waitUntil(t, "three renewals", func() bool { return f.renewals.Load() >= 3 })
	close(release)
	waitUntil(t, "completion", func() bool { return s.Health().Completed == 1 })
	n := f.renewals.Load()
	if f.result("slow") != "complete" || s.Health().LockLost != 0 || n < 3 {
		t.Fatalf("result %q health %+v", f.result("slow"), s.Health())
	}
}

func TestSourceLockLostDuringRenewCancelsHandler(t *testing.T) {
	f := newFake(msg("lost", 60*time.Millisecond))
	f.lockLost = true
	cancelled := make(chan struct{})
	s := startFake(t, f, transport.HandlerFunc(func(ctx context.Context, d *transport.Delivery) transport.Disposition {
		<-ctx.Done()
		close(cancelled)
		return transport.Complete()
	}))
	<-cancelled
	waitUntil(t, "lock lost reported", func() bool { return s.Health().LockLost == 1 })
	if !errors.Is(s.Health().LastError, ErrLockLost) || f.result("lost") != "" {
		t.Fatalf("health %+v settled %q", s.Health(), f.result("lost"))
	}
}

func TestSourceBacksOffOnReceiveErrors(t *testing.T) {
	f := newFake()
	f.recvErr = &azservicebus.Error{Code: azservicebus.CodeUnauthorizedAccess}
	var opens atomic.Int32
	s, err := newSource(func() (receiver, error) { opens.Add(1); return f, nil }, SourceConfig{
		Queue: "q", Prefetch: 8, Concurrency: 4, ShutdownGrace: 20 * time.Second, ReceiveTimeout: 50 * time.Millisecond,
		ReconnectBackoff: &backoff.ExponentialBackOff{InitialInterval: time.Millisecond, RandomizationFactor: 0.5,
			Multiplier: 2, MaxInterval: 4 * time.Millisecond},
	}, transport.HandlerFunc(func(context.Context, *transport.Delivery) transport.Disposition { return transport.Complete() }))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.Run(ctx); close(done) }()
	waitUntil(t, "several failures", func() bool { return s.Health().ConsecutiveFailures >= 3 })
	cancel()
	<-done
	h := s.Health()
	if !errors.Is(h.LastError, ErrUnauthorized) || h.State != LinkStopped || opens.Load() < 3 || !f.closed.Load() {
		t.Fatalf("health %+v opens %d", h, opens.Load())
	}
}

func TestNewSourceValidation(t *testing.T) {
	if _, err := NewSource(nil, SourceConfig{Queue: "q"}, transport.HandlerFunc(func(context.Context, *transport.Delivery) transport.Disposition { return transport.Complete() })); err == nil {
		t.Fatal("nil client accepted")
	}
	if _, err := newSource(func() (receiver, error) { return nil, nil }, SourceConfig{}, nil); !errors.Is(err, ErrConfig) {
		t.Fatalf("empty queue: %v", err)
	}
	// Prefetch, Concurrency and ShutdownGrace have their defaults in the connector's
	// configuration, not here: missing ones are refused, every one named.
	_, err := newSource(func() (receiver, error) { return nil, nil }, SourceConfig{Queue: "q"},
		transport.HandlerFunc(func(context.Context, *transport.Delivery) transport.Disposition { return transport.Complete() }))
	if !errors.Is(err, ErrConfig) {
		t.Fatalf("missing required settings: %v", err)
	}
	for _, want := range []string{"prefetch", "concurrency", "shutdown grace"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

// The handler's Settled hook hears what the source actually did: the action
// carried out, or the lock lost before it could be.
func TestSourceReportsSettlementWithFake(t *testing.T) {
	settled := make(chan transport.Settlement, 2)
	hook := func(s transport.Settlement) { settled <- s }
	f := newFake(msg("ok", time.Minute))
	startFake(t, f, transport.HandlerFunc(func(ctx context.Context, d *transport.Delivery) transport.Disposition {
		disp := transport.Complete()
		disp.Settled = hook
		return disp
	}))
	if s := <-settled; s.Action != transport.ActionComplete || s.Err != nil || s.String() != "completed" || f.result("ok") != "complete" {
		t.Fatalf("settlement %+v (%s), fake %q", s, s, f.result("ok"))
	}

	lost := newFake(msg("lost", 60*time.Millisecond))
	lost.lockLost = true
	startFake(t, lost, transport.HandlerFunc(func(ctx context.Context, d *transport.Delivery) transport.Disposition {
		<-ctx.Done()
		disp := transport.Complete()
		disp.Settled = hook
		return disp
	}))
	if s := <-settled; !errors.Is(s.Err, transport.ErrLockLost) || s.String() != "lock_lost" {
		t.Fatalf("settlement %+v (%s), want lock_lost", s, s)
	}
}
