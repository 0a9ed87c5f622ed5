package servicebus

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/coder/websocket"
)

// AuthKind selects how the connector authenticates to Service Bus.
type AuthKind string

// Authentication kinds.
const (
	AuthConnectionString  AuthKind = "connection_string"  // SAS key in a connection string
	AuthClientSecret      AuthKind = "client_secret"      // Entra app + secret
	AuthClientCertificate AuthKind = "client_certificate" // Entra app + certificate (PEM or PKCS#12)
	AuthManagedIdentity   AuthKind = "managed_identity"   // Azure managed identity (Arc/VM)
	AuthWorkloadIdentity  AuthKind = "workload_identity"  // federated token file (Kubernetes)
	AuthDefault           AuthKind = "default"            // azidentity's default chain
)

// TransportKind selects the wire.
type TransportKind string

// Transports.
const (
	TransportAMQP       TransportKind = "amqp"       // AMQP over TLS, TCP 5671
	TransportWebSockets TransportKind = "websockets" // AMQP over WebSockets, TCP 443, proxy-friendly
)

// Config selects authentication and transport. Secret fields are read by the caller from
// files or the environment; this package never logs them.
type Config struct {
	Auth AuthKind
	// ConnectionString for AuthConnectionString (a secret).
	ConnectionString string
	// Namespace is the fully qualified namespace (contoso.servicebus.windows.net) for the
	// Entra kinds.
	Namespace string
	// TenantID and ClientID of the Entra application (client secret / certificate; optional
	// for workload identity, which reads AZURE_TENANT_ID / AZURE_CLIENT_ID by default).
	TenantID, ClientID string
	// ClientSecret for AuthClientSecret (a secret).
	ClientSecret string
	// CertificateFile (PEM or PKCS#12 holding certificate and key) and its optional password
	// for AuthClientCertificate.
	CertificateFile     string
	CertificatePassword string
	// ManagedIdentityClientID picks a user-assigned identity; empty means system-assigned.
	ManagedIdentityClientID string
	// TokenFile is the federated token file for AuthWorkloadIdentity (default:
	// AZURE_FEDERATED_TOKEN_FILE).
	TokenFile string

	// Transport: TransportAMQP (default) or TransportWebSockets.
	Transport TransportKind
	// ProxyURL is an HTTPS proxy for WebSockets; empty means HTTPS_PROXY/NO_PROXY from the
	// environment.
	ProxyURL string

	// Credential overrides the credential built from the Entra fields (embedding, tests).
	Credential azcore.TokenCredential
	// DialWebSocket overrides how the WebSocket connection is made (tests: a loopback dial).
	DialWebSocket func(ctx context.Context, args azservicebus.NewWebSocketConnArgs) (net.Conn, error)
	// RetryOptions for the SDK; zero values take the SDK defaults.
	RetryOptions azservicebus.RetryOptions
}

// ErrConfig marks invalid transport configuration.
var ErrConfig = errors.New("servicebus: invalid configuration")

// FieldError is one problem with a Config: the setting it concerns, spelled as the
// connector's configuration spells it under queue: (auth, namespace, tenant_id, client_id,
// connection_string, client_secret, certificate_file, transport, proxy_url), whether the
// setting is simply missing for the auth kind, and what is wrong. It wraps ErrConfig.
type FieldError struct {
	Field   string
	Missing bool
	Msg     string
}

func (e *FieldError) Error() string { return fmt.Sprintf("%v: %s: %s", ErrConfig, e.Field, e.Msg) }

// Unwrap makes every FieldError an ErrConfig.
func (e *FieldError) Unwrap() error { return ErrConfig }

// authNeeds is, per auth kind, the settings it cannot do without.
var authNeeds = map[AuthKind][]string{
	AuthConnectionString:  {"connection_string"},
	AuthClientSecret:      {"namespace", "tenant_id", "client_id", "client_secret"},
	AuthClientCertificate: {"namespace", "tenant_id", "client_id", "certificate_file"},
	AuthManagedIdentity:   {"namespace"},
	AuthWorkloadIdentity:  {"namespace"},
	AuthDefault:           {"namespace"},
}

// Problems returns every problem with cfg: the one set of queue authentication and
// transport rules (the connector's configuration checks its queue section with it).
func (cfg Config) Problems() []*FieldError {
	var out []*FieldError
	add := func(field string, missing bool, format string, a ...any) {
		out = append(out, &FieldError{Field: field, Missing: missing, Msg: fmt.Sprintf(format, a...)})
	}
	have := map[string]string{
		"connection_string": cfg.ConnectionString, "namespace": cfg.Namespace, "tenant_id": cfg.TenantID,
		"client_id": cfg.ClientID, "client_secret": cfg.ClientSecret, "certificate_file": cfg.CertificateFile,
	}
	needs, known := authNeeds[cfg.Auth]
	switch {
	case cfg.Auth == "":
		add("auth", true, "auth kind is required (connection_string, client_secret, client_certificate, managed_identity, workload_identity, default)")
	case !known:
		add("auth", false, "%q: use connection_string, client_secret, client_certificate, managed_identity, workload_identity or default", string(cfg.Auth))
	}
	for _, f := range needs {
		if have[f] == "" {
			add(f, true, "auth %s needs the %s", cfg.Auth, strings.ReplaceAll(f, "_", " "))
		}
	}
	if strings.Contains(cfg.Namespace, "://") || strings.Contains(cfg.Namespace, "/") {
		add("namespace", false, "namespace %q must be a host name (e.g. contoso.servicebus.windows.net), not a URL", cfg.Namespace)
	}
	switch cfg.Transport {
	case "", TransportAMQP, TransportWebSockets:
	default:
		add("transport", false, "%q: use amqp or websockets", string(cfg.Transport))
	}
	if cfg.ProxyURL != "" {
		u, err := url.Parse(cfg.ProxyURL)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			add("proxy_url", false, "proxy URL %q must be http(s)://host:port", redactURL(cfg.ProxyURL))
		}
		if cfg.Transport != TransportWebSockets {
			add("proxy_url", false, "a proxy needs transport websockets")
		}
	}
	return out
}

// Validate returns every problem with cfg (Problems, joined), or nil.
func (cfg Config) Validate() error {
	var errs []error
	for _, p := range cfg.Problems() {
		errs = append(errs, p)
	}
	return errors.Join(errs...)
}

// NewClient builds an azservicebus client from cfg.
func NewClient(cfg Config) (*azservicebus.Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	opts := &azservicebus.ClientOptions{RetryOptions: cfg.RetryOptions}
	if cfg.Transport == TransportWebSockets {
		dial := cfg.DialWebSocket
		if dial == nil {
			d, err := webSocketDialer(cfg.ProxyURL)
			if err != nil {
				return nil, err
			}
			dial = d
		}
		opts.NewWebSocketConn = dial
	}
	if cfg.Auth == AuthConnectionString {
		c, err := azservicebus.NewClientFromConnectionString(cfg.ConnectionString, opts)
		if err != nil {
			// the SDK's message may quote the connection string: keep only our own text
			return nil, fmt.Errorf("%w: connection string is malformed", ErrConfig)
		}
		return c, nil
	}
	cred, err := Credential(cfg)
	if err != nil {
		return nil, err
	}
	c, err := azservicebus.NewClient(cfg.Namespace, cred, opts)
	if err != nil {
		return nil, fmt.Errorf("servicebus: client: %w", err)
	}
	return c, nil
}

// Credential builds the Entra ID credential cfg selects (or returns cfg.Credential).
func Credential(cfg Config) (azcore.TokenCredential, error) {
	if cfg.Credential != nil {
		return cfg.Credential, nil
	}
	switch cfg.Auth {
	case AuthClientSecret:
		c, err := azidentity.NewClientSecretCredential(cfg.TenantID, cfg.ClientID, cfg.ClientSecret, nil)
		if err != nil {
			return nil, fmt.Errorf("servicebus: client secret credential: %w", err)
		}
		return c, nil
	case AuthClientCertificate:
		data, err := os.ReadFile(cfg.CertificateFile)
		if err != nil {
			return nil, fmt.Errorf("servicebus: read certificate file: %w", err)
		}
		var pw []byte
		if cfg.CertificatePassword != "" {
			pw = []byte(cfg.CertificatePassword)
		}
		certs, key, err := azidentity.ParseCertificates(data, pw)
		if err != nil {
			return nil, fmt.Errorf("%w: certificate file %s: no usable certificate and key", ErrConfig, cfg.CertificateFile)
		}
		c, err := azidentity.NewClientCertificateCredential(cfg.TenantID, cfg.ClientID, certs, key, nil)
		if err != nil {
			return nil, fmt.Errorf("servicebus: client certificate credential: %w", err)
		}
		return c, nil
	case AuthManagedIdentity:
		o := &azidentity.ManagedIdentityCredentialOptions{}
		if cfg.ManagedIdentityClientID != "" {
			o.ID = azidentity.ClientID(cfg.ManagedIdentityClientID)
		}
		c, err := azidentity.NewManagedIdentityCredential(o)
		if err != nil {
			return nil, fmt.Errorf("servicebus: managed identity credential: %w", err)
		}
		return c, nil
	case AuthWorkloadIdentity:
		c, err := azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{
			TenantID: cfg.TenantID, ClientID: cfg.ClientID, TokenFilePath: cfg.TokenFile,
		})
		if err != nil {
			return nil, fmt.Errorf("servicebus: workload identity credential: %w", err)
		}
		return c, nil
	case AuthDefault:
		c, err := azidentity.NewDefaultAzureCredential(nil)
		if err != nil {
			return nil, fmt.Errorf("servicebus: default credential chain: %w", err)
		}
		return c, nil
	}
	return nil, fmt.Errorf("%w: auth kind %q has no Entra credential", ErrConfig, string(cfg.Auth))
}

// webSocketDialer connects AMQP over WebSockets (wss://host:443/$servicebus/websocket) through
// the given proxy or the environment's HTTPS_PROXY.
func webSocketDialer(proxy string) (func(context.Context, azservicebus.NewWebSocketConnArgs) (net.Conn, error), error) {
	proxyFn := http.ProxyFromEnvironment
	if proxy != "" {
		u, err := url.Parse(proxy)
		if err != nil {
			return nil, fmt.Errorf("%w: proxy URL", ErrConfig)
		}
		proxyFn = http.ProxyURL(u)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = proxyFn
	hc := &http.Client{Transport: tr}
	return func(ctx context.Context, args azservicebus.NewWebSocketConnArgs) (net.Conn, error) {
		u := args.Host
		if !strings.Contains(u, "://") {
			u = "wss://" + u
		}
		u = strings.TrimSuffix(u, "/") + "/$servicebus/websocket"
		conn, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{Subprotocols: []string{"amqp"}, HTTPClient: hc})
		if err != nil {
			return nil, fmt.Errorf("servicebus: websocket dial: %w", err)
		}
		conn.SetReadLimit(-1)
		return websocket.NetConn(context.Background(), conn, websocket.MessageBinary), nil
	}, nil
}

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	u.User = url.User("REDACTED")
	return u.String()
}
