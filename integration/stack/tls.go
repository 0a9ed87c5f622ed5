package stack

import (
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/adwriteback/adwriteback/integration/sbemu"
	"github.com/adwriteback/adwriteback/integration/testca"
)

// Namespace is the Service Bus namespace host name WithEmulatorTLS gives
// the emulator unless Setup.Namespace names another.
const Namespace = "adwtest.servicebus.windows.net"

// HarnessCAFile is the harness CA's certificate in Dir; the emulator's
// certificate and key are sbemu-cert.pem and sbemu-key.pem (IssueCert).
const HarnessCAFile = "harness-ca.pem"

const caCommonName = "adwriteback harness CA"

// WithEmulatorTLS makes the emulator listen like Azure as well, for the
// namespace host name Namespace (or Setup.Namespace), with a certificate
// for that name issued by the stack's CA (Env.CA, its file Env.CAFile):
// AMQPS on port 5671 and AMQP over WebSockets over TLS on port 443 at
// /$servicebus/websocket, both on a loopback address of the stack's own
// (Env.Emu.ListenIP, 127.100-199.x.y). Env.HostsFile maps the namespace
// to that address: a process run under Env.HostsWrap resolves it as DNS
// would resolve Azure's, so it connects with no custom endpoint at all
// (the proxy of WithProxy runs so; a binary connector can, with
// Wrap(env.HostsWrap()...)). Plain AMQP stays where Env.ConnectionString
// points, so connectors and senders not told otherwise run as before.
// What an in-process client needs is on Env.Emu: HostName, CAFile,
// AMQPSEndpoint (the SDK's CustomEndpoint), WebSocketEndpoint and
// WebSocketURL, NamespaceConnectionString, and DialContext (the namespace
// resolved to the listeners).
func WithEmulatorTLS() Option { return func(s *Setup) { s.EmulatorTLS = true } }

// HostsFile is the stack's hosts file (in Dir): localhost, and the
// namespace at the emulator's TLS address ("" without WithEmulatorTLS).
func (e *Env) HostsFile() string {
	if e.Emu == nil || e.Emu.HostName() == "" {
		return ""
	}
	return e.Path(hostsFile)
}

// HostsWrap is a command prefix that runs a program with HostsFile as its
// /etc/hosts (a private mount namespace: unshare, root), nil without
// WithEmulatorTLS.
func (e *Env) HostsWrap() []string {
	f := e.HostsFile()
	if f == "" {
		return nil
	}
	return []string{"unshare", "--mount", "--", "/bin/sh", "-c", `mount --bind "$0" /etc/hosts && exec "$@"`, f}
}

const hostsFile = "hosts"

// CA is the stack's one test CA (integration/testca), made on first use,
// its certificate written to HarnessCAFile in Dir: it issues the
// emulator's certificate (WithEmulatorTLS), the token issuer's
// (WithEntra) and any other server's of the stack (IssueCert), so
// CAFile alone is what a client of the stack trusts.
func (e *Env) CA() *testca.CA {
	e.tb.Helper()
	e.caOnce.Do(func() {
		ca, err := testca.New(caCommonName)
		if err != nil {
			e.caErr = err
			return
		}
		if err := os.WriteFile(e.Path(HarnessCAFile), ca.PEM(), 0o644); err != nil {
			e.caErr = fmt.Errorf("stack: write CA: %w", err)
			return
		}
		e.ca = ca
	})
	if e.caErr != nil {
		e.tb.Fatalf("stack: harness CA: %v", e.caErr)
	}
	return e.ca
}

// CAFile is the path of the stack CA's certificate (PEM), what a client
// that trusts the stack's servers is given.
func (e *Env) CAFile() string {
	e.CA()
	return e.Path(HarnessCAFile)
}

// IssueCert issues a server certificate for names from the stack's CA and
// writes it and its key (0600) into Dir as <base>-cert.pem and
// <base>-key.pem.
func (e *Env) IssueCert(base string, names ...string) (certFile, keyFile string) {
	e.tb.Helper()
	cert, key, err := e.CA().ServerPEM(names...)
	if err != nil {
		e.tb.Fatalf("stack: issue certificate for %s: %v", strings.Join(names, ", "), err)
	}
	certFile, keyFile = e.Path(base+"-cert.pem"), e.Path(base+"-key.pem")
	if err := os.WriteFile(certFile, cert, 0o644); err != nil {
		e.tb.Fatalf("stack: %v", err)
	}
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		e.tb.Fatalf("stack: %v", err)
	}
	return certFile, keyFile
}

// emulatorTLS issues the emulator's certificate for the namespace host
// name, picks its address and writes the hosts file.
func (e *Env) emulatorTLS(namespace string) *sbemu.TLSOptions {
	e.tb.Helper()
	if namespace == "" {
		namespace = Namespace
	}
	cert, key := e.IssueCert("sbemu", namespace)
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		e.tb.Fatalf("stack: %v", err)
	}
	ip := net.IPv4(127, 100+b[0]%100, b[1], 1+b[2]%254).String()
	hosts := fmt.Sprintf("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n%s\t%s\n", ip, namespace)
	if err := os.WriteFile(e.Path(hostsFile), []byte(hosts), 0o644); err != nil {
		e.tb.Fatalf("stack: hosts file: %v", err)
	}
	return &sbemu.TLSOptions{CertFile: cert, KeyFile: key, CAFile: e.CAFile(), HostName: namespace,
		ListenIP: ip, AMQPSPort: sbemu.AMQPSPort, WebSocketPort: sbemu.WebSocketPort}
}
