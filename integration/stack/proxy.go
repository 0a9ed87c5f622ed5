package stack

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ProxyOptions configure the stack's HTTP CONNECT proxy: tinyproxy 1.11
// from Debian's packages (integration/scripts/install-deps.sh installs
// it), run privately on a loopback port with a configuration of its own.
type ProxyOptions struct {
	// User and Password are the Basic credentials the proxy demands of
	// every request. "" User: "adw-proxy"; "" Password: a random one.
	// tinyproxy's BasicAuth takes letters, digits, '-', '.' and '_' only.
	User, Password string
	// IdleTimeout is how long the proxy keeps a connection, a CONNECT
	// tunnel included, with no traffic either way before it cuts it
	// (tinyproxy's Timeout, whole seconds, rounded up), as corporate
	// proxies cut idle connections. 0: 600 s, tinyproxy's default.
	IdleTimeout time.Duration
	// ConnectPorts are the ports CONNECT may reach; CONNECT to another is
	// refused with 403, as a proxy that lets only 443 out does. WithProxy
	// adds the emulator's WebSocket port when it listens with TLS. A
	// server started later must be added here to be reachable.
	ConnectPorts []int
	// Wrap is a command prefix tinyproxy runs under (WithProxy: the
	// stack's HostsWrap, so the proxy resolves the namespace).
	Wrap []string
}

// The proxy's answers a client sees, as tinyproxy 1.11 gives them: no
// Proxy-Authorization is 407; a wrong credential is 401 (not 407: this is
// tinyproxy's behaviour, kept because a client must treat any non-2xx
// answer to CONNECT as a refusal); a port not allowed is 403.
const (
	ProxyStatusNoCredentials    = 407
	ProxyStatusWrongCredentials = 401
	ProxyStatusPortRefused      = 403
)

// proxyCredential is what tinyproxy's BasicAuth line accepts.
var proxyCredential = regexp.MustCompile(`^[-A-Za-z0-9._]+$`)

// ErrNoTinyproxy is returned when the tinyproxy binary is not installed.
var ErrNoTinyproxy = errors.New("stack: tinyproxy is required for the HTTP proxy (run integration/scripts/install-deps.sh, or apt-get install tinyproxy)")

// HTTPProxy is a running tinyproxy: an authenticating HTTP CONNECT proxy
// on a loopback port. The test's cleanup stops it.
type HTTPProxy struct {
	tb                   TB
	wrap                 []string
	addr                 string
	user, password       string
	idle                 time.Duration
	conf, passFile, logF string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	out  Buffer
}

// WithProxy starts an HTTP CONNECT proxy for the stack (Env.Proxy) once
// the emulator is up, before the AfterStart hooks: CONNECT is allowed to
// the emulator's WebSocket port (with WithEmulatorTLS) and to
// o.ConnectPorts. Its password, and the Basic credential carrying it, join
// the leak scan; so does its log.
func WithProxy(o ProxyOptions) Option {
	return func(s *Setup) { s.Proxy = &o }
}

// startProxy is WithProxy's start.
func (e *Env) startProxy(o ProxyOptions) {
	e.tb.Helper()
	if ws := e.Emu.WebSocketEndpoint(); ws != "" {
		_, port, err := net.SplitHostPort(ws)
		if err != nil {
			e.tb.Fatalf("stack: emulator WebSocket endpoint %q: %v", ws, err)
		}
		p, _ := strconv.Atoi(port)
		o.ConnectPorts = append(o.ConnectPorts, p)
		if o.Wrap == nil {
			o.Wrap = e.HostsWrap()
		}
	}
	e.Proxy = StartProxy(e.tb, e.Dir, o)
	e.SecretBytes([]byte(e.Proxy.Password()))
	e.SecretBytes([]byte(e.Proxy.BasicCredential()))
	e.AddSurface("proxy log", func() ([]byte, error) { return []byte(e.Proxy.Log()), nil })
}

// StartProxy starts tinyproxy with o, its files (configuration, password
// file, log) in dir; the test's cleanup stops it. It fails the test when
// tinyproxy is missing or does not start.
func StartProxy(tb TB, dir string, o ProxyOptions) *HTTPProxy {
	tb.Helper()
	if o.User == "" {
		o.User = "adw-proxy"
	}
	if o.Password == "" {
		b := make([]byte, 16)
		if _, err := rand.Read(b); err != nil {
			tb.Fatalf("stack: proxy password: %v", err)
		}
		o.Password = hex.EncodeToString(b)
	}
	if !proxyCredential.MatchString(o.User) || !proxyCredential.MatchString(o.Password) {
		tb.Fatalf("stack: proxy user and password may hold only letters, digits, '-', '.' and '_' (tinyproxy's BasicAuth)")
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = 600 * time.Second
	}
	if o.IdleTimeout < 0 {
		tb.Fatalf("stack: proxy idle timeout %v", o.IdleTimeout)
	}
	bin, err := exec.LookPath("tinyproxy")
	if err != nil {
		tb.Fatalf("%v", ErrNoTinyproxy)
	}
	p := &HTTPProxy{tb: tb, wrap: o.Wrap, user: o.User, password: o.Password,
		idle:     time.Duration((o.IdleTimeout+time.Second-1)/time.Second) * time.Second,
		conf:     filepath.Join(dir, "tinyproxy.conf"),
		passFile: filepath.Join(dir, "proxy.pass"),
		logF:     filepath.Join(dir, "tinyproxy.log")}
	if err := os.WriteFile(p.passFile, []byte(o.Password+"\n"), 0o600); err != nil {
		tb.Fatalf("stack: proxy password file: %v", err)
	}
	tb.Cleanup(p.Down)
	// The port is free when chosen; if another process takes it before
	// tinyproxy binds it, try another.
	var last error
	for range 3 {
		p.addr = FreeAddr(tb)
		if err := p.writeConfig(o.ConnectPorts); err != nil {
			tb.Fatalf("%v", err)
		}
		if last = p.start(bin); last == nil {
			return p
		}
	}
	tb.Fatalf("stack: tinyproxy did not start: %v\n%s", last, p.Log())
	return nil
}

func (p *HTTPProxy) writeConfig(ports []int) error {
	_, port, err := net.SplitHostPort(p.addr)
	if err != nil {
		return fmt.Errorf("stack: proxy address: %w", err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# tinyproxy for one integration stack, written by integration/stack\n")
	fmt.Fprintf(&b, "Port %s\nListen 127.0.0.1\nAllow 127.0.0.1\n", port)
	fmt.Fprintf(&b, "Timeout %d\n", int(p.idle/time.Second))
	fmt.Fprintf(&b, "MaxClients 100\nDisableViaHeader Yes\n")
	fmt.Fprintf(&b, "LogFile %q\nLogLevel Connect\n", p.logF)
	fmt.Fprintf(&b, "BasicAuth %s %s\n", p.user, p.password)
	if len(ports) == 0 {
		// No ConnectPort line would let CONNECT reach every port: allow
		// one no server listens on (port 0) instead.
		ports = []int{0}
	}
	for _, cp := range ports {
		fmt.Fprintf(&b, "ConnectPort %d\n", cp)
	}
	if err := os.WriteFile(p.conf, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("stack: proxy configuration: %w", err)
	}
	return nil
}

// start runs tinyproxy in the foreground and waits until it accepts
// connections or exits.
func (p *HTTPProxy) start(bin string) error {
	args := append(append([]string(nil), p.wrap...), bin, "-d", "-c", p.conf)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = &p.out, &p.out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("stack: start tinyproxy: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
	exited := false
	up := poll(10*time.Second, 20*time.Millisecond, func() bool {
		select {
		case <-done:
			exited = true
			return true
		default:
		}
		c, err := net.DialTimeout("tcp", p.addr, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	switch {
	case exited:
		return fmt.Errorf("stack: tinyproxy exited: %v", cmd.ProcessState)
	case !up:
		p.Down()
		return fmt.Errorf("stack: tinyproxy does not accept connections on %s", p.addr)
	}
	return nil
}

// URL is the proxy's URL, http://127.0.0.1:PORT, without credentials.
func (p *HTTPProxy) URL() string { return "http://" + p.addr }

// Addr is the proxy's host:port.
func (p *HTTPProxy) Addr() string { return p.addr }

// User is the user name the proxy demands.
func (p *HTTPProxy) User() string { return p.user }

// Password is the proxy's password (the leak scan looks for it).
func (p *HTTPProxy) Password() string { return p.password }

// PasswordFile holds the password alone and a newline (0600), as a
// connector reads a secret from a file.
func (p *HTTPProxy) PasswordFile() string { return p.passFile }

// BasicCredential is the Proxy-Authorization value of the right
// credential ("Basic " and base64 of user:password).
func (p *HTTPProxy) BasicCredential() string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(p.user+":"+p.password))
}

// IdleTimeout is the idle time after which the proxy cuts a connection.
func (p *HTTPProxy) IdleTimeout() time.Duration { return p.idle }

// Log is the proxy's log so far (its log file, then what it wrote to
// stdout and stderr).
func (p *HTTPProxy) Log() string {
	b, _ := os.ReadFile(p.logF)
	return string(b) + p.out.String()
}

// Down stops the proxy, which ends every tunnel through it (the proxy
// gone); Up starts it again on the same port.
func (p *HTTPProxy) Down() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// Up starts the proxy again after Down, on the same port.
func (p *HTTPProxy) Up() {
	p.tb.Helper()
	bin, err := exec.LookPath("tinyproxy")
	if err != nil {
		p.tb.Fatalf("%v", ErrNoTinyproxy)
	}
	if err := p.start(bin); err != nil {
		p.tb.Fatalf("%v\n%s", err, p.Log())
	}
}
