//go:build integration

package servicebus

import (
	"context"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/adwriteback/adwriteback/integration/entra"
	"github.com/adwriteback/adwriteback/integration/sbemu"
	"github.com/adwriteback/adwriteback/relay/servicebus/wstest"
)

// TestEntraOverWebSockets drives the Entra (token credential) path over WebSockets with the
// production dialer: the SDK's URL, TLS verified for the namespace through queue.ca_file, the
// custom endpoint, and an endpoint that bridges the WebSocket to the emulator's AMQP. The
// token is a real one from the harness's Entra issuer (a client secret credential), which the
// emulator checks for signature, issuer, audience and the Send role on the queue.
func TestEntraOverWebSockets(t *testing.T) {
	noEnvProxy(t)
	iss := entra.Start(t, entra.Options{Clients: []entra.Client{{Name: "connector", Roles: []string{"Send:wsq"}}}})
	e := sbemu.Start(t, &sbemu.Options{JWT: sbemu.JWTOptions{JWKSFile: iss.JWKSFile(), Issuer: iss.Issuer()}})
	ci := iss.Client("connector")
	cred, err := azidentity.NewClientSecretCredential(iss.TenantID(), ci.ID, ci.Secret,
		&azidentity.ClientSecretCredentialOptions{ClientOptions: iss.ClientOptions(), DisableInstanceDiscovery: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.CreateQueue(context.Background(), "wsq", sbemu.QueueOptions{}); err != nil {
		t.Fatal(err)
	}
	ws := wstest.Start(t, testNamespace, wstest.PipeTo(e.Endpoint()))
	c, err := NewClient(Config{
		Auth: AuthDefault, Namespace: testNamespace, Transport: TransportWebSockets,
		Credential: cred, CAFile: ws.CAFile, CustomEndpoint: ws.Addr(),
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
