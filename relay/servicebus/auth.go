package servicebus

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"github.com/adwriteback/adwriteback/relay/proxy"
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
	// AuthorityHost is the Entra ID authority (https://login.microsoftonline.us/ for Azure
	// Government, a test issuer); empty means AZURE_AUTHORITY_HOST or the public cloud's. Set,
	// it is trusted as given: no instance discovery, which would ask the public cloud.
	AuthorityHost string

	// Transport: TransportAMQP (default) or TransportWebSockets.
	Transport TransportKind
	// Proxy is the HTTP CONNECT proxy for WebSockets, which also carries the Entra ID token
	// requests. Its zero value takes HTTPS_PROXY / NO_PROXY from the environment.
	Proxy proxy.Config
	// CAFile is a PEM bundle of roots trusted, beside the system pool, for the namespace and
	// the Entra ID token endpoint (private PKI, a TLS-inspecting proxy, a test broker).
	CAFile string
	// CustomEndpoint (host or host:port) is where the connection goes instead of the
	// namespace's own address, while TLS still verifies the namespace name and tokens name
	// the namespace: a private endpoint, an application gateway, a test broker on loopback.
	// The port defaults to 5671 (amqp) or 443 (websockets). The SDK's own option.
	CustomEndpoint string

	// Dials, if set, records why WebSocket connections fail (give the same tracker to the
	// Source, SourceConfig.Dials, so its link errors name the cause).
	Dials *DialTracker

	// Credential overrides the credential built from the Entra fields (embedding, tests).
	Credential azcore.TokenCredential
	// RetryOptions for the SDK; zero values take the SDK defaults.
	RetryOptions azservicebus.RetryOptions
}

// ErrConfig marks invalid transport configuration.
var ErrConfig = errors.New("servicebus: invalid configuration")

// FieldError is one problem with a Config: the setting it concerns, spelled as the
// connector's configuration spells it under queue: (auth, namespace, tenant_id, client_id,
// connection_string, client_secret, certificate_file, transport, authority_host, ca_file,
// custom_endpoint;
// proxy.url, proxy.username, proxy.no_proxy[i]), whether the setting is simply missing for
// the auth kind, and what is wrong. It wraps ErrConfig.
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
	for _, p := range cfg.Proxy.Problems() {
		add("proxy."+p.Field, false, "%s", p.Msg)
	}
	if cfg.Proxy.Configured() && cfg.Transport != TransportWebSockets {
		add("proxy.url", false, "AMQP on TCP 5671 cannot go through an HTTP proxy: set transport: websockets (AMQP over WebSockets on TCP 443 is the proxy path)")
	}
	if h := cfg.AuthorityHost; h != "" {
		if u, err := url.Parse(h); err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") {
			add("authority_host", false, "%q must be https://host/ (e.g. https://login.microsoftonline.us/)", proxy.Redact(h))
		}
	}
	if e := cfg.CustomEndpoint; e != "" {
		if strings.Contains(e, "://") || strings.Contains(e, "/") || strings.Contains(e, "@") {
			add("custom_endpoint", false, "%q must be host or host:port, not a URL", proxy.Redact(e))
		} else if _, port, err := net.SplitHostPort(e); err == nil && port == "" {
			add("custom_endpoint", false, "%q has an empty port", e)
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
	tlsCfg, err := tlsConfig(cfg.CAFile)
	if err != nil {
		return nil, err
	}
	sel, err := proxy.New(cfg.Proxy)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	opts := &azservicebus.ClientOptions{RetryOptions: cfg.RetryOptions, TLSConfig: tlsCfg, CustomEndpoint: cfg.CustomEndpoint}
	if cfg.Transport == TransportWebSockets {
		opts.NewWebSocketConn = webSocketDialer(sel, tlsCfg, cfg.CustomEndpoint, cfg.Dials)
	}
	if cfg.Auth == AuthConnectionString {
		c, err := azservicebus.NewClientFromConnectionString(cfg.ConnectionString, opts)
		if err != nil {
			// the SDK's message may quote the connection string: keep only our own text
			return nil, fmt.Errorf("%w: connection string is malformed", ErrConfig)
		}
		return c, nil
	}
	cred, err := credential(cfg, sel, tlsCfg)
	if err != nil {
		return nil, err
	}
	c, err := azservicebus.NewClient(cfg.Namespace, cred, opts)
	if err != nil {
		return nil, fmt.Errorf("servicebus: client: %w", err)
	}
	return c, nil
}

// tlsConfig verifies the namespace and the Entra ID token endpoint with the system pool plus
// the roots in caFile (a private PKI, a TLS-inspecting proxy's CA, a test CA); nil when
// caFile is empty: the system pool alone, the SDKs' default.
func tlsConfig(caFile string) (*tls.Config, error) {
	if caFile == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("%w: ca_file: %w", ErrConfig, err)
	}
	roots, err := x509.SystemCertPool()
	if err != nil {
		roots = x509.NewCertPool()
	}
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%w: ca_file %s holds no PEM certificate", ErrConfig, caFile)
	}
	return &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}, nil
}

// Credential builds the Entra ID credential cfg selects (or returns cfg.Credential); its
// token requests go through cfg.Proxy (or the environment's proxy) and trust cfg.CAFile.
func Credential(cfg Config) (azcore.TokenCredential, error) {
	sel, err := proxy.New(cfg.Proxy)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	tlsCfg, err := tlsConfig(cfg.CAFile)
	if err != nil {
		return nil, err
	}
	return credential(cfg, sel, tlsCfg)
}

func credential(cfg Config, sel *proxy.Selector, tlsCfg *tls.Config) (azcore.TokenCredential, error) {
	if cfg.Credential != nil {
		return cfg.Credential, nil
	}
	// every token request (login.microsoftonline.com, a managed identity endpoint) goes
	// through the connector's proxy choice (loopback and plain-http endpoints go direct) and
	// trusts what the namespace does
	co := azcore.ClientOptions{Transport: &http.Client{Transport: sel.Transport(tlsCfg)}}
	noDiscovery := cfg.AuthorityHost != ""
	if noDiscovery {
		co.Cloud = cloud.Configuration{ActiveDirectoryAuthorityHost: cfg.AuthorityHost}
	}
	switch cfg.Auth {
	case AuthClientSecret:
		c, err := azidentity.NewClientSecretCredential(cfg.TenantID, cfg.ClientID, cfg.ClientSecret,
			&azidentity.ClientSecretCredentialOptions{ClientOptions: co, DisableInstanceDiscovery: noDiscovery})
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
		c, err := azidentity.NewClientCertificateCredential(cfg.TenantID, cfg.ClientID, certs, key,
			&azidentity.ClientCertificateCredentialOptions{ClientOptions: co, DisableInstanceDiscovery: noDiscovery})
		if err != nil {
			return nil, fmt.Errorf("servicebus: client certificate credential: %w", err)
		}
		return c, nil
	case AuthManagedIdentity:
		o := &azidentity.ManagedIdentityCredentialOptions{ClientOptions: co}
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
			ClientOptions: co, TenantID: cfg.TenantID, ClientID: cfg.ClientID, TokenFilePath: cfg.TokenFile,
			DisableInstanceDiscovery: noDiscovery,
		})
		if err != nil {
			return nil, fmt.Errorf("servicebus: workload identity credential: %w", err)
		}
		return c, nil
	case AuthDefault:
		c, err := azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{ClientOptions: co,
			DisableInstanceDiscovery: noDiscovery})
		if err != nil {
			return nil, fmt.Errorf("servicebus: default credential chain: %w", err)
		}
		return c, nil
	}
	return nil, fmt.Errorf("%w: auth kind %q has no Entra credential", ErrConfig, string(cfg.Auth))
}
