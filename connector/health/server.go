package health

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"
)

// ShutdownGrace is how long ListenAndServe lets open requests finish after
// its context ends.
const ShutdownGrace = 5 * time.Second

// TLSFiles are the listener's TLS settings. All empty: plain HTTP.
// CertFile and KeyFile (both or neither): HTTPS, TLS 1.2 or later.
// ClientCAFile (which needs CertFile and KeyFile): the listener also asks
// each client for a certificate and, when one is given, accepts the
// connection only if it chains to one of these CAs for client
// authentication; a client may still connect without one (for /livez):
// Options.RequireClientCert makes the guarded pages insist on it.
type TLSFiles struct {
	CertFile, KeyFile string
	ClientCAFile      string
}

// ListenAndServe serves h on addr until ctx ends, then shuts down gracefully
// (up to ShutdownGrace) and returns nil; see TLSFiles for how. TLS settings
// that cannot be used fail before anything listens.
func ListenAndServe(ctx context.Context, addr string, tf TLSFiles, h http.Handler) error {
	cfg, err := tf.config()
	if err != nil {
		return err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("health: listen on %s: %w", addr, err)
	}
	return serveWith(ctx, ln, cfg, h)
}

// Serve is ListenAndServe on an existing listener, which it closes.
func Serve(ctx context.Context, ln net.Listener, tf TLSFiles, h http.Handler) error {
	cfg, err := tf.config()
	if err != nil {
		ln.Close()
		return err
	}
	return serveWith(ctx, ln, cfg, h)
}

// config is the server's TLS configuration (nil: plain HTTP).
func (tf TLSFiles) config() (*tls.Config, error) {
	switch {
	case (tf.CertFile == "") != (tf.KeyFile == ""):
		return nil, errors.New("health: TLS needs both a certificate file and a key file")
	case tf.ClientCAFile != "" && tf.CertFile == "":
		return nil, errors.New("health: client certificates need TLS: give a certificate file and a key file too")
	case tf.CertFile == "":
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(tf.CertFile, tf.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("health: load TLS key pair: %w", err)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if tf.ClientCAFile != "" {
		pool, err := clientCAs(tf.ClientCAFile)
		if err != nil {
			return nil, err
		}
		// Verified if given, so /livez answers a client without one; the
		// guarded pages check for a verified chain per request.
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.VerifyClientCertIfGiven
	}
	return cfg, nil
}

// clientCAs reads the PEM certificates of the client CA file.
func clientCAs(file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("health: client CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("health: client CA file %s: %w", file, errNoCertificate)
	}
	return pool, nil
}

// serveWith serves h on ln, over TLS with cfg unless it is nil, until ctx ends.
func serveWith(ctx context.Context, ln net.Listener, cfg *tls.Config, h http.Handler) error {
	srv := &http.Server{
		Handler:           h,
		TLSConfig:         cfg,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() {
		if cfg != nil {
			errc <- srv.ServeTLS(ln, "", "")
			return
		}
		errc <- srv.Serve(ln)
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("health: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownGrace)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		return fmt.Errorf("health: serve: %w", serr)
	}
	if err != nil {
		srv.Close()
		return fmt.Errorf("health: shutdown: %w", err)
	}
	return nil
}
