package health

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/adwriteback/adwriteback/connector/audit"
)

// Options configures NewHandler. Only Snapshot is required.
type Options struct {
	// Snapshot gathers the current state for /readyz and /status. It is
	// called with a context bounded by SnapshotTimeout.
	Snapshot func(ctx context.Context) Snapshot
	// Metrics serves /metrics, e.g. promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).
	// Nil: /metrics is 404.
	Metrics http.Handler
	// Recent holds the last operations shown on /status (nil: none).
	Recent *Recent
	// Counters returns the counters shown on /status, by display name
	// (see CountersFrom). Nil: none.
	Counters func() map[string]float64
	// Version is shown on /status.
	Version string
	// Logger receives handler errors (nil: discarded).
	Logger *slog.Logger
	// Clock fills a Snapshot's Now when it has none (nil: the real clock).
	Clock clockwork.Clock
	// SnapshotTimeout bounds Snapshot (0: 5 s).
	SnapshotTimeout time.Duration

	// BearerToken, when set, guards /status (and /), /metrics and /readyz:
	// a request without "Authorization: Bearer <BearerToken>" is 401 with
	// WWW-Authenticate: Bearer and no body. /livez stays open: it tells
	// nothing but that the process answers.
	BearerToken string
	// AllowedHosts, when set, lists the host names (no port, any case) a
	// request's Host header may carry; any other is 421 with no body, on
	// every path but /livez: a defence against DNS rebinding.
	AllowedHosts []string
	// RequireClientCert, when set, also guards /status (and /), /metrics
	// and /readyz with TLS client certificates: a request whose connection
	// carries no certificate the listener verified (Serve with
	// TLSFiles.ClientCAFile) is 401 with a one-line body; on a listener
	// that verifies none, every such request is. With BearerToken set too,
	// a request needs both.
	RequireClientCert bool
	// ClientNames, when set with RequireClientCert, lists the names (any
	// case) a client certificate must carry as a DNS name or as its
	// subject's common name; a verified certificate with none of them is
	// 403 with a one-line body.
	ClientNames []string
	// RedactUserDNs masks the value of each DN's first RDN on /status
	// (CN=***,OU=Staff,...): the page shows where, not who.
	RedactUserDNs bool
}

// NewHandler returns the admin HTTP surface: /livez, /readyz, /metrics and
// /status (also served at /). Only GET and HEAD are accepted.
func NewHandler(o Options) http.Handler {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = clockwork.NewRealClock()
	}
	if o.SnapshotTimeout <= 0 {
		o.SnapshotTimeout = 5 * time.Second
	}
	h := &handler{o: o}
	guarded := http.NewServeMux()
	guarded.HandleFunc("GET /readyz", h.readyz)
	guarded.HandleFunc("GET /status", h.status)
	guarded.HandleFunc("GET /{$}", h.status)
	if o.Metrics != nil {
		guarded.Handle("GET /metrics", o.Metrics)
	}
	guard := allowHosts(o.AllowedHosts,
		requireClientCert(o.RequireClientCert, o.ClientNames, o.Logger,
			requireBearer(o.BearerToken, guarded)))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /livez", h.livez)
	for _, p := range []string{"/readyz", "/status", "/{$}", "/metrics"} {
		mux.Handle(p, guard) // any method: guarded answers 405 once let in
	}
	return secure(mux)
}

type handler struct {
	o Options
}

// secure sets headers that keep the pages inert: no scripts, no framing, no caching.
func secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cache-Control", "no-store")
		hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
		next.ServeHTTP(w, r)
	})
}

// allowHosts answers 421 Misdirected Request, with no body, to a request
// whose Host (port stripped, any case) is not in hosts; with no hosts it
// lets everything through.
func allowHosts(hosts []string, next http.Handler) http.Handler {
	if len(hosts) == 0 {
		return next
	}
	allowed := lowerSet(hosts)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if !allowed[strings.ToLower(host)] {
			w.WriteHeader(http.StatusMisdirectedRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// requireBearer answers 401, with WWW-Authenticate: Bearer and no body, to
// a request without "Authorization: Bearer <token>"; with no token it lets
// everything through. The comparison is in constant time: both sides are
// hashed first, so not even the token's length leaks.
func requireBearer(token string, next http.Handler) http.Handler {
	if token == "" {
		return next
	}
	want := sha256.Sum256([]byte(token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		sum := sha256.Sum256([]byte(got))
		if subtle.ConstantTimeCompare(sum[:], want[:]) != 1 || !ok {
			w.Header().Set("WWW-Authenticate", "Bearer")
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (h *handler) livez(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

func (h *handler) report(ctx context.Context) Report {
	if h.o.Snapshot == nil {
		return Evaluate(Snapshot{Now: h.o.Clock.Now()})
	}
	ctx, cancel := context.WithTimeout(ctx, h.o.SnapshotTimeout)
	defer cancel()
	s := h.o.Snapshot(ctx)
	if s.Now.IsZero() {
		s.Now = h.o.Clock.Now()
	}
	return Evaluate(s)
}

func (h *handler) readyz(w http.ResponseWriter, r *http.Request) {
	rep := h.report(r.Context())
	body, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		h.o.Logger.Error("health: encode readiness report", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if rep.Ready {
		w.WriteHeader(http.StatusOK)
	} else {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_, _ = w.Write(append(body, '\n'))
}

func (h *handler) status(w http.ResponseWriter, r *http.Request) {
	rep := h.report(r.Context())
	var ops []audit.Record
	if h.o.Recent != nil {
		ops = h.o.Recent.Last()
	}
	var counters map[string]float64
	if h.o.Counters != nil {
		counters = h.o.Counters()
	}
	var buf bytes.Buffer
	if h.o.RedactUserDNs {
		redacted := make([]audit.Record, len(ops))
		for i, r := range ops {
			r.UserDN = redactDN(r.UserDN)
			redacted[i] = r
		}
		ops = redacted
	}
	if err := renderStatus(&buf, statusData(rep, ops, counters, h.o.Version)); err != nil {
		h.o.Logger.Error("health: render status page", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(buf.Bytes())
}

// redactDN masks the value of dn's first RDN, all of it for a multi-valued
// one: "CN=Alice,OU=Staff,DC=corp" is "CN=***,OU=Staff,DC=corp". The rest
// of the DN is kept, so an admin still sees which OU an operation touched.
// A value that is not a DN is masked whole.
func redactDN(dn string) string {
	if dn == "" {
		return ""
	}
	eq := strings.IndexByte(dn, '=')
	if eq <= 0 {
		return "***"
	}
	rest := ""
	for i := eq + 1; i < len(dn); i++ {
		switch dn[i] {
		case '\\':
			i++ // the escaped character, which may be a comma
		case ',', ';':
			rest = dn[i:]
			i = len(dn)
		}
	}
	return dn[:eq] + "=***" + rest
}
