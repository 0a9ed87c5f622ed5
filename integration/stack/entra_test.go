package stack

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"github.com/adwriteback/adwriteback/integration/entra"
	"github.com/adwriteback/adwriteback/integration/testdc"
)

// TestWithEntra: the emulator of a stack WithEntra trusts the issuer's
// tokens and their roles: the default sender may send commands and may
// not receive them. (No DC: the test reaches only the emulator.)
func TestWithEntra(t *testing.T) {
	env := New(t, WithDC(&testdc.Info{ServicePass: "unused"}), WithEntra(entra.Options{}))
	if env.Entra == nil {
		t.Fatal("no issuer")
	}
	ci := env.Entra.Client(EntraSender)
	cred, err := azidentity.NewClientSecretCredential(env.Entra.TenantID(), ci.ID, ci.Secret,
		&azidentity.ClientSecretCredentialOptions{ClientOptions: env.Entra.ClientOptions(), DisableInstanceDiscovery: true})
	if err != nil {
		t.Fatal(err)
	}
	// The emulator's plain AMQP port through the SDK's WebSocket hook, as
	// integration/sbemu documents; the transport is not under test here.
	c, err := azservicebus.NewClient("adwtest.servicebus.windows.net", cred, &azservicebus.ClientOptions{
		NewWebSocketConn: func(ctx context.Context, _ azservicebus.NewWebSocketConnArgs) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", env.Emu.Endpoint())
		},
		RetryOptions: azservicebus.RetryOptions{MaxRetries: 1, RetryDelay: 50 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := c.NewSender(env.Queue, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	if err := s.SendMessage(ctx, &azservicebus.Message{MessageID: new("m-1"), Body: []byte("x")}, nil); err != nil {
		t.Fatalf("the sender sends commands: %v", err)
	}
	r, err := c.NewReceiverForQueue(env.Queue, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	_, err = r.ReceiveMessages(ctx, 1, nil)
	var sbErr *azservicebus.Error
	if !errors.As(err, &sbErr) || sbErr.Code != azservicebus.CodeUnauthorizedAccess {
		t.Fatalf("the sender receiving commands: want unauthorized, got %v", err)
	}
	if st := env.QueueState(env.Queue); st.Active != 1 {
		t.Fatalf("command queue holds %d messages, want 1", st.Active)
	}
}

// TestOneCA: with the emulator on TLS and the token issuer, the stack's
// one CA file is all a client needs to trust both: the issuer's HTTPS and
// the namespace's certificate verify against a pool holding only it.
func TestOneCA(t *testing.T) {
	env := New(t, WithDC(&testdc.Info{ServicePass: "unused"}), WithEmulatorTLS(), WithEntra(entra.Options{}))
	b, err := os.ReadFile(env.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatalf("%s holds no certificate", env.CAFile())
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil,
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	resp, err := hc.Get(env.Entra.AuthorityHost() + env.Entra.TenantID() + "/v2.0/.well-known/openid-configuration")
	if err != nil {
		t.Fatalf("the issuer's HTTPS against the stack CA: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("OIDC discovery: %s", resp.Status)
	}
	if _, err := io.Copy(env.Results, resp.Body); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d := tls.Dialer{Config: &tls.Config{RootCAs: pool, ServerName: env.Emu.HostName(), MinVersion: tls.VersionTLS12}}
	c, err := d.DialContext(ctx, "tcp", env.Emu.WebSocketEndpoint())
	if err != nil {
		t.Fatalf("the namespace's TLS against the stack CA: %v", err)
	}
	c.Close()
}
