//go:build integration

package servicebus

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"github.com/adwriteback/adwriteback/integration/entra"
	"github.com/adwriteback/adwriteback/integration/sbemu"
)

// TestEntraOverWebSocketConnPath drives the Entra (token credential) + NewWebSocketConn path:
// the dial hook returns a loopback connection to the emulator, which checks the token of the
// harness's issuer (a client secret credential).
func TestEntraOverWebSocketConnPath(t *testing.T) {
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
	var dials atomic.Int32
	c, err := NewClient(Config{
		Auth: AuthDefault, Namespace: "example.servicebus.windows.net", Transport: TransportWebSockets,
		Credential: cred,
		DialWebSocket: func(ctx context.Context, _ azservicebus.NewWebSocketConnArgs) (net.Conn, error) {
			dials.Add(1)
			var d net.Dialer
			return d.DialContext(ctx, "tcp", e.Endpoint())
		},
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
		t.Fatalf("send over the websocket hook: %v", err)
	}
	if qs, _ := e.Queue(ctx, "wsq"); qs.Active != 1 || dials.Load() == 0 {
		t.Fatalf("active %d dials %d", qs.Active, dials.Load())
	}
}
