package sbemu

import (
	"errors"
	"testing"
)

// TestResolve: the namespace host name on Azure's ports resolves to the
// emulator's TLS listeners; anything else is left as it is.
func TestResolve(t *testing.T) {
	e := &Emulator{keyName: "k", key: "c2VjcmV0", amqpPort: 1000, amqpsPort: 1111, wssPort: 2222,
		tls: &TLSOptions{HostName: "adwtest.servicebus.windows.net", ListenIP: "127.100.1.2", CAFile: "/nonexistent/ca.pem"}}
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"adwtest.servicebus.windows.net:443", "127.100.1.2:2222", true},
		{"ADWTEST.servicebus.windows.net:443", "127.100.1.2:2222", true},
		{"adwtest.servicebus.windows.net", "127.100.1.2:2222", true},
		{"adwtest.servicebus.windows.net:5671", "127.100.1.2:1111", true},
		{"adwtest.servicebus.windows.net:80", "adwtest.servicebus.windows.net:80", false},
		{"other.servicebus.windows.net:443", "other.servicebus.windows.net:443", false},
		{"127.0.0.1:443", "127.0.0.1:443", false},
	} {
		if got, ok := e.Resolve(tc.in); got != tc.want || ok != tc.ok {
			t.Errorf("Resolve(%q) = %q %v, want %q %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
	if got, want := e.WebSocketURL(), "wss://adwtest.servicebus.windows.net/$servicebus/websocket"; got != want {
		t.Errorf("WebSocketURL %q, want %q", got, want)
	}
	if got, want := e.NamespaceConnectionString(), "Endpoint=sb://adwtest.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=c2VjcmV0"; got != want {
		t.Errorf("NamespaceConnectionString %q, want %q", got, want)
	}
	if _, err := e.RootCAs(); err == nil {
		t.Error("RootCAs of a missing file")
	}

	plain := &Emulator{amqpPort: 1000}
	if plain.AMQPSEndpoint() != "" || plain.WebSocketEndpoint() != "" || plain.NamespaceConnectionString() != "" || plain.HostName() != "" {
		t.Error("a plain emulator reports TLS endpoints")
	}
	if got, ok := plain.Resolve("adwtest.servicebus.windows.net:443"); ok || got != "adwtest.servicebus.windows.net:443" {
		t.Errorf("a plain emulator resolved %q", got)
	}
	if _, err := plain.RootCAs(); !errors.Is(err, ErrNoTLS) {
		t.Errorf("RootCAs without TLS: %v, want ErrNoTLS", err)
	}
}
