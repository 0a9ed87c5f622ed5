//go:build integration

package servicebus

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"github.com/adwriteback/adwriteback/integration/sbemu"
)

type fakeCredential struct{}

func (fakeCredential) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: "fake-entra-token", ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// TestEntraOverWebSocketConnPath drives the Entra (token credential) + NewWebSocketConn path:
// the dial hook returns a loopback connection to the emulator, which accepts the JWT.
func TestEntraOverWebSocketConnPath(t *testing.T) {
	e := sbemu.Start(t, nil)
	if err := e.CreateQueue(context.Background(), "wsq", sbemu.QueueOptions{}); err != nil {
		t.Fatal(err)
	}
	var dials atomic.Int32
	c, err := NewClient(Config{
		Auth: AuthDefault, Namespace: "example.servicebus.windows.net", Transport: TransportWebSockets,
		Credential: fakeCredential{},
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
