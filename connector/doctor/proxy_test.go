package doctor

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/adwriteback/adwriteback/connector/config"
	"github.com/adwriteback/adwriteback/relay/proxy/proxytest"
	"github.com/adwriteback/adwriteback/relay/servicebus/wstest"
)

// TestCheckProxy runs the proxy check against a real CONNECT proxy with basic
// authentication in front of a Service Bus-shaped WSS endpoint: authorised, a wrong
// password (407), an unreachable proxy, NO_PROXY, and TLS that does not verify; each
// with its fix, and never the password.
func TestCheckProxy(t *testing.T) {
	for _, k := range []string{"HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy"} {
		t.Setenv(k, "")
	}
	const ns = "adwtest.servicebus.windows.net"
	ws := wstest.Start(t, ns, wstest.Echo)
	px := proxytest.Start(t, proxytest.Options{Username: "svc-adw", Password: "right-proxy-pw"})
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "http://" + dead.Addr().String()
	dead.Close()
	queue := func(p config.Proxy, caFile string) config.Queue {
		return config.Queue{Name: "q", Auth: "connection_string", Transport: "websockets",
			ConnectionString: "Endpoint=sb://" + ns + "/;SharedAccessKeyName=k;SharedAccessKey=eA==",
			CAFile:           caFile, CustomEndpoint: ws.Addr(), Proxy: p}
	}
	right := config.Proxy{URL: px.URL(), Username: "svc-adw", Password: "right-proxy-pw", PasswordFile: "/etc/adw/proxy.pw"}
	wrong := right
	wrong.Password = "wrong-proxy-pw"
	bypass := wrong
	bypass.NoProxy = []string{"servicebus.windows.net"}
	for _, c := range []struct {
		name   string
		q      config.Queue
		status Status
		detail string
		fix    string
	}{
		{"authorised", queue(right, ws.CAFile), OK, "through the proxy " + px.Addr(), ""},
		{"wrong password", queue(wrong, ws.CAFile), Fail, "refused the credentials (HTTP 407", "/etc/adw/proxy.pw (queue.proxy.password_file)"},
		{"unreachable", queue(config.Proxy{URL: deadURL}, ws.CAFile), Fail, "cannot be reached", "queue.proxy.url"},
		{"no_proxy", queue(bypass, ws.CAFile), OK, "directly (no proxy applies to " + ns + ")", ""},
		{"tls", queue(right, ""), Fail, "TLS to " + ns + " does not verify", "queue.ca_file"},
		{"amqp", config.Queue{Transport: "amqp"}, Skip, "never goes through an HTTP proxy", ""},
	} {
		got := CheckProxy(context.Background(), c.q, 10*time.Second)
		if got.Status != c.status || !strings.Contains(got.Detail, c.detail) || !strings.Contains(got.Fix, c.fix) {
			t.Errorf("%s: %s %q fix %q; want %s with %q, fix with %q", c.name, got.Status, got.Detail, got.Fix, c.status, c.detail, c.fix)
		}
		if s := got.Detail + got.Fix; strings.Contains(s, "proxy-pw") {
			t.Errorf("%s: a proxy password is in the check: %s", c.name, s)
		}
	}
}
