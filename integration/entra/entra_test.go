//go:build integration

package entra_test

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/Azure/go-amqp"

	"github.com/adwriteback/adwriteback/integration/entra"
	"github.com/adwriteback/adwriteback/integration/sbemu"
	"github.com/adwriteback/adwriteback/integration/stack"
	"github.com/adwriteback/adwriteback/integration/testca"
)

const (
	namespace = "adwtest.servicebus.windows.net"
	queue     = "commands"
)

// world is an issuer, an emulator trusting it, and a TLS endpoint for the
// namespace in front of the emulator, so the SDK runs its own amqps dial.
type world struct {
	iss      *entra.Issuer
	emu      *sbemu.Emulator
	endpoint string // host:port of the namespace's TLS endpoint
}

func newWorld(t *testing.T, clients ...entra.Client) *world {
	t.Helper()
	iss := entra.Start(t, entra.Options{Clients: clients})
	emu := sbemu.Start(t, &sbemu.Options{JWT: sbemu.JWTOptions{JWKSFile: iss.JWKSFile(), Issuer: iss.Issuer(), Audience: entra.ServiceBusAudience}})
	if err := emu.CreateQueue(context.Background(), queue, sbemu.QueueOptions{}); err != nil {
		t.Fatal(err)
	}
	return &world{iss: iss, emu: emu, endpoint: tlsFront(t, iss.CA(), emu.Endpoint())}
}

// tlsFront terminates TLS for the namespace's host name (a certificate of
// the issuer's CA) and forwards to the emulator's plain AMQP port.
// TODO(e13): use the emulator's own TLS listener once it has one.
func tlsFront(t *testing.T, ca *testca.CA, backend string) string {
	t.Helper()
	cert, err := ca.ServerCert(namespace)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	track := func(c net.Conn) {
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
	}
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b, err := net.Dial("tcp", backend)
			if err != nil {
				c.Close()
				continue
			}
			track(c)
			track(b)
			wg.Add(2)
			go func() { defer wg.Done(); io.Copy(b, c); b.Close() }()
			go func() { defer wg.Done(); io.Copy(c, b); c.Close() }()
		}
	}()
	return ln.Addr().String()
}

// client is an azservicebus client with cred, reaching the namespace
// through its TLS endpoint and trusting the test CA.
func (w *world) client(t *testing.T, cred azcore.TokenCredential) *azservicebus.Client {
	t.Helper()
	c, err := azservicebus.NewClient(namespace, cred, &azservicebus.ClientOptions{
		CustomEndpoint: w.endpoint,
		TLSConfig:      &tls.Config{RootCAs: w.iss.CertPool(), ServerName: namespace, MinVersion: tls.VersionTLS12},
		RetryOptions:   azservicebus.RetryOptions{MaxRetries: 1, RetryDelay: 50 * time.Millisecond, MaxRetryDelay: 100 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// sendReceive sends a message and receives and completes it.
func sendReceive(t *testing.T, c *azservicebus.Client) {
	t.Helper()
	s, err := c.NewSender(queue, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	if err := s.SendMessage(ctx(t), &azservicebus.Message{MessageID: new("m-1"), Body: []byte("hello")}, nil); err != nil {
		t.Fatalf("send: %v", err)
	}
	r, err := c.NewReceiverForQueue(queue, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	msgs, err := r.ReceiveMessages(ctx(t), 1, nil)
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	if len(msgs) != 1 || string(msgs[0].Body) != "hello" {
		t.Fatalf("received %d messages", len(msgs))
	}
	if err := r.CompleteMessage(ctx(t), msgs[0], nil); err != nil {
		t.Fatalf("complete: %v", err)
	}
}

var rw = entra.Client{Name: "connector", Roles: []string{"Listen:" + queue, "Send:" + queue}}

func TestClientSecretSendReceive(t *testing.T) {
	w := newWorld(t, rw)
	ci := w.iss.Client("connector")
	cred, err := azidentity.NewClientSecretCredential(w.iss.TenantID(), ci.ID, ci.Secret,
		&azidentity.ClientSecretCredentialOptions{ClientOptions: w.iss.ClientOptions(), DisableInstanceDiscovery: true})
	if err != nil {
		t.Fatal(err)
	}
	sendReceive(t, w.client(t, cred))
}

func TestClientCertificateSendReceive(t *testing.T) {
	w := newWorld(t, rw)
	ci := w.iss.Client("connector")
	certs, key, err := azidentity.ParseCertificates(mustRead(t, ci.CertFile), nil)
	if err != nil {
		t.Fatal(err)
	}
	cred, err := azidentity.NewClientCertificateCredential(w.iss.TenantID(), ci.ID, certs, key,
		&azidentity.ClientCertificateCredentialOptions{ClientOptions: w.iss.ClientOptions(), DisableInstanceDiscovery: true})
	if err != nil {
		t.Fatal(err)
	}
	sendReceive(t, w.client(t, cred))
}

func TestWorkloadIdentitySendReceive(t *testing.T) {
	w := newWorld(t, rw)
	ci := w.iss.Client("connector")
	cred, err := azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{
		ClientOptions: w.iss.ClientOptions(), DisableInstanceDiscovery: true,
		TenantID: w.iss.TenantID(), ClientID: ci.ID, TokenFilePath: ci.TokenFile,
	})
	if err != nil {
		t.Fatal(err)
	}
	sendReceive(t, w.client(t, cred))
}

func TestArcManagedIdentitySendReceive(t *testing.T) {
	mi := rw
	mi.ManagedIdentity = true
	w := newWorld(t, mi)
	for k, v := range w.iss.ArcEnv() {
		t.Setenv(k, v)
	}
	cred, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{ClientOptions: w.iss.ClientOptions()})
	if err != nil {
		t.Fatal(err)
	}
	sendReceive(t, w.client(t, cred))
}

func secretCredential(t *testing.T, w *world, name, secret string) azcore.TokenCredential {
	t.Helper()
	ci := w.iss.Client(name)
	if secret == "" {
		secret = ci.Secret
	}
	cred, err := azidentity.NewClientSecretCredential(w.iss.TenantID(), ci.ID, secret,
		&azidentity.ClientSecretCredentialOptions{ClientOptions: w.iss.ClientOptions(), DisableInstanceDiscovery: true})
	if err != nil {
		t.Fatal(err)
	}
	return cred
}

// wantUnauthorized fails unless err is azservicebus's unauthorized.
func wantUnauthorized(t *testing.T, what string, err error) {
	t.Helper()
	var sbErr *azservicebus.Error
	if !errors.As(err, &sbErr) || sbErr.Code != azservicebus.CodeUnauthorizedAccess {
		t.Fatalf("%s: want azservicebus.Error %q, got %v", what, azservicebus.CodeUnauthorizedAccess, err)
	}
	t.Logf("%s refused: %v", what, err)
}

func send(t *testing.T, c *azservicebus.Client) error {
	s, err := c.NewSender(queue, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	return s.SendMessage(ctx(t), &azservicebus.Message{MessageID: new("m-1"), Body: []byte("x")}, nil)
}

func receive(t *testing.T, c *azservicebus.Client) error {
	r, err := c.NewReceiverForQueue(queue, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	_, err = r.ReceiveMessages(ctx(t), 1, nil)
	return err
}

func TestWrongAudienceRefused(t *testing.T) {
	c := rw
	c.Audience = "https://storage.azure.com"
	w := newWorld(t, c)
	wantUnauthorized(t, "send with a token for another resource", send(t, w.client(t, secretCredential(t, w, "connector", ""))))
}

func TestExpiredTokenRefused(t *testing.T) {
	c := rw
	c.ExpiredTokens = true
	w := newWorld(t, c)
	wantUnauthorized(t, "send with an expired token", send(t, w.client(t, secretCredential(t, w, "connector", ""))))
}

func TestReceiveWithoutListenRefused(t *testing.T) {
	w := newWorld(t, entra.Client{Name: "sender", Roles: []string{"Send:" + queue}})
	c := w.client(t, secretCredential(t, w, "sender", ""))
	if err := send(t, c); err != nil {
		t.Fatalf("send with Send: %v", err)
	}
	wantUnauthorized(t, "receive without Listen", receive(t, c))
	if qs, err := w.emu.Queue(context.Background(), queue); err != nil || qs.Active != 1 {
		t.Fatalf("the message must stay on the queue: %+v %v", qs, err)
	}
}

func TestListenOnOtherQueueRefused(t *testing.T) {
	w := newWorld(t, entra.Client{Name: "other", Roles: []string{"Listen:elsewhere", "Send:elsewhere"}})
	wantUnauthorized(t, "send with Send on another queue", send(t, w.client(t, secretCredential(t, w, "other", ""))))
}

func TestBadClientSecretRefused(t *testing.T) {
	expired := rw
	expired.SecretExpired = true
	w := newWorld(t, expired, entra.Client{Name: "plain", Roles: rw.Roles})
	for _, tc := range []struct {
		name, client, secret string
		code                 int // the AADSTS code
	}{
		{"expired secret", "connector", "", 7000222},
		{"wrong secret", "plain", "not-the-secret", 7000215},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sendErr := send(t, w.client(t, secretCredential(t, w, tc.client, tc.secret)))
			var afe *azidentity.AuthenticationFailedError
			if !errors.As(sendErr, &afe) {
				t.Fatalf("want azidentity.AuthenticationFailedError, got %T %v", sendErr, sendErr)
			}
			if afe.RawResponse == nil || afe.RawResponse.StatusCode != 401 {
				t.Fatalf("want the token endpoint's 401, got %v", afe)
			}
			b, err := runtime.Payload(afe.RawResponse)
			if err != nil {
				t.Fatal(err)
			}
			var body struct {
				Codes []int `json:"error_codes"`
			}
			if err := json.Unmarshal(b, &body); err != nil || len(body.Codes) != 1 || body.Codes[0] != tc.code {
				t.Fatalf("want AADSTS%d, got %s", tc.code, b)
			}
			t.Logf("refused with AADSTS%d", tc.code)
		})
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A token of another tenant's issuer (keys the namespace does not trust)
// is refused on $cbs.
func TestTokenOfAnotherIssuerRefused(t *testing.T) {
	w := newWorld(t, rw)
	other := entra.Start(t, entra.Options{Clients: []entra.Client{rw}})
	ci := other.Client("connector")
	cred, err := azidentity.NewClientSecretCredential(other.TenantID(), ci.ID, ci.Secret,
		&azidentity.ClientSecretCredentialOptions{ClientOptions: other.ClientOptions(), DisableInstanceDiscovery: true})
	if err != nil {
		t.Fatal(err)
	}
	wantUnauthorized(t, "send with another issuer's token", send(t, w.client(t, cred)))
}

// The Arc challenge's key files are gone once the tokens are issued.
func TestArcKeyFilesRemoved(t *testing.T) {
	dir := t.TempDir()
	mi := rw
	mi.ManagedIdentity = true
	iss, err := entra.New(entra.Options{Dir: t.TempDir(), ArcKeyDir: dir, Clients: []entra.Client{mi}})
	if err != nil {
		t.Fatal(err)
	}
	defer iss.Close()
	env := iss.ArcEnv()
	req, _ := http.NewRequestWithContext(ctx(t), http.MethodGet, env["IDENTITY_ENDPOINT"]+"?api-version=2020-06-01&resource=https://servicebus.azure.net/", nil)
	req.Header.Set("Metadata", "true")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	realm, ok := strings.CutPrefix(resp.Header.Get("WWW-Authenticate"), "Basic realm=")
	if resp.StatusCode != http.StatusUnauthorized || !ok || filepath.Dir(realm) != dir || filepath.Ext(realm) != ".key" {
		t.Fatalf("challenge: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	key := mustRead(t, realm)
	req.Header.Set("Authorization", "Basic "+string(key))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("token with the key: %d", resp.StatusCode)
	}
	if _, err := os.Stat(realm); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("key file still there: %v", err)
	}
	// a key works once
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a used key: %d, want 401", resp.StatusCode)
	}
	// an unused challenge's file goes at Close
	req.Header.Del("Authorization")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	realm, _ = strings.CutPrefix(resp.Header.Get("WWW-Authenticate"), "Basic realm=")
	if err := iss.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(realm); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("key file left after Close: %v", err)
	}
}

// putToken sends a put-token to the emulator's $cbs over plain AMQP, as
// the SDK does, and returns the reply's status code and description.
func putToken(t *testing.T, endpoint, tokenType, token string) (int32, string) {
	t.Helper()
	conn, err := amqp.Dial(ctx(t), "amqp://"+endpoint, &amqp.ConnOptions{SASLType: amqp.SASLTypeAnonymous()})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sess, err := conn.NewSession(ctx(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	const replyTo = "$cbs-reply-test"
	rcv, err := sess.NewReceiver(ctx(t), "$cbs", &amqp.ReceiverOptions{TargetAddress: replyTo})
	if err != nil {
		t.Fatal(err)
	}
	snd, err := sess.NewSender(ctx(t), "$cbs", nil)
	if err != nil {
		t.Fatal(err)
	}
	msg := &amqp.Message{
		Properties: &amqp.MessageProperties{MessageID: "put-1", ReplyTo: new(replyTo)},
		ApplicationProperties: map[string]any{
			"operation": "put-token", "type": tokenType, "name": "amqps://" + namespace + "/" + queue,
			"expiration": time.Now().Add(time.Hour).Unix(),
		},
		Value: token,
	}
	if err := snd.Send(ctx(t), msg, nil); err != nil {
		t.Fatal(err)
	}
	reply, err := rcv.Receive(ctx(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	code, _ := reply.ApplicationProperties["status-code"].(int32)
	desc, _ := reply.ApplicationProperties["status-description"].(string)
	return code, desc
}

// The emulator verifies the signature itself: a token of the issuer
// whose claims were changed, or one with no signature, is refused.
func TestForgedTokensRefused(t *testing.T) {
	w := newWorld(t, entra.Client{Name: "reader", Roles: []string{"Listen:" + queue}})
	tok, err := w.iss.Mint("reader")
	if err != nil {
		t.Fatal(err)
	}
	if code, desc := putToken(t, w.emu.Endpoint(), "jwt", tok); code != 202 {
		t.Fatalf("the issuer's own token: %d %s", code, desc)
	}
	parts := strings.Split(tok, ".")
	var claims map[string]any
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &claims); err != nil {
		t.Fatal(err)
	}
	claims["roles"] = []string{"Manage"}
	b, err = json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(b) + "." + parts[2]
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + "."
	for name, tok := range map[string]string{"roles changed": tampered, "alg none": none, "not a JWT": "x"} {
		if code, desc := putToken(t, w.emu.Endpoint(), "jwt", tok); code != 401 {
			t.Errorf("%s: put-token answered %d %s, want 401", name, code, desc)
		} else {
			t.Logf("%s: %s", name, desc)
		}
	}
}

// A secret that expires while the client runs: the next token request
// is refused with AADSTS7000222; valid again, it is accepted.
func TestSecretExpiresAtRuntime(t *testing.T) {
	w := newWorld(t, rw)
	token := func() error {
		_, err := secretCredential(t, w, "connector", "").GetToken(ctx(t), policy.TokenRequestOptions{Scopes: []string{entra.ServiceBusAudience + "//.default"}})
		return err
	}
	if err := token(); err != nil {
		t.Fatal(err)
	}
	if err := w.iss.SetSecretExpired("connector", true); err != nil {
		t.Fatal(err)
	}
	var afe *azidentity.AuthenticationFailedError
	if err := token(); !errors.As(err, &afe) {
		t.Fatalf("expired secret: want AuthenticationFailedError, got %v", err)
	}
	if err := w.iss.SetSecretExpired("connector", false); err != nil {
		t.Fatal(err)
	}
	if err := token(); err != nil {
		t.Fatal(err)
	}
}

// A token that expires while a receiver is open: the emulator
// force-detaches the link as Service Bus does (Code: RenewToken), and
// the SDK attaches again with a fresh token and keeps receiving.
func TestLinkOfExpiredTokenDetached(t *testing.T) {
	c := rw
	c.Lifetime = 3 * time.Second
	w := newWorld(t, c)
	sb := w.client(t, secretCredential(t, w, "connector", ""))
	r, err := sb.NewReceiverForQueue(queue, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	receiveOne := func(what string) {
		t.Helper()
		if err := send(t, sb); err != nil {
			t.Fatalf("send %s: %v", what, err)
		}
		// A receive interrupted by the detach returns nothing; the next
		// one attaches again.
		var msgs []*azservicebus.ReceivedMessage
		stack.WaitFor(t, 20*time.Second, "a message "+what, func() bool {
			rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			msgs, err = r.ReceiveMessages(rctx, 1, nil)
			return len(msgs) == 1
		})
		if err := r.CompleteMessage(ctx(t), msgs[0], nil); err != nil {
			t.Fatalf("complete %s: %v", what, err)
		}
	}
	receiveOne("before the token expires")
	stack.WaitFor(t, 20*time.Second, "the receiver's link to go with its token", func() bool {
		qs, err := w.emu.Queue(context.Background(), queue)
		return err == nil && qs.Consumers == 0
	})
	receiveOne("after it expired")
}
