package entra

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // x5t is SHA-1 by definition (RFC 7517 4.8)
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/adwriteback/adwriteback/integration/testca"
)

// ServiceBusAudience is the audience of a token for Service Bus data
// operations, as Entra ID sets it.
const ServiceBusAudience = "https://servicebus.azure.net"

// FederationAudience is the audience a federated (workload identity)
// assertion carries, as Entra ID expects it by default.
const FederationAudience = "api://AzureADTokenExchange"

// DefaultArcKeyDir is the only directory azidentity (MSAL) accepts the Arc
// challenge's key file from on Linux.
const DefaultArcKeyDir = "/var/opt/azcmagent/tokens"

// Options configure an Issuer. The zero value is an issuer with no
// clients.
type Options struct {
	// TenantID is the tenant's id; "": a random UUID.
	TenantID string
	// Clients are the applications (and at most one managed identity)
	// registered in the tenant.
	Clients []Client
	// Lifetime of an access token; 0: one hour.
	Lifetime time.Duration
	// Dir receives the CA, JWKS, secret, certificate and token files; "":
	// a temporary directory of the test.
	Dir string
	// ArcKeyDir is where the Arc challenge writes its key files; "":
	// DefaultArcKeyDir (created if missing).
	ArcKeyDir string
	// Hosts are extra names the HTTPS certificate covers (it always
	// covers 127.0.0.1 and localhost).
	Hosts []string
	// CA issues the HTTPS certificate; nil: a CA of the issuer's own. A
	// harness passes its one CA, so a client trusts one CA file.
	CA *testca.CA
}

// Client is one application registration (or the Arc machine's
// managed identity) and how the test wants it to behave.
type Client struct {
	// Name is the test's handle for the client (Issuer.Client); required
	// and unique.
	Name string
	// ID is the client (application) id; "": a random UUID.
	ID string
	// Roles go into the client's tokens (see the package doc).
	Roles []string
	// ManagedIdentity makes the client the system-assigned identity the
	// Arc endpoint issues tokens for; at most one client sets it.
	ManagedIdentity bool
	// SecretExpired makes the token endpoint refuse the client's secret
	// as expired (AADSTS7000222), as after the secret's end date.
	SecretExpired bool
	// Audience, if set, replaces ServiceBusAudience in the client's
	// tokens (a token for the wrong resource).
	Audience string
	// Lifetime overrides Options.Lifetime for this client's tokens.
	Lifetime time.Duration
	// ExpiredTokens makes the client's tokens expired when issued (exp a
	// minute in the past) while the token response still announces the
	// full lifetime, as an issuer whose clock is behind would.
	ExpiredTokens bool
	// Subject is the federated credential's subject the client trusts;
	// "": system:serviceaccount:adwriteback:<Name>.
	Subject string
}

// ClientInfo is what a connector needs to authenticate as a client.
// Secret and the key inside CertFile are secrets: never log them.
type ClientInfo struct {
	Name, ID string
	// ObjectID is the service principal's object id (the token's oid).
	ObjectID string
	// Secret is the client secret, also in SecretFile.
	Secret     string
	SecretFile string
	// CertFile holds the client certificate and its private key (PEM),
	// as azidentity.ParseCertificates reads it; Certificate and Key are
	// the same, parsed.
	CertFile    string
	Certificate *x509.Certificate
	Key         *rsa.PrivateKey
	// TokenFile is the federated token (AZURE_FEDERATED_TOKEN_FILE) for
	// workload identity; Subject is its sub.
	TokenFile string
	Subject   string
}

type client struct {
	Client
	info ClientInfo
}

// Issuer is a running token issuer.
type Issuer struct {
	o        Options
	ca       *testca.CA
	srv      *httptest.Server
	arc      *httptest.Server
	tenant   string
	dir      string
	key      *rsa.PrivateKey
	kid      string
	fedKey   *rsa.PrivateKey
	fedKid   string
	clients  map[string]*client // by client id
	byName   map[string]*client
	mi       *client
	caFile   string
	jwksFile string

	mu      sync.Mutex        // guards what follows and the clients' SecretExpired and Roles
	arcKeys map[string]string // key file content -> path
	closed  bool
}

// Start starts an issuer for the test and stops it at the test's end.
func Start(t testing.TB, o Options) *Issuer {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	iss, err := New(o)
	if err != nil {
		t.Fatalf("start the Entra token issuer: %v", err)
	}
	t.Cleanup(func() {
		if err := iss.Close(); err != nil {
			t.Errorf("entra: close: %v", err)
		}
	})
	return iss
}

// New starts an issuer; the caller must Close it. Options.Dir must be set.
func New(o Options) (*Issuer, error) {
	if o.Dir == "" {
		return nil, errors.New("entra: Options.Dir is required")
	}
	if o.TenantID == "" {
		o.TenantID = uuid.NewString()
	}
	if o.Lifetime == 0 {
		o.Lifetime = time.Hour
	}
	if o.ArcKeyDir == "" {
		o.ArcKeyDir = DefaultArcKeyDir
	}
	iss := &Issuer{o: o, tenant: o.TenantID, dir: o.Dir, clients: map[string]*client{},
		byName: map[string]*client{}, arcKeys: map[string]string{}}
	var err error
	if iss.ca = o.CA; iss.ca == nil {
		if iss.ca, err = testca.New("adwriteback test CA (entra)"); err != nil {
			return nil, err
		}
	}
	if iss.key, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return nil, fmt.Errorf("entra: signing key: %w", err)
	}
	iss.kid = keyID(&iss.key.PublicKey)
	if iss.fedKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return nil, fmt.Errorf("entra: federation key: %w", err)
	}
	iss.fedKid = keyID(&iss.fedKey.PublicKey)

	cert, err := iss.ca.ServerCert(append([]string{"127.0.0.1", "localhost"}, o.Hosts...)...)
	if err != nil {
		return nil, err
	}
	iss.srv = httptest.NewUnstartedServer(http.HandlerFunc(iss.serveHTTPS))
	iss.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	iss.srv.StartTLS()
	iss.arc = httptest.NewServer(http.HandlerFunc(iss.serveArc))

	if err := iss.writeFiles(); err != nil {
		iss.Close()
		return nil, err
	}
	for _, c := range o.Clients {
		if err := iss.register(c); err != nil {
			iss.Close()
			return nil, err
		}
	}
	return iss, nil
}

func (iss *Issuer) writeFiles() error {
	iss.caFile = filepath.Join(iss.dir, "entra-ca.pem")
	if err := os.WriteFile(iss.caFile, iss.ca.PEM(), 0o644); err != nil {
		return fmt.Errorf("entra: %w", err)
	}
	b, err := json.Marshal(iss.jwks())
	if err != nil {
		return fmt.Errorf("entra: jwks: %w", err)
	}
	iss.jwksFile = filepath.Join(iss.dir, "entra-jwks.json")
	if err := os.WriteFile(iss.jwksFile, b, 0o644); err != nil {
		return fmt.Errorf("entra: %w", err)
	}
	return nil
}

func (iss *Issuer) register(c Client) error {
	if c.Name == "" {
		return errors.New("entra: a client needs a Name")
	}
	if _, dup := iss.byName[c.Name]; dup {
		return fmt.Errorf("entra: client %q registered twice", c.Name)
	}
	if c.ID == "" {
		c.ID = uuid.NewString()
	}
	if c.Subject == "" {
		c.Subject = "system:serviceaccount:adwriteback:" + c.Name
	}
	if c.ManagedIdentity && iss.mi != nil {
		return fmt.Errorf("entra: clients %q and %q are both the managed identity", iss.mi.Name, c.Name)
	}
	rc := &client{Client: c}
	rc.info = ClientInfo{Name: c.Name, ID: c.ID, ObjectID: uuid.NewString(), Subject: c.Subject}
	sec := make([]byte, 30)
	if _, err := rand.Read(sec); err != nil {
		return fmt.Errorf("entra: secret: %w", err)
	}
	// Entra's secrets are 40 characters of this alphabet.
	rc.info.Secret = strings.NewReplacer("+", "~", "/", "_").Replace(base64.StdEncoding.EncodeToString(sec))
	base := filepath.Join(iss.dir, "entra-"+c.Name)
	rc.info.SecretFile = base + ".secret"
	if err := os.WriteFile(rc.info.SecretFile, []byte(rc.info.Secret), 0o600); err != nil {
		return fmt.Errorf("entra: %w", err)
	}
	if err := rc.makeCertificate(base + "-cert.pem"); err != nil {
		return err
	}
	tok, err := iss.FederatedToken(c.Subject, time.Hour)
	if err != nil {
		return err
	}
	rc.info.TokenFile = base + ".token"
	if err := os.WriteFile(rc.info.TokenFile, []byte(tok), 0o600); err != nil {
		return fmt.Errorf("entra: %w", err)
	}
	iss.clients[c.ID] = rc
	iss.byName[c.Name] = rc
	if c.ManagedIdentity {
		iss.mi = rc
	}
	return nil
}

// makeCertificate makes the client's self-signed certificate (as an app
// registration's certificate credential usually is) and writes it with
// its key to path.
func (c *client) makeCertificate(path string) error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("entra: client key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: c.Name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("entra: client certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("entra: client certificate: %w", err)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("entra: client key: %w", err)
	}
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	b = append(b, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk})...)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("entra: %w", err)
	}
	c.info.CertFile, c.info.Certificate, c.info.Key = path, cert, key
	return nil
}

// Close stops the servers and removes the Arc key files it wrote.
func (iss *Issuer) Close() error {
	iss.mu.Lock()
	if iss.closed {
		iss.mu.Unlock()
		return nil
	}
	iss.closed = true
	var errs []error
	for _, p := range iss.arcKeys {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	iss.arcKeys = map[string]string{}
	iss.mu.Unlock()
	if iss.srv != nil {
		iss.srv.Close()
	}
	if iss.arc != nil {
		iss.arc.Close()
	}
	return errors.Join(errs...)
}

// TenantID is the tenant's id.
func (iss *Issuer) TenantID() string { return iss.tenant }

// AuthorityHost is the URL azidentity's Cloud.ActiveDirectoryAuthorityHost
// takes (https://127.0.0.1:port/).
func (iss *Issuer) AuthorityHost() string { return iss.srv.URL + "/" }

// Issuer is the iss of the tokens (and the OIDC issuer of the tenant).
func (iss *Issuer) Issuer() string { return iss.srv.URL + "/" + iss.tenant + "/v2.0" }

// TokenEndpoint is the tenant's token endpoint.
func (iss *Issuer) TokenEndpoint() string {
	return iss.srv.URL + "/" + iss.tenant + "/oauth2/v2.0/token"
}

// FederationIssuer is the iss of the federated tokens the issuer trusts.
func (iss *Issuer) FederationIssuer() string { return iss.srv.URL + "/federation" }

// CA is the test CA that signed the HTTPS certificate.
func (iss *Issuer) CA() *testca.CA { return iss.ca }

// CAFile is the CA certificate's PEM file.
func (iss *Issuer) CAFile() string { return iss.caFile }

// CertPool trusts the CA only.
func (iss *Issuer) CertPool() *x509.CertPool { return iss.ca.Pool() }

// JWKSFile holds the token signing keys as a JWKS (the emulator reads it).
func (iss *Issuer) JWKSFile() string { return iss.jwksFile }

// HTTPClient is an HTTP client that trusts the CA.
func (iss *Issuer) HTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: iss.ca.Pool(), MinVersion: tls.VersionTLS12}
	tr.Proxy = nil
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// ClientOptions point an azidentity credential at the issuer: the
// authority host and a transport trusting the CA. Set
// DisableInstanceDiscovery too (a field of each credential's options).
func (iss *Issuer) ClientOptions() azcore.ClientOptions {
	return azcore.ClientOptions{
		Cloud: cloud.Configuration{
			ActiveDirectoryAuthorityHost: iss.AuthorityHost(),
			Services:                     map[cloud.ServiceName]cloud.ServiceConfiguration{},
		},
		Transport: iss.HTTPClient(),
	}
}

// Client is the registered client named name; it panics on an unknown
// name (a mistake in the test).
func (iss *Issuer) Client(name string) ClientInfo {
	c, ok := iss.byName[name]
	if !ok {
		panic("entra: no client named " + name)
	}
	return c.info
}

// ArcEnv is the environment that makes azidentity's
// ManagedIdentityCredential use the issuer's Arc endpoint.
func (iss *Issuer) ArcEnv() map[string]string {
	return map[string]string{
		"IDENTITY_ENDPOINT": iss.arc.URL + "/metadata/identity/oauth2/token",
		"IMDS_ENDPOINT":     iss.arc.URL,
	}
}

// FederatedToken is a federated token for subject, as a workload
// identity's token file holds it, valid for lifetime (negative: already
// expired).
func (iss *Issuer) FederatedToken(subject string, lifetime time.Duration) (string, error) {
	now := time.Now()
	claims := jwt.MapClaims{
		"iss": iss.FederationIssuer(), "sub": subject, "aud": FederationAudience,
		"iat": now.Unix(), "nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(lifetime).Unix(),
	}
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	t.Header["kid"] = iss.fedKid
	s, err := t.SignedString(iss.fedKey)
	if err != nil {
		return "", fmt.Errorf("entra: sign federated token: %w", err)
	}
	return s, nil
}

// jwk is one RSA public key of a JWKS.
type jwk struct {
	Kty string   `json:"kty"`
	Use string   `json:"use"`
	Alg string   `json:"alg"`
	Kid string   `json:"kid"`
	N   string   `json:"n"`
	E   string   `json:"e"`
	X5t string   `json:"x5t,omitempty"`
	X5c []string `json:"x5c,omitempty"`
}

type jwkSet struct {
	Keys []jwk `json:"keys"`
}

func rsaJWK(pub *rsa.PublicKey, kid string) jwk {
	return jwk{Kty: "RSA", Use: "sig", Alg: "RS256", Kid: kid,
		N: base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		E: base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes())}
}

func (iss *Issuer) jwks() jwkSet { return jwkSet{Keys: []jwk{rsaJWK(&iss.key.PublicKey, iss.kid)}} }

// keyID is a key's id: the base64url SHA-256 of its modulus, shortened.
func keyID(pub *rsa.PublicKey) string {
	s := sha256.Sum256(pub.N.Bytes())
	return base64.RawURLEncoding.EncodeToString(s[:12])
}

// thumbprints are the x5t and x5t#S256 of a certificate, decoded.
func thumbprints(cert *x509.Certificate) (sha1Sum, sha256Sum []byte) {
	a := sha1.Sum(cert.Raw) //nolint:gosec // x5t
	b := sha256.Sum256(cert.Raw)
	return a[:], b[:]
}
