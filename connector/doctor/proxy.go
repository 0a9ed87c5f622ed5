package doctor

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/adwriteback/adwriteback/connector/config"
	"github.com/adwriteback/adwriteback/relay/proxy"
	"github.com/adwriteback/adwriteback/relay/servicebus"
)

// CheckProxy checks the way out for transport websockets: the proxy that applies to the
// namespace (queue.proxy, or HTTPS_PROXY / NO_PROXY) is reachable, accepts the
// credentials, and lets a CONNECT to the namespace through; then TLS to the namespace and
// the WebSocket upgrade, as the connector makes them.
func CheckProxy(ctx context.Context, q config.Queue, timeout time.Duration) Check {
	const name = "proxy"
	if q.Transport != string(servicebus.TransportWebSockets) {
		return skip(name, "", "transport amqp (TCP 5671) never goes through an HTTP proxy; set queue.transport: websockets to use one")
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	p, err := servicebus.ProbeWebSocket(ctx, q.ServiceBus())
	return ProxyResult(p, err, q)
}

// ProxyResult explains the outcome of the probe.
func ProxyResult(p servicebus.Probe, err error, q config.Queue) Check {
	const name = "proxy"
	target := p.Address
	via := "directly (no proxy applies to " + p.Namespace + ")"
	if p.Proxy != "" {
		via = "through the proxy " + p.Proxy
	}
	if err == nil {
		return ok(name, target, "connected %s: CONNECT accepted, TLS to %s verified, WebSocket upgraded", via, p.Namespace)
	}
	source := "the proxy settings (queue.proxy.url, or HTTPS_PROXY in the environment)"
	if q.Proxy.URL != "" {
		source = "queue.proxy.url"
	}
	switch {
	case errors.Is(err, servicebus.ErrConfig) || errors.Is(err, proxy.ErrConfig):
		return fail(name, target, fmt.Sprintf("the proxy settings are invalid: %v", err), "correct the queue.proxy section of the configuration")
	case errors.Is(err, proxy.ErrProxyUnreachable):
		return fail(name, target, fmt.Sprintf("the proxy %s cannot be reached: %v", p.Proxy, err),
			fmt.Sprintf("check the proxy's host and port in %s, and that this server may connect to it", source))
	case errors.Is(err, proxy.ErrProxyAuth):
		fix := "the proxy wants a user name and password: set queue.proxy.username and queue.proxy.password_file (or password_env)"
		if q.Proxy.Username != "" {
			fix = fmt.Sprintf("the proxy refused user %q: put the right password in %s, or correct queue.proxy.username", q.Proxy.Username, proxyPasswordSource(q.Proxy))
		}
		refused := fmt.Sprintf("the proxy %s refused the credentials", p.Proxy)
		if status := proxyStatus(err); status != "" {
			refused += " (" + status + ")"
		}
		return fail(name, target, refused, fix)
	case errors.Is(err, proxy.ErrProxyRefused):
		return fail(name, target, fmt.Sprintf("the proxy %s refused the connection: %v", p.Proxy, err),
			fmt.Sprintf("ask the proxy's administrators to allow CONNECT to %s:443 (and login.microsoftonline.com:443 for Entra ID), or list the namespace in queue.proxy.no_proxy if it is reachable directly", p.Namespace))
	case isTLSVerify(err):
		return fail(name, target, fmt.Sprintf("%s, but TLS to %s does not verify: %v", "connected "+via, p.Namespace, err),
			"if the proxy inspects TLS, exempt *.servicebus.windows.net from inspection (the connector verifies the namespace), or put the CA that signs the namespace's certificate in queue.ca_file")
	case errors.Is(err, context.DeadlineExceeded):
		return fail(name, target, fmt.Sprintf("no answer in time connecting %s", via),
			fmt.Sprintf("allow outbound TCP 443 to %s (or to the proxy), and check %s", p.Namespace, source))
	}
	return fail(name, target, fmt.Sprintf("the WebSocket connection %s failed: %v", via, err),
		fmt.Sprintf("check that %s serves Service Bus on 443 (queue.namespace, queue.custom_endpoint), and %s", p.Namespace, source))
}

// proxyStatus is the status a proxy answered a refused CONNECT with, as
// "HTTP 407 Proxy Authentication Required" (tinyproxy answers a wrong
// password with 401 Unauthorized), or "" when err carries no
// *proxy.ConnectError.
func proxyStatus(err error) string {
	var refused *proxy.ConnectError
	if !errors.As(err, &refused) {
		return ""
	}
	if refused.Status != "" {
		return "HTTP " + refused.Status
	}
	return fmt.Sprintf("HTTP %d %s", refused.StatusCode, http.StatusText(refused.StatusCode))
}

func proxyPasswordSource(p config.Proxy) string {
	return sourceOf("queue.proxy.password", p.PasswordFile, p.PasswordEnv)
}
