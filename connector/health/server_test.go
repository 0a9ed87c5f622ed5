package health

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// selfSigned writes a certificate for 127.0.0.1 and its key into dir.
func selfSigned(t *testing.T, dir string, notAfter time.Time) (certFile, keyFile string, der []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "adwriteback test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     notAfter,
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err = x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, der
}

func serve(t *testing.T, cert, key string) (addr string, cancel context.CancelFunc, done <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- Serve(ctx, ln, TLSFiles{CertFile: cert, KeyFile: key}, NewHandler(Options{})) }()
	return ln.Addr().String(), cancel, errc
}

func TestServePlainAndGracefulStop(t *testing.T) {
	addr, cancel, done := serve(t, "", "")
	resp, err := http.Get("http://" + addr + "/livez")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "ok\n" {
		t.Fatalf("/livez = %d %q", resp.StatusCode, b)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	if _, err := http.Get("http://" + addr + "/livez"); err == nil {
		t.Error("still serving after shutdown")
	}
}

func TestServeTLS(t *testing.T) {
	cert, key, der := selfSigned(t, t.TempDir(), time.Now().Add(24*time.Hour))
	addr, cancel, done := serve(t, cert, key)
	defer func() { cancel(); <-done }()

	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(c)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get("https://" + addr + "/livez")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil {
		t.Fatalf("https /livez = %d, TLS %v", resp.StatusCode, resp.TLS != nil)
	}
	// Plain HTTP to the TLS port does not get the page.
	if resp, err := http.Get("http://" + addr + "/livez"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("plain HTTP served on the TLS listener")
		}
	}
}

func TestListenAndServeErrors(t *testing.T) {
	ctx := context.Background()
	if err := ListenAndServe(ctx, "127.0.0.1:0", TLSFiles{CertFile: "cert.pem"}, NewHandler(Options{})); err == nil ||
		!strings.Contains(err.Error(), "both a certificate file and a key file") {
		t.Errorf("cert without key: %v", err)
	}
	dir := t.TempDir()
	err := ListenAndServe(ctx, "127.0.0.1:0", TLSFiles{CertFile: filepath.Join(dir, "missing.pem"), KeyFile: filepath.Join(dir, "missing.key")}, NewHandler(Options{}))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing TLS files: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := ListenAndServe(ctx, ln.Addr().String(), TLSFiles{}, NewHandler(Options{})); err == nil {
		t.Error("listening on a taken port succeeded")
	}
}

func TestCertsFromPEM(t *testing.T) {
	dir := t.TempDir()
	notAfter := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
	certFile, keyFile, _ := selfSigned(t, dir, notAfter)
	one, _ := os.ReadFile(certFile)
	key, _ := os.ReadFile(keyFile)
	bundle := append(append(append([]byte{}, one...), key...), one...)
	got, err := CertsFromPEM("LDAPS CA", bundle)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Name != "LDAPS CA" || got[1].Name != "LDAPS CA #2" ||
		got[0].Subject != "adwriteback test" || !got[0].NotAfter.Equal(notAfter) {
		t.Errorf("CertsFromPEM = %+v", got)
	}
	if _, err := CertsFromPEM("x", key); !errors.Is(err, errNoCertificate) {
		t.Errorf("key only: %v", err)
	}
	bad := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("junk")})
	if _, err := CertsFromPEM("x", bad); err == nil {
		t.Error("junk certificate accepted")
	}
	if _, err := CertsFromFile("x", filepath.Join(dir, "none.pem")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if got, err := CertsFromFile("client", certFile); err != nil || len(got) != 1 {
		t.Errorf("CertsFromFile = %v, %v", got, err)
	}
}
