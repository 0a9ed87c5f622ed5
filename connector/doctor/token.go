package doctor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/adwriteback/adwriteback/connector/config"
	"github.com/adwriteback/adwriteback/relay/proxy"
	"github.com/adwriteback/adwriteback/relay/servicebus"
)

// ServiceBusScope is the scope of a token for Service Bus data operations,
// whose tokens carry the audience servicebusAudience.
const (
	ServiceBusScope    = servicebusAudience + "/.default"
	servicebusAudience = "https://servicebus.azure.net"
)

// publicAuthority is Entra ID's authority in the public cloud.
const publicAuthority = "https://login.microsoftonline.com/"

// tokenProbe is what asking for a token found.
type tokenProbe struct {
	Check Check
	// Clock is the token endpoint's Date (zero when it gave none, or was
	// a plain-HTTP managed identity endpoint on this very host).
	Clock clockSource
	// Token is the access token (a secret: for the scrub only).
	Token string
}

// authority is the Entra ID authority the credential asks (as the
// connector resolves it: queue.authority_host, AZURE_AUTHORITY_HOST, the
// public cloud's).
func authority(q config.Queue, getenv func(string) string) string {
	if q.AuthorityHost != "" {
		return q.AuthorityHost
	}
	if h := getenv("AZURE_AUTHORITY_HOST"); h != "" {
		return h
	}
	return publicAuthority
}

// probeToken gets a token for ServiceBusScope with the connector's own
// credential (servicebus.Credential), as the SDK will when it connects:
// the check "entra token". With auth connection_string there is none to
// get.
func probeToken(ctx context.Context, q config.Queue, opts Options) tokenProbe {
	const name = "entra token"
	auth := orDefault(q.Auth, string(servicebus.AuthConnectionString))
	if auth == string(servicebus.AuthConnectionString) {
		return tokenProbe{Check: skip(name, "", "auth connection_string signs with the SAS key: no Entra ID token is needed")}
	}
	target := tokenTarget(q, opts.Getenv)
	cred, err := servicebus.Credential(q.ServiceBus())
	if err != nil {
		return tokenProbe{Check: TokenResult(err, q, target)}
	}
	tctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	var resp *http.Response
	t0 := opts.Clock.Now()
	tok, err := cred.GetToken(policy.WithCaptureResponse(tctx, &resp), policy.TokenRequestOptions{Scopes: []string{ServiceBusScope}})
	t1 := opts.Clock.Now()
	var afe *azidentity.AuthenticationFailedError
	if errors.As(err, &afe) && afe.RawResponse != nil {
		resp = afe.RawResponse
	}
	p := tokenProbe{Token: tok.Token}
	if resp != nil && resp.Request != nil && resp.Request.URL.Scheme == "https" {
		if d, derr := http.ParseTime(resp.Header.Get("Date")); derr == nil {
			p.Clock = clockSource{Name: "the token endpoint " + resp.Request.URL.Host, Date: d, Local: t0.Add(t1.Sub(t0) / 2)}
		}
	}
	if err != nil && (afe == nil || afe.RawResponse == nil) && isEntraTLS(auth) {
		// No answer from Entra ID: find out why with a request of our own
		// through the same proxy (azidentity keeps only the text), in a
		// time of its own (the token's may be spent on retries).
		ectx, cancel := context.WithTimeout(ctx, opts.Timeout)
		defer cancel()
		err = explainUnreachable(ectx, q, opts, err)
	}
	if err == nil {
		if c, bad := judgeToken(tok.Token, tok.ExpiresOn, opts.Clock.Now(), target); bad {
			p.Check = c
			return p
		}
	}
	p.Check = TokenResult(err, q, target)
	return p
}

// tokenClaims are the claims of an access token the doctor reads. It does
// not verify the signature: Service Bus does; the doctor only explains
// what Service Bus would refuse.
type tokenClaims struct {
	Aud json.RawMessage `json:"aud"`
	Exp int64           `json:"exp"`
}

// audiences is the token's aud, a string or a list.
func (c tokenClaims) audiences() []string {
	var one string
	if json.Unmarshal(c.Aud, &one) == nil {
		return []string{one}
	}
	var many []string
	_ = json.Unmarshal(c.Aud, &many)
	return many
}

// judgeToken checks what Service Bus checks of a token besides its
// signature and roles: the audience, and the expiry by this host's clock
// (the token response's expires_in, and the JWT's exp when the token is
// one). bad is false when nothing is wrong.
func judgeToken(tok string, expiresOn, now time.Time, target string) (c Check, bad bool) {
	const name = "entra token"
	exp := expiresOn
	parts := strings.Split(tok, ".")
	var claims tokenClaims
	if len(parts) == 3 {
		if b, err := base64.RawURLEncoding.DecodeString(parts[1]); err == nil && json.Unmarshal(b, &claims) == nil {
			if auds := claims.audiences(); len(auds) > 0 && !slices.ContainsFunc(auds, func(a string) bool {
				return strings.TrimRight(a, "/") == servicebusAudience
			}) {
				return fail(name, target, fmt.Sprintf("the token is for the audience %q, not %s: Service Bus will refuse it", strings.Join(auds, ", "), servicebusAudience),
					"the credential asked for "+ServiceBusScope+": check queue.authority_host (it must be the Entra ID authority of the namespace's cloud) and queue.tenant_id"), true
			}
			if claims.Exp > 0 && time.Unix(claims.Exp, 0).Before(exp) {
				exp = time.Unix(claims.Exp, 0)
			}
		}
	}
	if exp.Before(now) {
		return fail(name, target, fmt.Sprintf("the token obtained expires at %s, before now (%s) by this host's clock: Service Bus will refuse it",
			exp.UTC().Format(time.DateTime), now.UTC().Format(time.DateTime)),
			"see the clock skew check: this host's clock, or the token issuer's, is wrong; synchronise this host's clock with NTP"), true
	}
	return Check{}, false
}

// isEntraTLS reports whether auth asks Entra ID's HTTPS endpoint itself
// (and not a managed identity endpoint on the host).
func isEntraTLS(auth string) bool {
	switch servicebus.AuthKind(auth) {
	case servicebus.AuthClientSecret, servicebus.AuthClientCertificate, servicebus.AuthWorkloadIdentity:
		return true
	}
	return false
}

func tokenTarget(q config.Queue, getenv func(string) string) string {
	switch servicebus.AuthKind(q.Auth) {
	case servicebus.AuthManagedIdentity:
		return "managed identity"
	case servicebus.AuthDefault:
		return "default credential chain"
	}
	host := authority(q, getenv)
	if u, err := url.Parse(host); err == nil && u.Host != "" {
		host = u.Host
	}
	if q.TenantID != "" {
		return host + "/" + q.TenantID
	}
	return host
}

// unreachableError is a token request that got no answer, with the
// reason found by asking the authority ourselves.
type unreachableError struct {
	Host string
	Err  error
}

func (e *unreachableError) Error() string { return fmt.Sprintf("%s: %v", e.Host, e.Err) }
func (e *unreachableError) Unwrap() error { return e.Err }

// explainUnreachable asks the authority's OpenID configuration through
// the connector's proxy and trust, and returns why it cannot be had
// (an *unreachableError), or tokenErr when it can.
func explainUnreachable(ctx context.Context, q config.Queue, opts Options, tokenErr error) error {
	u, err := url.Parse(authority(q, opts.Getenv))
	if err != nil || u.Host == "" {
		return tokenErr
	}
	sel, err := proxy.New(q.Proxy.Config())
	if err != nil {
		return tokenErr
	}
	ans, err := fetchHTTPS(ctx, sel, u.Host, "", "/"+q.TenantID+"/v2.0/.well-known/openid-configuration", opts.Clock)
	if err != nil {
		return &unreachableError{Host: u.Host, Err: err}
	}
	h := u.Hostname()
	if fault, verr := verifyChain(ans.Chain, h, opts.Clock.Now(), caPools(q.CAFile)...); fault != chainOK {
		return &unreachableError{Host: u.Host, Err: &tls.CertificateVerificationError{UnverifiedCertificates: ans.Chain, Err: verr}}
	}
	return tokenErr
}

// caPools are the roots the connector trusts for the namespace and Entra
// ID: the system's and queue.ca_file's (when readable).
func caPools(caFile string) []*x509.CertPool {
	pools := []*x509.CertPool{nil}
	if p, err := (TLSSettings{CAFile: caFile}).roots(); err == nil && p != nil {
		pools = append(pools, p)
	}
	return pools
}

// entraError is an Entra ID token endpoint's refusal (RFC 6749 5.2, with
// Entra's AADSTS codes).
type entraError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
	Codes       []int  `json:"error_codes"`
}

// aadsts reads the refusal in resp; code 0 when it is not Entra's.
func aadsts(resp *http.Response) (code int, e entraError) {
	if resp == nil {
		return 0, e
	}
	body, err := runtime.Payload(resp)
	if err != nil || json.Unmarshal(body, &e) != nil || len(e.Codes) == 0 {
		return 0, e
	}
	// the description ends with trace and correlation ids: keep the words
	e.Description, _, _ = strings.Cut(e.Description, " Trace ID:")
	return e.Codes[0], e
}

// Entra ID's AADSTS codes the doctor explains.
const (
	aadstsInvalidSecret       = 7000215
	aadstsExpiredSecret       = 7000222
	aadstsUnknownClient       = 700016
	aadstsUnknownTenant       = 90002
	aadstsCertNotRegistered   = 700027
	aadstsAssertionTime       = 700024
	aadstsNoFederatedIdentity = 70021
	aadstsFederatedSubject    = 700213
)

// TokenResult explains the outcome of asking Entra ID for a token.
func TokenResult(err error, q config.Queue, target string) Check {
	const name = "entra token"
	auth := orDefault(q.Auth, string(servicebus.AuthConnectionString))
	if err == nil {
		return ok(name, target, "a token for %s was issued (auth %s)", ServiceBusScope, auth)
	}
	var afe *azidentity.AuthenticationFailedError
	var unreach *unreachableError
	switch {
	case errors.Is(err, servicebus.ErrConfig):
		return fail(name, target, fmt.Sprintf("the credential settings are invalid: %v", err), "correct the queue section of the configuration (auth "+auth+")")
	case errors.As(err, &afe) && afe.RawResponse != nil:
		return refusal(name, target, afe.RawResponse, q, auth)
	case errors.As(err, &unreach):
		return unreachable(name, target, unreach, q)
	case errors.Is(err, context.DeadlineExceeded):
		return fail(name, target, "no token in time: the token endpoint did not answer", authorityFix(q))
	}
	fix := authorityFix(q)
	switch servicebus.AuthKind(auth) {
	case servicebus.AuthManagedIdentity:
		fix = "run the connector on an Azure Arc-enabled server (azcmagent connect; IDENTITY_ENDPOINT and IMDS_ENDPOINT set for the service) or an Azure VM with a managed identity; for a user-assigned identity set queue.managed_identity_client_id"
	case servicebus.AuthWorkloadIdentity:
		fix = "check queue.token_file (or AZURE_FEDERATED_TOKEN_FILE), queue.tenant_id and queue.client_id; " + fix
	case servicebus.AuthClientCertificate:
		fix = "check queue.certificate_file (PEM or PKCS#12 with the private key) and queue.certificate_password_file; " + fix
	}
	return fail(name, target, fmt.Sprintf("no token: %v", err), fix)
}

// authorityFix is how to make the authority reachable.
func authorityFix(q config.Queue) string {
	host := "login.microsoftonline.com"
	if q.AuthorityHost != "" {
		if u, err := url.Parse(q.AuthorityHost); err == nil && u.Host != "" {
			host = u.Host
		}
	}
	return fmt.Sprintf("allow outbound TCP 443 to %s (directly, or through queue.proxy / HTTPS_PROXY); outside the public cloud set queue.authority_host", host)
}

func unreachable(name, target string, e *unreachableError, q config.Queue) Check {
	switch {
	case proxy.Is(e.Err):
		return fail(name, target, fmt.Sprintf("the proxy stopped the token request to %s: %v", e.Host, e.Err),
			fmt.Sprintf("see the proxy check; the proxy must allow CONNECT to %s:443 with the connector's credentials", e.Host))
	case isTLSVerify(e.Err):
		return fail(name, target, fmt.Sprintf("TLS to the token endpoint %s does not verify: %v", e.Host, e.Err),
			fmt.Sprintf("if a proxy inspects TLS, exempt %s from inspection; otherwise put the CA that issued its certificate in queue.ca_file", e.Host))
	}
	var dns *net.DNSError
	if errors.As(e.Err, &dns) {
		return fail(name, target, fmt.Sprintf("the token endpoint %s does not resolve: %v", e.Host, e.Err), authorityFix(q))
	}
	return fail(name, target, fmt.Sprintf("cannot reach the token endpoint %s: %v", e.Host, e.Err), authorityFix(q))
}

// secretSource names where the client secret comes from.
func secretSource(q config.Queue) string {
	return sourceOf("queue.client_secret", q.ClientSecretFile, q.ClientSecretEnv)
}

// refusal explains a token endpoint's refusal by its AADSTS code.
func refusal(name, target string, resp *http.Response, q config.Queue, auth string) Check {
	code, e := aadsts(resp)
	app := fmt.Sprintf("the app registration %q", q.ClientID)
	switch code {
	case aadstsInvalidSecret:
		return fail(name, target, fmt.Sprintf("Entra ID refused the client secret as invalid (AADSTS%d)", code),
			fmt.Sprintf("put the secret's Value (not its Secret ID) of %s in %s", app, secretSource(q)))
	case aadstsExpiredSecret:
		return fail(name, target, fmt.Sprintf("the client secret has expired (AADSTS%d)", code),
			fmt.Sprintf("create a new client secret for %s (Azure portal > App registrations > Certificates & secrets, or `az ad app credential reset --id %s --append`) and put its value in %s", app, q.ClientID, secretSource(q)))
	case aadstsUnknownClient:
		return fail(name, target, fmt.Sprintf("Entra ID knows no application %q in this tenant (AADSTS%d)", q.ClientID, code),
			"set queue.client_id to the Application (client) ID of the connector's app registration, in the tenant of queue.tenant_id")
	case aadstsUnknownTenant:
		return fail(name, target, fmt.Sprintf("Entra ID knows no tenant %q (AADSTS%d)", q.TenantID, code),
			"set queue.tenant_id to the Directory (tenant) ID of the tenant that holds the app registration (and queue.authority_host outside the public cloud)")
	case aadstsCertNotRegistered:
		return fail(name, target, fmt.Sprintf("Entra ID does not accept the certificate's signature: it is not registered on %s (AADSTS%d)", app, code),
			fmt.Sprintf("upload the public certificate of %s to %s (Certificates & secrets > Certificates)", q.CertificateFile, app))
	case aadstsAssertionTime:
		return fail(name, target, fmt.Sprintf("Entra ID refused the client assertion as outside its valid time (AADSTS%d)", code),
			"see the clock skew check: synchronise this host's clock with NTP")
	case aadstsNoFederatedIdentity, aadstsFederatedSubject:
		return fail(name, target, fmt.Sprintf("no federated credential of %s matches the token in the token file (AADSTS%d)", app, code),
			"add a federated credential to the app registration whose issuer and subject are the federated token's (queue.token_file)")
	case 0:
		what := "the token endpoint"
		if resp.Request != nil {
			what = resp.Request.URL.Host
		}
		fix := authorityFix(q)
		if servicebus.AuthKind(auth) == servicebus.AuthManagedIdentity {
			fix = "check that the server's managed identity is enabled (Azure Arc: azcmagent show; the service must be allowed to read the challenge file in /var/opt/azcmagent/tokens, e.g. group himds); for a user-assigned identity set queue.managed_identity_client_id"
		}
		return fail(name, target, fmt.Sprintf("%s refused the token request: HTTP %d", what, resp.StatusCode), fix)
	}
	return fail(name, target, fmt.Sprintf("Entra ID refused the token request: AADSTS%d %s: %s", code, e.Error, e.Description),
		fmt.Sprintf("look up AADSTS%d (https://login.microsoftonline.com/error?code=%d) and correct queue.tenant_id, queue.client_id and the credential of auth %s", code, code, auth))
}
