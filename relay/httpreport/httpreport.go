// Package httpreport delivers signed results to an HTTPS endpoint: the alternative to replying
// on a Service Bus queue. It owns the retry policy (429, 5xx and network errors are retried
// with randomized exponential backoff up to a bound; other 4xx never are), the idempotency key
// (the command id), TLS verification (a CA file or the system pool), redirects (never
// followed: a 3xx is a failed delivery), the proxy (relay/proxy,
// shared with the queue), and the classification of
// failures into permanent and transient so the caller can decide not to complete the command
// message: a result that cannot be delivered is not lost, the command comes back and the stored
// outcome is sent again (until limits.max_attempts, when the engine dead-letters the command
// result_undeliverable). PROTOCOL.md §9.3 is the binding this package implements: an endpoint
// written from it alone must see exactly these requests.
package httpreport

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/hashicorp/go-retryablehttp"

	"github.com/adwriteback/adwriteback/relay/proxy"
)

// Defaults for Config's zero fields.
const (
	DefaultMaxAttempts = 5
	DefaultTimeout     = 15 * time.Second
	DefaultContentType = "application/vnd.adwriteback.result+json;v=1"
)

// IdempotencyKeyHeader carries the command id so the endpoint can drop duplicate deliveries.
const IdempotencyKeyHeader = "Idempotency-Key"

// Config configures a Reporter.
type Config struct {
	// URL is the https:// endpoint results are POSTed to (required). http:// is refused unless
	// AllowInsecureHTTP is set.
	URL string
	// CAFile is a PEM bundle of roots to trust; empty means the system pool.
	CAFile string
	// RootCAs, if set, is used instead of CAFile / the system pool (tests, embedding).
	RootCAs *x509.CertPool
	// AllowInsecureHTTP permits an http:// URL. Loud, for local development only.
	AllowInsecureHTTP bool
	// MaxAttempts bounds the attempts per report, the first included (DefaultMaxAttempts if 0).
	MaxAttempts int
	// Backoff paces the attempts of one report: one step per retry, starting over for each
	// report (nil: DefaultBackoff). A Retry-After header is honoured up to its MaxInterval.
	Backoff *backoff.ExponentialBackOff
	// Timeout bounds one attempt (DefaultTimeout if 0).
	Timeout time.Duration
	// ContentType of the body (DefaultContentType if empty).
	ContentType string
	// Header holds extra request headers (e.g. Authorization read from a secret file).
	Header http.Header
	// Logger receives one line per retry; nil discards.
	Logger *slog.Logger
	// Proxy is the HTTP CONNECT proxy the reports go through (the connector's one proxy);
	// its zero value takes HTTPS_PROXY / NO_PROXY from the environment.
	Proxy proxy.Config
}

// Kind says why a report failed.
type Kind int

// Failure kinds.
const (
	// KindRejected: the endpoint answered 4xx (not 429). Permanent: the same body will be
	// rejected again.
	KindRejected Kind = iota + 1
	// KindUnavailable: 429 or 5xx on every attempt. Transient.
	KindUnavailable
	// KindNetwork: no HTTP answer (connection refused, reset, timeout). Transient.
	KindNetwork
	// KindTLS: the server's certificate did not verify. Permanent until the configuration
	// changes.
	KindTLS
	// KindCanceled: the caller's context ended. Transient.
	KindCanceled
	// KindProxy: the proxy refused the connection (proxy.ErrProxyAuth for a 407,
	// proxy.ErrProxyRefused) or could not be reached (proxy.ErrProxyUnreachable). Transient:
	// the command comes back once the proxy settings are fixed.
	KindProxy
	// KindRedirect: the endpoint answered 3xx. The redirect is never followed (the result
	// would go where the configuration did not say, perhaps over plain http) nor retried
	// within the report; permanent until the configured URL is fixed. The command is not
	// completed, so it comes back and its stored outcome is reported again.
	KindRedirect
)

func (k Kind) String() string {
	switch k {
	case KindRejected:
		return "rejected"
	case KindUnavailable:
		return "unavailable"
	case KindNetwork:
		return "network"
	case KindTLS:
		return "tls"
	case KindCanceled:
		return "canceled"
	case KindProxy:
		return "proxy"
	case KindRedirect:
		return "redirect"
	}
	return "unknown"
}

// Sentinels for errors.Is.
var (
	// ErrPermanent matches errors that retrying the same report cannot fix.
	ErrPermanent = errors.New("httpreport: permanent failure")
	// ErrTransient matches errors that a later retry may fix.
	ErrTransient = errors.New("httpreport: transient failure")
	// ErrRedirect matches a report the endpoint answered with a redirect (KindRedirect).
	ErrRedirect = errors.New("httpreport: endpoint answered with a redirect")
)

// Error is a failed report.
type Error struct {
	Kind       Kind
	StatusCode int // last HTTP status, 0 if none
	Attempts   int
	// Detail is the start of the endpoint's answer, for admins.
	Detail string
	Err    error
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("httpreport: result delivery %s after %d attempt(s)", e.Kind, e.Attempts)
	if e.StatusCode != 0 {
		msg += fmt.Sprintf(": HTTP %d", e.StatusCode)
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Permanent reports whether retrying the same report cannot help.
func (e *Error) Permanent() bool {
	return e.Kind == KindRejected || e.Kind == KindTLS || e.Kind == KindRedirect
}

// Is matches ErrPermanent or ErrTransient, and ErrRedirect for a KindRedirect.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrRedirect:
		return e.Kind == KindRedirect
	case ErrPermanent:
		return e.Permanent()
	case ErrTransient:
		return !e.Permanent()
	}
	return false
}

// IsPermanent reports whether err is a permanent report failure.
func IsPermanent(err error) bool { return errors.Is(err, ErrPermanent) }

// Reporter POSTs result bodies. It is safe for concurrent use.
type Reporter struct {
	url         string
	contentType string
	header      http.Header
	maxAttempts int
	backoff     backoff.ExponentialBackOff
	http        *http.Client
	log         *slog.Logger
}

// New validates cfg and builds a Reporter.
func New(cfg Config) (*Reporter, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("httpreport: invalid URL %q", cfg.URL)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !cfg.AllowInsecureHTTP {
			return nil, fmt.Errorf("httpreport: URL %q is not https (set the explicit insecure flag to allow it)", cfg.URL)
		}
	default:
		return nil, fmt.Errorf("httpreport: URL %q: unsupported scheme %q", cfg.URL, u.Scheme)
	}
	bo := cfg.Backoff
	if bo == nil {
		bo = DefaultBackoff()
	}
	if cfg.MaxAttempts < 0 || bo.InitialInterval < 0 || bo.MaxInterval < 0 || cfg.Timeout < 0 {
		return nil, errors.New("httpreport: negative attempts, backoff or timeout")
	}
	attempts := cfg.MaxAttempts
	if attempts == 0 {
		attempts = DefaultMaxAttempts
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	roots := cfg.RootCAs
	if roots == nil && cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("httpreport: read CA file: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("httpreport: CA file %s holds no PEM certificate", cfg.CAFile)
		}
	}
	sel, err := proxy.New(cfg.Proxy)
	if err != nil {
		return nil, fmt.Errorf("httpreport: %w", err)
	}
	transport := sel.Transport(&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12})

	// A redirect is never followed: the result would go where the configuration did not
	// say (another host, plain http). Report turns the 3xx into a KindRedirect failure.
	httpClient := &http.Client{Transport: transport, Timeout: timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	ct := cfg.ContentType
	if ct == "" {
		ct = DefaultContentType
	}
	return &Reporter{url: cfg.URL, contentType: ct, header: cfg.Header.Clone(), maxAttempts: attempts,
		backoff: *bo, http: httpClient, log: cfg.Logger}, nil
}

// Report POSTs body (the signed result, bytes as given) with the command id as idempotency
// key. It returns nil once the endpoint answered 2xx, else an *Error; a 3xx is
// an Error of KindRedirect, its Location never followed.
func (r *Reporter) Report(ctx context.Context, commandID string, body []byte) error {
	if commandID == "" {
		return &Error{Kind: KindRejected, Err: errors.New("empty command id")}
	}
	req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodPost, r.url, body)
	if err != nil {
		return &Error{Kind: KindRejected, Err: err}
	}
	for k, v := range r.header {
		req.Header[k] = append([]string(nil), v...)
	}
	req.Header.Set("Content-Type", r.contentType)
	req.Header.Set(IdempotencyKeyHeader, commandID)
	req.Header.Set("User-Agent", "adwriteback")

	attempts := 0
	resp, err := r.do(req, &attempts)
	if err != nil {
		if ctx.Err() != nil {
			return &Error{Kind: KindCanceled, Attempts: attempts, Err: ctx.Err()}
		}
		if err = proxy.Classify(err); proxy.Is(err) {
			return &Error{Kind: KindProxy, Attempts: attempts, Err: err}
		}
		if isTLSError(err) {
			return &Error{Kind: KindTLS, Attempts: attempts, Err: err}
		}
		return &Error{Kind: KindNetwork, Attempts: attempts, Err: err}
	}
	defer resp.Body.Close()
	detail, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return &Error{Kind: KindRedirect, StatusCode: resp.StatusCode, Attempts: attempts, Detail: string(detail)}
	case retryableStatus(resp.StatusCode):
		return &Error{Kind: KindUnavailable, StatusCode: resp.StatusCode, Attempts: attempts, Detail: string(detail)}
	default:
		return &Error{Kind: KindRejected, StatusCode: resp.StatusCode, Attempts: attempts, Detail: string(detail)}
	}
}

// do runs the request through a retrying client, counting attempts.
func (r *Reporter) do(req *retryablehttp.Request, attempts *int) (*http.Response, error) {
	c := &retryablehttp.Client{
		HTTPClient:   r.http,
		RetryMax:     r.maxAttempts - 1,
		RetryWaitMin: r.backoff.InitialInterval,
		RetryWaitMax: r.backoff.MaxInterval,
		CheckRetry:   checkRetry,
		Backoff:      waits(r.backoff),
		ErrorHandler: retryablehttp.PassthroughErrorHandler,
		RequestLogHook: func(_ retryablehttp.Logger, hr *http.Request, n int) {
			*attempts = n + 1
			if n > 0 && r.log != nil {
				r.log.Info("retrying result delivery", "attempt", n+1, "host", hr.URL.Host)
			}
		},
	}
	return c.Do(req)
}

func retryableStatus(code int) bool {
	return code == http.StatusTooManyRequests || (code >= 500 && code != http.StatusNotImplemented)
}

func checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if err != nil {
		// a wrong proxy password or a proxy's rule does not change between attempts
		if isTLSError(err) || errors.Is(err, proxy.ErrProxyAuth) || errors.Is(err, proxy.ErrProxyRefused) {
			return false, err
		}
		// retryablehttp's default policy refuses to retry malformed URLs, bad schemes and
		// certificate errors, and retries the rest.
		return retryablehttp.DefaultRetryPolicy(ctx, resp, err)
	}
	return retryableStatus(resp.StatusCode), nil
}

// DefaultBackoff paces a report's attempts when Config.Backoff is nil: 200 ms doubling up
// to 10 s, each wait randomized by ±50%.
func DefaultBackoff() *backoff.ExponentialBackOff {
	return &backoff.ExponentialBackOff{InitialInterval: 200 * time.Millisecond, RandomizationFactor: 0.5,
		Multiplier: 2, MaxInterval: 10 * time.Second}
}

// waits returns the wait before each retry of one report: the next step of a fresh copy of
// b, or the Retry-After a 429 or 503 asked for, capped at b's MaxInterval.
func waits(b backoff.ExponentialBackOff) retryablehttp.Backoff {
	b.Reset()
	return func(_, _ time.Duration, _ int, resp *http.Response) time.Duration {
		d := b.NextBackOff()
		if after, ok := retryAfter(resp); ok {
			return min(after, b.MaxInterval)
		}
		return d
	}
}

// retryAfter reads a 429's or 503's Retry-After header given in seconds.
func retryAfter(resp *http.Response) (time.Duration, bool) {
	if resp == nil || (resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable) {
		return 0, false
	}
	secs, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || secs < 0 {
		return 0, false
	}
	return time.Duration(secs) * time.Second, true
}

func isTLSError(err error) bool {
	var unknown x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verify *tls.CertificateVerificationError
	return errors.As(err, &unknown) || errors.As(err, &hostname) || errors.As(err, &invalid) || errors.As(err, &verify)
}
