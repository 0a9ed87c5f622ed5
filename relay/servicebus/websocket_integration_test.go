//go:build integration

package servicebus

import (
	"context"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/adwriteback/adwriteback/integration/sbemu"
	"github.com/adwriteback/adwriteback/relay/servicebus/wstest"
)

type fakeCredential struct{}

func (fakeCredential) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: "fake-entra-token", ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// TestEntraOverWebSockets drives the Entra (token credential) path over WebSockets with the
// production dialer: the SDK's URL, TLS verified for the namespace through queue.ca_file, the
// custom endpoint, and an endpoint that bridges the WebSocket to the emulator's AMQP. (The
// emulator accepts any JWT; the token issuer is the harness's.)
func TestEntraOverWebSockets(t *testing.T) {
	noEnvProxy(t)
	e := sbemu.Start(t, nil)
	if err := e.CreateQueue(context.Background(), "wsq", sbemu.QueueOptions{}); err != nil {
		t.Fatal(err)
	}
	ws := wstest.Start(t, testNamespace, wstest.PipeTo(e.Endpoint()))
	c, err := NewClient(Config{
		Auth: AuthDefault, Namespace: testNamespace, Transport: TransportWebSockets,
		Credential: fakeCredential{}, CAFile: ws.CAFile, CustomEndpoint: ws.Addr(),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	cs, err := NewCommandSender(c, CommandSenderConfig{Queue: "wsq"})
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := cs.SendCommand(ctx, "ws-1", []byte("x"), ""); err != nil {
		t.Fatalf("send over WebSockets: %v", err)
	}
	if qs, _ := e.Queue(ctx, "wsq"); qs.Active != 1 || ws.Accepted() == 0 {
		t.Fatalf("active %d, WebSockets accepted %d", qs.Active, ws.Accepted())
	}
}
