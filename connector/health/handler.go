package health

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
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
	mux := http.NewServeMux()
	mux.HandleFunc("GET /livez", h.livez)
	mux.HandleFunc("GET /readyz", h.readyz)
	mux.HandleFunc("GET /status", h.status)
	mux.HandleFunc("GET /{$}", h.status)
	if o.Metrics != nil {
		mux.Handle("GET /metrics", o.Metrics)
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
	if err := renderStatus(&buf, statusData(rep, ops, counters, h.o.Version)); err != nil {
		h.o.Logger.Error("health: render status page", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(buf.Bytes())
}
