package sbemu

import (
	"context"
	"fmt"
	"net"
	"net/http"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/coder/websocket"
)

// WebSocketSubprotocol is the AMQP WebSocket binding's subprotocol, which the emulator, like
// Service Bus, requires of an AMQP WebSocket (it accepts the draft name AMQPWSB10 too, as
// Microsoft's .NET, Java and JavaScript clients send it).
const WebSocketSubprotocol = "amqp"

// WebSocketConn is a ClientOptions.NewWebSocketConn for the azservicebus SDK on a real
// WebSocket client (coder/websocket), for tests that drive the SDK themselves: it dials the
// URL the SDK gives (NewWebSocketConnArgs.Host, already ending in WebSocketPath) as given,
// with the subprotocol amqp, through hc (whose transport sets the proxy, the TLS roots and
// the network dialer, e.g. DialContext). The connection lives until the SDK closes it.
func WebSocketConn(hc *http.Client) func(context.Context, azservicebus.NewWebSocketConnArgs) (net.Conn, error) {
	return func(ctx context.Context, args azservicebus.NewWebSocketConnArgs) (net.Conn, error) {
		c, resp, err := websocket.Dial(ctx, args.Host, &websocket.DialOptions{HTTPClient: hc, Subprotocols: []string{WebSocketSubprotocol}})
		if resp != nil && resp.Body != nil {
			resp.Body.Close()
		}
		if err != nil {
			return nil, fmt.Errorf("sbemu: websocket %s: %w", args.Host, err)
		}
		return websocket.NetConn(context.Background(), c, websocket.MessageBinary), nil
	}
}
