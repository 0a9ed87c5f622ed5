package doctor

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/Azure/go-amqp"

	"github.com/adwriteback/adwriteback/connector/config"
	"github.com/adwriteback/adwriteback/connector/health"
	"github.com/adwriteback/adwriteback/relay/proxy"
	"github.com/adwriteback/adwriteback/relay/proxy/proxytest"
	"github.com/adwriteback/adwriteback/relay/servicebus"
)

// entraRefusal is an AuthenticationFailedError carrying a token endpoint's
// answer in Entra ID's shape.
func entraRefusal(status, code int) error {
	body := fmt.Sprintf(`{"error":"invalid_client","error_description":"AADSTS%d: words. Trace ID: 1 Correlation ID: 2","error_codes":[%d]}`, code, code)
	req := &http.Request{Method: http.MethodPost, URL: &url.URL{Scheme: "https", Host: "login.microsoftonline.com", Path: "/t/oauth2/v2.0/token"}}
	return &azidentity.AuthenticationFailedError{RawResponse: &http.Response{StatusCode: status, Status: http.StatusText(status),
		Body: io.NopCloser(strings.NewReader(body)), Request: req, Header: http.Header{}}}
}

func TestTokenResult(t *testing.T) {
	q := config.Queue{Auth: "client_secret", TenantID: "tenant-1", ClientID: "app-1", ClientSecretFile: "/etc/adw/sb.secret", CertificateFile: "/etc/adw/sb.pem",
		ClientSecret: "s3cr3t-value"}
	mi := config.Queue{Auth: "managed_identity"}
	arc := &http.Request{URL: &url.URL{Scheme: "http", Host: "localhost:40342"}}
	for _, c := range []struct {
		name        string
		q           config.Queue
		err         error
		status      Status
		detail, fix string
	}{
		{"issued", q, nil, OK, "a token for " + ServiceBusScope, ""},
		{"invalid secret", q, entraRefusal(401, 7000215), Fail, "AADSTS7000215", "not its Secret ID"},
		{"expired secret", q, entraRefusal(401, 7000222), Fail, "expired (AADSTS7000222)", "/etc/adw/sb.secret (queue.client_secret_file)"},
		{"unknown client", q, entraRefusal(400, 700016), Fail, `no application "app-1"`, "queue.client_id"},
		{"unknown tenant", q, entraRefusal(400, 90002), Fail, `no tenant "tenant-1"`, "queue.tenant_id"},
		{"certificate", q, entraRefusal(401, 700027), Fail, "not registered", "/etc/adw/sb.pem"},
		{"assertion time", q, entraRefusal(400, 700024), Fail, "valid time", "clock"},
		{"federated", q, entraRefusal(400, 70021), Fail, "federated credential", "queue.token_file"},
		{"other code", q, entraRefusal(400, 50000), Fail, "AADSTS50000 invalid_client: AADSTS50000: words.", "AADSTS50000"},
		{"managed identity", mi, &azidentity.AuthenticationFailedError{RawResponse: &http.Response{StatusCode: 400, Request: arc,
			Body: io.NopCloser(strings.NewReader(`{"error":"invalid_request"}`))}}, Fail, "localhost:40342 refused the token request: HTTP 400", "azcmagent"},
		{"config", q, fmt.Errorf("%w: certificate file", servicebus.ErrConfig), Fail, "invalid", "queue section"},
		{"proxy auth", q, &unreachableError{Host: "login.microsoftonline.com", Err: &proxy.ConnectError{Proxy: "p:3128", Target: "login.microsoftonline.com:443", StatusCode: 407, Status: "407 Proxy Authentication Required"}},
			Fail, "the proxy stopped the token request", "CONNECT to login.microsoftonline.com:443"},
		{"inspected", q, &unreachableError{Host: "login.microsoftonline.com", Err: fmt.Errorf("wrapped: %w", x509.UnknownAuthorityError{})},
			Fail, "TLS to the token endpoint login.microsoftonline.com does not verify", "exempt login.microsoftonline.com from inspection"},
		{"dns", q, &unreachableError{Host: "login.microsoftonline.com", Err: &net.DNSError{Err: "no such host", Name: "login.microsoftonline.com", IsNotFound: true}},
			Fail, "does not resolve", "allow outbound TCP 443 to login.microsoftonline.com"},
		{"timeout", q, context.DeadlineExceeded, Fail, "in time", "queue.proxy"},
	} {
		got := TokenResult(c.err, c.q, "target")
		if got.Status != c.status || !strings.Contains(got.Detail, c.detail) || !strings.Contains(got.Fix, c.fix) {
			t.Errorf("%s: %s %q fix %q; want %s with %q, fix with %q", c.name, got.Status, got.Detail, got.Fix, c.status, c.detail, c.fix)
		}
		if got.Status != OK && got.Fix == "" {
			t.Errorf("%s: %s without a fix", c.name, got.Status)
		}
		if strings.Contains(got.Detail+got.Fix, "s3cr3t-value") {
			t.Errorf("%s: the client secret is in the check", c.name)
		}
	}
}

func TestCheckClock(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		ahead  time.Duration
		status Status
	}{{0, OK}, {30 * time.Second, OK}, {-ClockWarn - time.Second, Warn}, {ClockFail - time.Second, Warn}, {ClockFail + time.Second, Fail}, {-time.Hour, Fail}} {
		got := CheckClock([]clockSource{{}, {Name: "the namespace ns", Date: now, Local: now.Add(c.ahead)}})
		if got.Status != c.status || !strings.Contains(got.Detail, "the namespace ns") {
			t.Errorf("%s ahead: %s %q", c.ahead, got.Status, got.Detail)
		}
		if got.Status != OK && !strings.Contains(got.Fix, "NTP") {
			t.Errorf("%s ahead: fix %q", c.ahead, got.Fix)
		}
	}
	if got := CheckClock([]clockSource{{}}); got.Status != Skip {
		t.Errorf("no source: %s", got.Status)
	}
}

func TestJudgeNamespaceChain(t *testing.T) {
	now := time.Now()
	const ns = "contoso.servicebus.windows.net"
	ca := newCA(t, "corp inspection CA")
	good := ca.leaf(t, ns, now.Add(-time.Hour), now.Add(200*24*time.Hour))
	for _, c := range []struct {
		name        string
		leaf        *x509.Certificate
		caFile      string
		status      Status
		detail, fix string
	}{
		{"trusted by ca_file", good, ca.file, OK, `issued by "corp inspection CA", expires in 199 days`, ""},
		{"untrusted", good, "", Fail, `untrusted CA: the namespace's certificate is signed by "corp inspection CA"`, "inspects TLS, exempt *.servicebus.windows.net"},
		{"name mismatch", ca.leaf(t, "other.servicebus.windows.net", now.Add(-time.Hour), now.Add(200*24*time.Hour)), ca.file, Fail, "name mismatch", "queue.namespace"},
		{"expiring", ca.leaf(t, ns, now.Add(-time.Hour), now.Add(health.DefaultCertWarning-24*time.Hour)), ca.file, Warn, "expires in 12 day(s)", "renew"},
		{"expired", ca.leaf(t, ns, now.Add(-48*time.Hour), now.Add(-time.Hour)), ca.file, Fail, "not valid now", "clock"},
		{"unreadable ca_file", good, "/nonexistent/ca.pem", Fail, "cannot load queue.ca_file", "queue.ca_file"},
	} {
		got := judgeNamespaceChain("namespace tls", ns, ns, []*x509.Certificate{c.leaf}, c.caFile, now)
		if got.Status != c.status || !strings.Contains(got.Detail, c.detail) || !strings.Contains(got.Fix, c.fix) {
			t.Errorf("%s: %s %q fix %q; want %s with %q, fix with %q", c.name, got.Status, got.Detail, got.Fix, c.status, c.detail, c.fix)
		}
	}
}

func TestRoleResults(t *testing.T) {
	denied := &azservicebus.Error{Code: azservicebus.CodeUnauthorizedAccess}
	entraQ := config.Queue{Name: "commands", Auth: "client_secret", ClientID: "app-1"}
	sasQ := config.Queue{Name: "commands", Auth: "connection_string"}
	for _, c := range []struct {
		name        string
		got         Check
		detail, fix string
	}{
		{"listen, entra", QueueResult(denied, entraQ, "ns"), "Listen", `role "Azure Service Bus Data Receiver" on the queue commands`},
		{"listen, sas", QueueResult(denied, sasQ, "ns"), "without Listen", "connection_string_file"},
		{"send, entra", SendResult(denied, entraQ, "ns", ReplyTarget("replies")), "Send", `role "Azure Service Bus Data Sender" on the queue replies`},
		{"send, sas", SendResult(denied, sasQ, "ns", ReplyTarget("replies")), "Send", "Send right on the queue replies"},
	} {
		if c.got.Status != Fail || !strings.Contains(c.got.Detail, c.detail) || !strings.Contains(c.got.Fix, c.fix) {
			t.Errorf("%s: %s %q fix %q; want FAIL with %q, fix with %q", c.name, c.got.Status, c.got.Detail, c.got.Fix, c.detail, c.fix)
		}
	}
}

// TestProbeTokenUnreachable asks a token endpoint nobody listens on with
// the connector's own credential: azidentity keeps only the text of the
// failure, and the doctor finds the reason by asking itself.
func TestProbeTokenUnreachable(t *testing.T) {
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := dead.Addr().String()
	dead.Close()
	q := config.Queue{Name: "commands", Auth: "client_secret", Namespace: "contoso.servicebus.windows.net", TenantID: "tenant-1",
		ClientID: "app-1", ClientSecret: "s3cr3t-value", AuthorityHost: "https://" + addr + "/"}
	// azidentity retries a refused connection until the time is up
	opts := Options{Timeout: 2 * time.Second}
	opts.setDefaults()
	p := probeToken(context.Background(), q, opts)
	if c := p.Check; c.Status != Fail || !strings.Contains(c.Detail, "cannot reach the token endpoint "+addr) || !strings.Contains(c.Fix, "allow outbound TCP 443 to "+addr) {
		t.Errorf("%s %q fix %q", c.Status, c.Detail, c.Fix)
	}
}

func TestJudgeToken(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	jwt := func(claims string) string {
		return "e30." + base64.RawURLEncoding.EncodeToString([]byte(claims)) + ".c2ln"
	}
	later := now.Add(time.Hour)
	for _, c := range []struct {
		name   string
		tok    string
		exp    time.Time
		bad    bool
		detail string
	}{
		{"servicebus", jwt(fmt.Sprintf(`{"aud":"https://servicebus.azure.net/","exp":%d}`, later.Unix())), later, false, ""},
		{"audience list", jwt(fmt.Sprintf(`{"aud":["x","https://servicebus.azure.net"],"exp":%d}`, later.Unix())), later, false, ""},
		{"wrong audience", jwt(`{"aud":"https://storage.azure.com"}`), later, true, `audience "https://storage.azure.com"`},
		{"jwt expired", jwt(fmt.Sprintf(`{"aud":"https://servicebus.azure.net","exp":%d}`, now.Add(-time.Minute).Unix())), later, true, "before now"},
		{"response expired", "opaque-token", now.Add(-time.Second), true, "before now"},
		{"opaque", "opaque-token", later, false, ""},
	} {
		got, bad := judgeToken(c.tok, c.exp, now, "t")
		if bad != c.bad || !strings.Contains(got.Detail, c.detail) || (bad && (got.Status != Fail || got.Fix == "")) {
			t.Errorf("%s: bad %v, %s %q fix %q", c.name, bad, got.Status, got.Detail, got.Fix)
		}
	}
}

// TestProbeTokenProxyRefused sends the token request through a proxy that
// refuses the credentials: the doctor names the proxy, not Entra ID.
func TestProbeTokenProxyRefused(t *testing.T) {
	for _, k := range []string{"HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy"} {
		t.Setenv(k, "")
	}
	px := proxytest.Start(t, proxytest.Options{Username: "svc-adw", Password: "right-proxy-pw"})
	q := config.Queue{Name: "commands", Auth: "client_secret", Namespace: "contoso.servicebus.windows.net", TenantID: "tenant-1",
		ClientID: "app-1", ClientSecret: "s3cr3t-value", AuthorityHost: "https://login.adwriteback.test/", Transport: "websockets",
		Proxy: config.Proxy{URL: px.URL(), Username: "svc-adw", Password: "wrong-proxy-pw"}}
	opts := Options{Timeout: 2 * time.Second}
	opts.setDefaults()
	c := probeToken(context.Background(), q, opts).Check
	if c.Status != Fail || !strings.Contains(c.Detail, "the proxy stopped the token request to login.adwriteback.test") ||
		!strings.Contains(c.Fix, "CONNECT to login.adwriteback.test:443") {
		t.Errorf("%s %q fix %q", c.Status, c.Detail, c.Fix)
	}
	if strings.Contains(c.Detail+c.Fix, "proxy-pw") || strings.Contains(c.Detail+c.Fix, "s3cr3t") {
		t.Errorf("a secret is in the check: %s %s", c.Detail, c.Fix)
	}
}

// TestQueueFaults classifies what the queue checks meet by type: a token
// Entra ID refused is told as such (not as an unreachable namespace), and
// a refusal's AMQP description, when reachable, is shown on one line.
func TestQueueFaults(t *testing.T) {
	entraQ := config.Queue{Name: "commands", Auth: "client_secret", ClientID: "app-1", ClientSecretFile: "/etc/adw/sb.secret", Transport: "websockets"}
	listen := &amqp.Error{Condition: amqp.ErrCondUnauthorizedAccess,
		Description: "Unauthorized access. 'Listen' claim(s) are required\nto perform this operation. Resource: 'sb://ns/commands'."}
	audience := &amqp.Error{Condition: amqp.ErrCondUnauthorizedAccess, Description: "InvalidAudience: The audience 'https://storage.azure.com' is invalid"}
	for _, c := range []struct {
		name        string
		err         error
		fault       queueFault
		detail, fix string
		notFix      string
	}{
		{"token refused", entraRefusal(401, 7000222), faultTokenRefused, "Entra ID refused the token", "see the entra token check above; correct the file /etc/adw/sb.secret (queue.client_secret_file)", "DNS"},
		{"listen missing", fmt.Errorf("attach: %w", listen), faultUnauthorized,
			`Listen right): Service Bus says "Unauthorized access. 'Listen' claim(s) are required to perform`, `role "Azure Service Bus Data Receiver" on the queue commands`, "DNS"},
		{"wrong audience", audience, faultUnauthorized, `Service Bus says "InvalidAudience: The audience`, "the audience " + servicebusAudience, "DNS"},
		// azservicebus.Error does not unwrap: the code, not the description
		{"sdk unauthorized", &azservicebus.Error{Code: azservicebus.CodeUnauthorizedAccess}, faultUnauthorized, "lacks the Listen right", "Azure Service Bus Data Receiver", "DNS"},
		{"unreachable", &net.DNSError{Err: "no such host", Name: "ns", IsNotFound: true}, faultOther, "cannot reach the queue", "DNS", "entra token"},
	} {
		if got := classifyQueue(servicebus.Classify(c.err)); got != c.fault {
			t.Errorf("%s: classified %d, want %d", c.name, got, c.fault)
		}
		for _, got := range []Check{QueueResult(c.err, entraQ, "ns"), SendResult(c.err, entraQ, "ns", ReplyTarget("replies"))} {
			if got.Status != Fail || got.Fix == "" || strings.Contains(got.Fix, c.notFix) || strings.Contains(got.Detail, "\n") {
				t.Errorf("%s, %s: %s %q fix %q; want FAIL, one line, a fix without %q", c.name, got.Name, got.Status, got.Detail, got.Fix, c.notFix)
			}
		}
		got := QueueResult(c.err, entraQ, "ns")
		if !strings.Contains(got.Detail, c.detail) || !strings.Contains(got.Fix, c.fix) {
			t.Errorf("%s: %q fix %q; want %q, fix with %q", c.name, got.Detail, got.Fix, c.detail, c.fix)
		}
	}
}

// TestProxyStatus reports the status the proxy gave: tinyproxy answers a
// wrong password with 401, which is a refused credential too.
func TestProxyStatus(t *testing.T) {
	q := config.Queue{Transport: "websockets", Proxy: config.Proxy{URL: "http://p:3128", Username: "svc-adw", PasswordFile: "/etc/adw/proxy.pw"}}
	probe := servicebus.Probe{Proxy: "p:3128", Namespace: "ns", Address: "ns:443"}
	for _, c := range []struct {
		name, status string
		err          error
	}{
		{"401", "HTTP 401 Unauthorized", &proxy.ConnectError{Proxy: "p:3128", Target: "ns:443", StatusCode: 401, Status: "401 Unauthorized"}},
		{"407", "HTTP 407 Proxy Authentication Required", fmt.Errorf("dial: %w", &proxy.ConnectError{Proxy: "p:3128", Target: "ns:443", StatusCode: 407, Status: "407 Proxy Authentication Required"})},
		{"no status text", "HTTP 401 Unauthorized", &proxy.ConnectError{StatusCode: 401}},
		{"sentinel only", "", fmt.Errorf("dial: %w", proxy.ErrProxyAuth)},
	} {
		if got := proxyStatus(c.err); got != c.status {
			t.Errorf("%s: status %q, want %q", c.name, got, c.status)
		}
		got := ProxyResult(probe, c.err, q)
		if got.Status != Fail || !strings.Contains(got.Detail, "refused the credentials") || !strings.Contains(got.Fix, "/etc/adw/proxy.pw") {
			t.Errorf("%s: %s %q fix %q", c.name, got.Status, got.Detail, got.Fix)
		}
		if want := "(" + c.status + ")"; c.status != "" && !strings.Contains(got.Detail, want) {
			t.Errorf("%s: %q, want %q", c.name, got.Detail, want)
		}
		if c.name != "407" && strings.Contains(got.Detail, "407") {
			t.Errorf("%s: %q claims a 407", c.name, got.Detail)
		}
	}
}
