package health

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// ShutdownGrace is how long ListenAndServe lets open requests finish after
// its context ends.
const ShutdownGrace = 5 * time.Second

// ListenAndServe serves h on addr until ctx ends, then shuts down gracefully
// (up to ShutdownGrace) and returns nil. With tlsCertFile and tlsKeyFile it
// serves HTTPS (TLS 1.2 or later); with neither, plain HTTP; with only one,
// it fails.
func ListenAndServe(ctx context.Context, addr, tlsCertFile, tlsKeyFile string, h http.Handler) error {
	if (tlsCertFile == "") != (tlsKeyFile == "") {
		return errors.New("health: TLS needs both a certificate file and a key file")
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("health: listen on %s: %w", addr, err)
	}
	return Serve(ctx, ln, tlsCertFile, tlsKeyFile, h)
}

// Serve is ListenAndServe on an existing listener, which it closes.
func Serve(ctx context.Context, ln net.Listener, tlsCertFile, tlsKeyFile string, h http.Handler) error {
	if (tlsCertFile == "") != (tlsKeyFile == "") {
		ln.Close()
		return errors.New("health: TLS needs both a certificate file and a key file")
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	if tlsCertFile != "" {
		cert, err := tls.LoadX509KeyPair(tlsCertFile, tlsKeyFile)
		if err != nil {
			ln.Close()
			return fmt.Errorf("health: load TLS key pair: %w", err)
		}
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	}

	errc := make(chan error, 1)
	go func() {
		if srv.TLSConfig != nil {
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
