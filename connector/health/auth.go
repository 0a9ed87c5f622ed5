package health

import (
	"crypto/x509"
	"log/slog"
	"net/http"
	"strings"
)

// requireClientCert answers 401 to a request whose connection carries no
// client certificate the listener verified (Serve with
// TLSFiles.ClientCAFile), and 403 to one whose certificate carries none of
// names (when names are given), each with a one-line plain-text body;
// with required false it lets everything through. A refused certificate's
// subject is logged: it is no secret, and it tells an operator which
// client to fix.
func requireClientCert(required bool, names []string, log *slog.Logger, next http.Handler) http.Handler {
	if !required {
		return next
	}
	allowed := lowerSet(names)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
			refuse(w, http.StatusUnauthorized, "client certificate required")
			return
		}
		leaf := r.TLS.VerifiedChains[0][0]
		if len(allowed) > 0 && !certNamed(leaf, allowed) {
			log.Warn("health: a client certificate named in no http.client_names entry was refused",
				"subject", leaf.Subject.String(), "dns_names", leaf.DNSNames, "path", r.URL.Path)
			refuse(w, http.StatusForbidden, "client certificate not allowed")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// certNamed reports whether c carries one of allowed (lower case) as a DNS
// name or as its subject's common name, compared whole and in any case.
func certNamed(c *x509.Certificate, allowed map[string]bool) bool {
	if allowed[strings.ToLower(c.Subject.CommonName)] {
		return true
	}
	for _, n := range c.DNSNames {
		if allowed[strings.ToLower(n)] {
			return true
		}
	}
	return false
}

// refuse answers code with msg as a one-line plain-text body.
func refuse(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(msg + "\n"))
}

// lowerSet is names in lower case, as a set (nil for none).
func lowerSet(names []string) map[string]bool {
	if len(names) == 0 {
		return nil
	}
	set := make(map[string]bool, len(names))
	for _, n := range names {
		set[strings.ToLower(n)] = true
	}
	return set
}
