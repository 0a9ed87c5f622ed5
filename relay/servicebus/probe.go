package servicebus

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/coder/websocket"

	"github.com/adwriteback/adwriteback/relay/proxy"
)

// NamespaceHost is the namespace's host name: Namespace, or the host of a connection
// string's Endpoint ("" if neither names one). It holds no secret.
func (cfg Config) NamespaceHost() string {
	if cfg.Namespace != "" {
		return cfg.Namespace
	}
	for part := range strings.SplitSeq(cfg.ConnectionString, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if ok && strings.EqualFold(k, "Endpoint") {
			if u, err := url.Parse(strings.TrimSpace(v)); err == nil {
				return u.Hostname()
			}
		}
	}
	return ""
}

// Probe is what ProbeWebSocket found.
type Probe struct {
	// Namespace is the host the WebSocket is for; Address where the TCP connection went
	// (the custom endpoint, or Namespace:443).
	Namespace, Address string
	// Proxy is the proxy's host:port, "" when the connection went direct.
	Proxy string
}

// ProbeWebSocket opens the WebSocket the connector would open for cfg (the same URL the
// SDK gives, proxy, TLS and custom endpoint) and closes it again: the proxy is reachable
// and lets the connector through, TLS to the namespace verifies, and the endpoint upgrades.
// Errors are classified as the dialer's are (proxy.ErrProxyAuth, ErrProxyRefused,
// ErrProxyUnreachable, ErrWebSocket).
func ProbeWebSocket(ctx context.Context, cfg Config) (Probe, error) {
	ns := cfg.NamespaceHost()
	p := Probe{Namespace: ns, Address: ns + ":443"}
	if cfg.CustomEndpoint != "" {
		p.Address = cfg.CustomEndpoint
	}
	if ns == "" {
		return p, fmt.Errorf("%w: no namespace", ErrConfig)
	}
	sel, err := proxy.New(cfg.Proxy)
	if err != nil {
		return p, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if via, err := sel.For(&url.URL{Scheme: "https", Host: ns}); err == nil && via != nil {
		p.Proxy = via.Host
	}
	tlsCfg, err := tlsConfig(cfg.CAFile)
	if err != nil {
		return p, err
	}
	c, err := DialWebSocket(ctx, sel, tlsCfg, cfg.CustomEndpoint, "wss://"+ns+"/$servicebus/websocket")
	if err != nil {
		return p, err
	}
	_ = c.Close(websocket.StatusNormalClosure, "adwriteback doctor")
	return p, nil
}
