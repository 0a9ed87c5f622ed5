// Package proxytest runs a real HTTP CONNECT proxy in the test process: basic
// authentication, a map from the names clients ask for to the addresses that serve them
// (so a test can reach a loopback server under a public-looking name), an idle timeout
// that cuts quiet tunnels as corporate proxies do, and counters a test can wait on.
package proxytest

import (
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// Options configure a Proxy. The zero value is an open proxy.
type Options struct {
	// Username and Password, if set, are required (Proxy-Authorization: Basic).
	Username, Password string
	// Resolve maps a CONNECT target (host:port) to the address to dial instead.
	Resolve map[string]string
	// IdleTimeout, if set, closes a tunnel that carried no byte in either direction for
	// that long.
	IdleTimeout time.Duration
}

// Proxy is a running CONNECT proxy.
type Proxy struct {
	opts Options
	srv  *http.Server
	ln   net.Listener

	mu       sync.Mutex
	targets  []string // CONNECT targets authorised (whether or not they answered)
	refused  int      // CONNECTs answered 407
	idleCuts int      // tunnels cut for idleness
	tunnels  map[net.Conn]struct{}
}

// Start starts a proxy on 127.0.0.1 and stops it when the test ends.
func Start(t testing.TB, opts Options) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{opts: opts, ln: ln, tunnels: map[net.Conn]struct{}{}}
	p.srv = &http.Server{Handler: http.HandlerFunc(p.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = p.srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = p.srv.Close()
		p.mu.Lock()
		for c := range p.tunnels {
			_ = c.Close()
		}
		p.mu.Unlock()
	})
	return p
}

// URL is the proxy's http:// URL, without credentials.
func (p *Proxy) URL() string { return "http://" + p.ln.Addr().String() }

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Targets returns the CONNECT targets authorised so far, in order (whether or not the
// proxy could reach them).
func (p *Proxy) Targets() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.targets...)
}

// Refused counts the CONNECTs answered 407.
func (p *Proxy) Refused() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.refused
}

// IdleCuts counts the tunnels cut for idleness.
func (p *Proxy) IdleCuts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.idleCuts
}

// CutAll closes every open tunnel, as a proxy restart does.
func (p *Proxy) CutAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.tunnels {
		_ = c.Close()
	}
}

func (p *Proxy) authorised(r *http.Request) bool {
	if p.opts.Username == "" {
		return true
	}
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte(p.opts.Username+":"+p.opts.Password))
	return r.Header.Get("Proxy-Authorization") == want
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodConnect {
		http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
		return
	}
	if !p.authorised(r) {
		p.mu.Lock()
		p.refused++
		p.mu.Unlock()
		w.Header().Set("Proxy-Authenticate", `Basic realm="proxytest"`)
		w.WriteHeader(http.StatusProxyAuthRequired)
		return
	}
	p.mu.Lock()
	p.targets = append(p.targets, r.Host)
	p.mu.Unlock()
	addr := r.Host
	if to, ok := p.opts.Resolve[addr]; ok {
		addr = to
	}
	up, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		_ = up.Close()
		http.Error(w, "no hijack", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusOK)
	down, brw, err := hj.Hijack()
	if err != nil {
		_ = up.Close()
		return
	}
	p.mu.Lock()
	p.tunnels[down] = struct{}{}
	p.tunnels[up] = struct{}{}
	p.mu.Unlock()
	go p.pipe(down, brw.Reader, up)
}

// pipe copies both ways until either side closes or the tunnel is idle too long.
func (p *Proxy) pipe(down net.Conn, buffered io.Reader, up net.Conn) {
	defer func() {
		_ = down.Close()
		_ = up.Close()
		p.mu.Lock()
		delete(p.tunnels, down)
		delete(p.tunnels, up)
		p.mu.Unlock()
	}()
	activity := make(chan struct{}, 1)
	done := make(chan struct{}, 2)
	cp := func(dst net.Conn, src io.Reader) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				select {
				case activity <- struct{}{}:
				default:
				}
				if _, werr := dst.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		done <- struct{}{}
	}
	go cp(up, buffered)
	go cp(down, up)
	var idle <-chan time.Time
	var timer *time.Timer
	if p.opts.IdleTimeout > 0 {
		timer = time.NewTimer(p.opts.IdleTimeout)
		defer timer.Stop()
		idle = timer.C
	}
	for {
		select {
		case <-done:
			return
		case <-activity:
			if timer != nil {
				timer.Reset(p.opts.IdleTimeout)
			}
		case <-idle:
			p.mu.Lock()
			p.idleCuts++
			p.mu.Unlock()
			return
		}
	}
}
