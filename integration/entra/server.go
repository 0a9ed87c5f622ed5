package entra

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// oauthError is a refusal in Entra's shape.
type oauthError struct {
	status int
	code   string // error
	aadsts int
	desc   string
}

func (e *oauthError) Error() string { return fmt.Sprintf("%s: AADSTS%d: %s", e.code, e.aadsts, e.desc) }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (iss *Issuer) refuse(w http.ResponseWriter, e *oauthError) {
	writeJSON(w, e.status, map[string]any{
		"error":             e.code,
		"error_description": fmt.Sprintf("AADSTS%d: %s Trace ID: %s Correlation ID: %s Timestamp: %s", e.aadsts, e.desc, uuid.NewString(), uuid.NewString(), time.Now().UTC().Format("2006-01-02 15:04:05Z")),
		"error_codes":       []int{e.aadsts},
		"timestamp":         time.Now().UTC().Format("2006-01-02 15:04:05Z"),
		"trace_id":          uuid.NewString(),
		"correlation_id":    uuid.NewString(),
	})
}

// serveHTTPS is the identity platform: discovery, JWKS, token endpoint.
func (iss *Issuer) serveHTTPS(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) == 2 && parts[0] == "federation" && parts[1] == "keys" {
		writeJSON(w, 200, jwkSet{Keys: []jwk{rsaJWK(&iss.fedKey.PublicKey, iss.fedKid)}})
		return
	}
	if len(parts) < 2 {
		http.NotFound(w, r)
		return
	}
	if parts[0] != iss.tenant {
		iss.refuse(w, &oauthError{400, "invalid_request", 90002, "Tenant '" + parts[0] + "' not found."})
		return
	}
	switch rest := strings.Join(parts[1:], "/"); rest {
	case "v2.0/.well-known/openid-configuration":
		base := iss.srv.URL + "/" + iss.tenant
		writeJSON(w, 200, map[string]any{
			"issuer":                                iss.Issuer(),
			"token_endpoint":                        iss.TokenEndpoint(),
			"authorization_endpoint":                base + "/oauth2/v2.0/authorize",
			"jwks_uri":                              base + "/discovery/v2.0/keys",
			"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
			"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
			"subject_types_supported":               []string{"pairwise"},
			"id_token_signing_alg_values_supported": []string{"RS256"},
			"tenant_region_scope":                   "EU",
			"cloud_instance_name":                   "adwriteback.test",
		})
	case "discovery/v2.0/keys":
		writeJSON(w, 200, iss.jwks())
	case "oauth2/v2.0/token":
		if r.Method != http.MethodPost {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		iss.token(w, r)
	default:
		http.NotFound(w, r)
	}
}

const assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

func (iss *Issuer) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		iss.refuse(w, &oauthError{400, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'."})
		return
	}
	f := r.PostForm
	if gt := f.Get("grant_type"); gt != "client_credentials" {
		iss.refuse(w, &oauthError{400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type '" + gt + "'."})
		return
	}
	c, ok := iss.clients[f.Get("client_id")]
	if !ok || c.ManagedIdentity {
		iss.refuse(w, &oauthError{400, "unauthorized_client", 700016, "Application with identifier '" + f.Get("client_id") + "' was not found in the directory."})
		return
	}
	resource, oerr := scopeResource(f.Get("scope"))
	if oerr != nil {
		iss.refuse(w, oerr)
		return
	}
	switch {
	case f.Get("client_secret") != "":
		oerr = iss.checkSecret(c, f.Get("client_secret"))
	case f.Get("client_assertion_type") == assertionType && f.Get("client_assertion") != "":
		oerr = iss.checkAssertion(c, f.Get("client_assertion"))
	default:
		oerr = &oauthError{401, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'."}
	}
	if oerr != nil {
		iss.refuse(w, oerr)
		return
	}
	tok, lifetime, err := iss.mint(c, resource)
	if err != nil {
		iss.refuse(w, &oauthError{500, "temporarily_unavailable", 90033, err.Error()})
		return
	}
	writeJSON(w, 200, map[string]any{
		"token_type": "Bearer", "expires_in": int(lifetime.Seconds()), "ext_expires_in": int(lifetime.Seconds()),
		"access_token": tok,
	})
}

// scopeResource is the resource a client-credentials scope names
// (https://servicebus.azure.net//.default: https://servicebus.azure.net).
// MSAL adds the OIDC scopes openid, offline_access and profile, which
// Entra ignores in this flow.
func scopeResource(scopes string) (string, *oauthError) {
	var scope string
	for _, s := range strings.Fields(scopes) {
		switch s {
		case "openid", "offline_access", "profile":
		default:
			if scope != "" {
				return "", &oauthError{400, "invalid_scope", 70011, "The provided request must include a single resource's /.default scope; it has " + scopes + "."}
			}
			scope = s
		}
	}
	if !strings.HasSuffix(scope, "/.default") {
		return "", &oauthError{400, "invalid_scope", 1002012, "The provided value for scope " + scope + " is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."}
	}
	res := strings.TrimRight(strings.TrimSuffix(scope, "/.default"), "/")
	if res != ServiceBusAudience {
		return "", &oauthError{400, "invalid_resource", 500011, "The resource principal named " + res + " was not found in the tenant."}
	}
	return res, nil
}

func (iss *Issuer) checkSecret(c *client, s string) *oauthError {
	iss.mu.Lock()
	expired := c.SecretExpired
	iss.mu.Unlock()
	if subtle.ConstantTimeCompare([]byte(s), []byte(c.info.Secret)) != 1 {
		return &oauthError{401, "invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '" + c.ID + "'."}
	}
	if expired {
		return &oauthError{401, "invalid_client", 7000222, "The provided client secret keys for app '" + c.ID + "' are expired. Visit the Azure portal to create new keys for your app."}
	}
	return nil
}

// checkAssertion verifies a client assertion: a certificate assertion
// when its header names a certificate thumbprint, else a federated one.
func (iss *Issuer) checkAssertion(c *client, assertion string) *oauthError {
	tok, _, err := jwt.NewParser().ParseUnverified(assertion, jwt.MapClaims{})
	if err != nil {
		return &oauthError{401, "invalid_client", 50027, "JWT token is invalid or malformed."}
	}
	x5t, _ := tok.Header["x5t"].(string)
	x5t256, _ := tok.Header["x5t#S256"].(string)
	if x5t != "" || x5t256 != "" {
		return iss.checkCertAssertion(c, assertion, x5t, x5t256)
	}
	return iss.checkFederatedAssertion(c, assertion)
}

func decodeThumb(s string) []byte {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b
		}
	}
	return nil
}

func (iss *Issuer) checkCertAssertion(c *client, assertion, x5t, x5t256 string) *oauthError {
	s1, s256 := thumbprints(c.info.Certificate)
	if (x5t256 == "" || !bytes.Equal(decodeThumb(x5t256), s256)) && (x5t == "" || !bytes.Equal(decodeThumb(x5t), s1)) {
		return &oauthError{401, "invalid_client", 700027, "The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found.]"}
	}
	_, err := jwt.Parse(assertion, func(*jwt.Token) (any, error) { return &c.info.Key.PublicKey, nil },
		jwt.WithValidMethods([]string{"RS256", "PS256"}), jwt.WithAudience(iss.TokenEndpoint()),
		jwt.WithIssuer(c.ID), jwt.WithSubject(c.ID), jwt.WithExpirationRequired(), jwt.WithLeeway(5*time.Minute))
	if err != nil {
		return &oauthError{401, "invalid_client", 700027, "Client assertion failed signature validation or its claims are invalid: " + err.Error()}
	}
	return nil
}

func (iss *Issuer) checkFederatedAssertion(c *client, assertion string) *oauthError {
	tok, err := jwt.Parse(assertion, func(t *jwt.Token) (any, error) {
		if kid, _ := t.Header["kid"].(string); kid != iss.fedKid {
			return nil, errors.New("unknown signing key")
		}
		return &iss.fedKey.PublicKey, nil
	}, jwt.WithValidMethods([]string{"RS256"}), jwt.WithExpirationRequired())
	if err != nil {
		if errors.Is(err, jwt.ErrTokenExpired) {
			return &oauthError{400, "invalid_client", 700024, "Client assertion is not within its valid time range."}
		}
		return &oauthError{401, "invalid_client", 700027, "Client assertion failed signature validation: " + err.Error()}
	}
	cl := tok.Claims.(jwt.MapClaims)
	issuer, _ := cl.GetIssuer()
	sub, _ := cl.GetSubject()
	aud, _ := cl.GetAudience()
	if issuer != iss.FederationIssuer() {
		return &oauthError{400, "invalid_request", 700211, "No matching federated identity record found for presented assertion issuer '" + issuer + "'."}
	}
	if sub != c.Subject {
		return &oauthError{400, "invalid_request", 700213, "No matching federated identity record found for presented assertion subject '" + sub + "'."}
	}
	if len(aud) != 1 || aud[0] != FederationAudience {
		return &oauthError{400, "invalid_request", 700212, "No matching federated identity record found for presented assertion audience."}
	}
	return nil
}

// mint signs an access token for c and returns it with the lifetime the
// response announces.
func (iss *Issuer) mint(c *client, resource string) (string, time.Duration, error) {
	lifetime := c.Lifetime
	if lifetime == 0 {
		lifetime = iss.o.Lifetime
	}
	now := time.Now()
	start := now
	if c.ExpiredTokens {
		start = now.Add(-lifetime - time.Minute)
	}
	aud := resource
	if c.Audience != "" {
		aud = c.Audience
	}
	iss.mu.Lock()
	roles := append([]string{}, c.Roles...)
	iss.mu.Unlock()
	claims := jwt.MapClaims{
		"iss": iss.Issuer(), "aud": aud, "tid": iss.tenant,
		"iat": start.Unix(), "nbf": start.Add(-5 * time.Minute).Unix(), "exp": start.Add(lifetime).Unix(),
		"oid": c.info.ObjectID, "sub": c.info.ObjectID, "appid": c.ID, "azp": c.ID, "idtyp": "app",
		"roles": roles, "ver": "2.0", "uti": uuid.NewString(),
	}
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	t.Header["kid"] = iss.kid
	s, err := t.SignedString(iss.key)
	if err != nil {
		return "", 0, fmt.Errorf("entra: sign token: %w", err)
	}
	return s, lifetime, nil
}

// Mint signs an access token for the client named name without a token
// request (for tests of the emulator's checks alone).
func (iss *Issuer) Mint(name string) (string, error) {
	c, ok := iss.byName[name]
	if !ok {
		return "", fmt.Errorf("entra: no client named %q", name)
	}
	tok, _, err := iss.mint(c, ServiceBusAudience)
	return tok, err
}

// SigningKey is the key access tokens are signed with (for tests that
// forge a token the emulator must refuse, sign with another key).
func (iss *Issuer) SigningKey() *rsa.PrivateKey { return iss.key }

// serveArc is the Azure Arc agent's managed identity endpoint.
func (iss *Issuer) serveArc(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/metadata/identity/oauth2/token" || r.Method != http.MethodGet {
		http.NotFound(w, r)
		return
	}
	if r.Header.Get("Metadata") != "true" {
		writeJSON(w, 400, map[string]string{"error": "invalid_request", "error_description": "Required metadata header not specified"})
		return
	}
	q := r.URL.Query()
	if q.Get("api-version") == "" {
		writeJSON(w, 400, map[string]string{"error": "invalid_request", "error_description": "Required query variable 'api-version' is missing"})
		return
	}
	auth := r.Header.Get("Authorization")
	if auth == "" {
		path, err := iss.newArcKey()
		if err != nil {
			writeJSON(w, 500, map[string]string{"error": "server_error", "error_description": err.Error()})
			return
		}
		w.Header().Set("WWW-Authenticate", "Basic realm="+path)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if !iss.useArcKey(strings.TrimPrefix(auth, "Basic ")) {
		writeJSON(w, 401, map[string]string{"error": "unauthorized_client", "error_description": "Invalid or expired challenge token"})
		return
	}
	if iss.mi == nil {
		writeJSON(w, 400, map[string]string{"error": "invalid_request", "error_description": "Identity not found"})
		return
	}
	resource := strings.TrimRight(q.Get("resource"), "/")
	if resource != ServiceBusAudience {
		writeJSON(w, 400, map[string]string{"error": "invalid_resource", "error_description": "AADSTS500011: The resource principal named " + resource + " was not found in the tenant."})
		return
	}
	tok, lifetime, err := iss.mint(iss.mi, resource)
	if err != nil {
		writeJSON(w, 500, map[string]string{"error": "server_error", "error_description": err.Error()})
		return
	}
	now := time.Now()
	writeJSON(w, 200, map[string]string{
		"access_token": tok, "token_type": "Bearer", "resource": q.Get("resource"),
		"expires_in": strconv.Itoa(int(lifetime.Seconds())), "expires_on": strconv.FormatInt(now.Add(lifetime).Unix(), 10),
		"not_before": strconv.FormatInt(now.Unix(), 10),
	})
}

// newArcKey writes a fresh challenge key file, as the Arc agent does.
func (iss *Issuer) newArcKey() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	key := hex.EncodeToString(b)
	if err := os.MkdirAll(iss.o.ArcKeyDir, 0o700); err != nil {
		return "", fmt.Errorf("entra: arc key dir: %w", err)
	}
	path := filepath.Join(iss.o.ArcKeyDir, uuid.NewString()+".key")
	iss.mu.Lock()
	defer iss.mu.Unlock()
	if iss.closed {
		return "", errors.New("entra: closed")
	}
	if err := os.WriteFile(path, []byte(key), 0o600); err != nil {
		return "", fmt.Errorf("entra: arc key: %w", err)
	}
	iss.arcKeys[key] = path
	return path, nil
}

// useArcKey accepts a challenge key once and removes its file.
func (iss *Issuer) useArcKey(key string) bool {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	path, ok := iss.arcKeys[key]
	if !ok {
		return false
	}
	delete(iss.arcKeys, key)
	_ = os.Remove(path)
	return true
}

// SetSecretExpired makes the client's secret expired (or valid again)
// from now on, as its end date passing would; tokens already issued stay
// valid until they expire.
func (iss *Issuer) SetSecretExpired(name string, expired bool) error {
	c, ok := iss.byName[name]
	if !ok {
		return fmt.Errorf("entra: no client named %q", name)
	}
	iss.mu.Lock()
	defer iss.mu.Unlock()
	c.SecretExpired = expired
	return nil
}

// SetRoles replaces the roles of the client's next tokens, as a changed
// role assignment shows in the tokens issued after it.
func (iss *Issuer) SetRoles(name string, roles ...string) error {
	c, ok := iss.byName[name]
	if !ok {
		return fmt.Errorf("entra: no client named %q", name)
	}
	iss.mu.Lock()
	defer iss.mu.Unlock()
	c.Roles = append([]string(nil), roles...)
	return nil
}
