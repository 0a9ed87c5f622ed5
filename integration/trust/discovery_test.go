//go:build integration

package trust

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/adwriteback/adwriteback/integration/stack"
	"github.com/adwriteback/adwriteback/integration/testca"
	"github.com/adwriteback/adwriteback/integration/testdc"
	"github.com/adwriteback/adwriteback/integration/testdns"
	"github.com/adwriteback/adwriteback/ldapx"
)

// The DC discovery tests (issue 14): DNS SRV records come from a real DNS
// server on loopback (integration/testdns) that the client's resolver
// asks, as the connector's resolver asks the machine's DNS; the DCs they
// name are the Samba DC (dc1.adw.test, which the DNS server resolves to
// its loopback address) and traps: hosts on other loopback addresses
// that relay LDAP to the DC and record what they got. A trap that records
// a bind has received the service account's password.

// srvName is where DNS advertises a domain's DCs.
func srvName(domain string) string { return "_ldap._tcp.dc._msdcs." + domain }

// discoveryWorld is the DC, a DNS server for its domain, and a CA besides
// the DC's: the enterprise CA that also issued certificates for hosts
// that are not DCs. The client trusts both (caBundle).
type discoveryWorld struct {
	dc       *testdc.Info
	domain   string
	dns      *testdns.Server
	corpCA   *testca.CA
	caBundle string
	dcRoots  *x509.CertPool
}

func newDiscoveryWorld(t *testing.T) *discoveryWorld {
	t.Helper()
	w := &discoveryWorld{dc: testdc.Ensure(t), domain: strings.ToLower(testdc.Realm), dns: testdns.New(t)}
	w.dns.SetA(w.dc.Host, net.ParseIP(w.dc.Addr))
	dcPEM, err := os.ReadFile(w.dc.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	w.dcRoots = x509.NewCertPool()
	w.dcRoots.AppendCertsFromPEM(dcPEM)
	if w.corpCA, err = testca.New("adwriteback corp CA"); err != nil {
		t.Fatal(err)
	}
	w.caBundle = filepath.Join(t.TempDir(), "ca-bundle.pem")
	if err := os.WriteFile(w.caBundle, append(dcPEM, w.corpCA.PEM()...), 0o644); err != nil {
		t.Fatal(err)
	}
	return w
}

// beside is the loopback address with last octet n in the DC's network,
// so runs on one machine with different DC addresses do not collide. This
// package uses 40 to 44 (integration/faults uses 30 and 31).
func beside(dc *testdc.Info, n byte) string {
	ip := net.ParseIP(dc.Addr).To4()
	return net.IPv4(ip[0], ip[1], ip[2], n).String()
}

// trapAddr is the address of trap n (1 to 4), port 636: discovered DCs
// are dialled on LDAPS's port.
func (w *discoveryWorld) trapAddr(n byte) string {
	return net.JoinHostPort(beside(w.dc, 40+n), "636")
}

// trap starts a trap for name at trapAddr(n) with a certificate for name
// from ca, and makes DNS resolve name to it.
func (w *discoveryWorld) trap(t *testing.T, n byte, name string, ca *testca.CA) *trap {
	t.Helper()
	cert, err := ca.ServerCert(name)
	if err != nil {
		t.Fatal(err)
	}
	addr := w.trapAddr(n)
	host, _, _ := net.SplitHostPort(addr)
	w.dns.SetA(name, net.ParseIP(host))
	return newTrap(t, addr, cert, net.JoinHostPort(w.dc.Addr, "636"), w.dcRoots)
}

// config is a discovering client's configuration: no static servers, the
// CA bundle, the test DNS server as the resolver.
func (w *discoveryWorld) config() ldapx.Config {
	return ldapx.Config{
		Domain: w.domain, Discover: true,
		BindDN: w.dc.ServiceDN, BindPassword: w.dc.ServicePass,
		CAFile: w.caBundle, Resolver: w.dns.Resolver(), // the default dialer resolves with it too
		DialTimeout: 20 * time.Second,
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// TestTrustDiscoveryOutsideDomain: DNS advertises, first, a host outside
// the domain (dc1.evil-adw.test: a suffix of the name, not under it) with
// a certificate the configured CA issued. It is never dialled; the DC
// under the domain serves.
func TestTrustDiscoveryOutsideDomain(t *testing.T) {
	w := newDiscoveryWorld(t)
	evil := "dc1.evil-" + w.domain
	tr := w.trap(t, 1, evil, w.corpCA)
	w.dns.SetSRV(srvName(w.domain),
		testdns.SRV{Target: evil, Port: 389, Priority: 0},
		testdns.SRV{Target: w.dc.Host, Port: 389, Priority: 10})

	var logs stack.Buffer
	cfg := w.config()
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	cl, err := ldapx.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	r, err := cl.RootDSE(ctxT(t))
	if err != nil {
		t.Fatalf("RootDSE through discovery: %v", err)
	}
	if want := "ldaps://" + w.dc.Host + ":636"; !strings.EqualFold(r.DC, want) {
		t.Errorf("answered by %s, want %s", r.DC, want)
	}
	cl.ProbeDCs(ctxT(t)) // every DC the pool knows: the evil one is not one
	if conns, _, binds := tr.seen(); conns != 0 || binds != 0 {
		t.Errorf("%s (outside %s) got %d connection(s) and %d bind(s): it must never be dialled", evil, w.domain, conns, binds)
	}
	if st := cl.Servers(); len(st) != 1 || st[0].State != ldapx.DCUp {
		t.Errorf("DCs known: %+v, want only %s, up", st, w.dc.Host)
	}
	if !strings.Contains(logs.String(), "dropped") || !strings.Contains(logs.String(), evil) {
		t.Errorf("the log does not name the dropped target %s:\n%s", evil, logs.String())
	}
}

// TestTrustDiscoveryAllowList: a target outside the domain that the
// configuration allows (discover_allow) is used, with the same checks:
// here its rootDSE names another host, so it is refused before the bind.
func TestTrustDiscoveryAllowList(t *testing.T) {
	w := newDiscoveryWorld(t)
	other := "dc1.dcs.other.test"
	tr := w.trap(t, 4, other, w.corpCA)
	w.dns.SetSRV(srvName(w.domain), testdns.SRV{Target: other, Port: 389})
	cfg := w.config()
	cfg.DiscoverAllow = []string{"dcs.other.test"}
	cl, err := ldapx.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	cl.ProbeDCs(ctxT(t))
	conns, _, binds := tr.seen()
	if conns == 0 {
		t.Errorf("%s (allowed) was never dialled", other)
	}
	if binds != 0 {
		t.Errorf("%s (not the DC its rootDSE names) got %d bind(s)", other, binds)
	}
	if st := cl.Servers(); len(st) != 1 || st[0].State != ldapx.DCDown || !strings.Contains(st[0].LastError, "dnsHostName") {
		t.Errorf("DCs known: %+v, want %s down naming its rootDSE", st, other)
	}
}

// TestTrustDiscoveryNotADC: DNS advertises, first, a host under the
// domain with a valid certificate for its name from the configured CA
// (the enterprise CA issues certificates to web servers too), which
// relays LDAP to a real DC. The DC's rootDSE names another host: the
// target is not that DC, and gets no bind.
func TestTrustDiscoveryNotADC(t *testing.T) {
	w := newDiscoveryWorld(t)
	intranet := "intranet." + w.domain
	tr := w.trap(t, 2, intranet, w.corpCA)
	w.dns.SetSRV(srvName(w.domain),
		testdns.SRV{Target: intranet, Port: 389, Priority: 0},
		testdns.SRV{Target: w.dc.Host, Port: 389, Priority: 10})

	cl, err := ldapx.New(w.config())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := cl.RootDSE(ctxT(t)); err != nil {
		t.Fatalf("RootDSE through discovery: %v", err)
	}
	cl.ProbeDCs(ctxT(t))
	for _, st := range cl.Servers() {
		if strings.Contains(st.URL, intranet) && (st.State != ldapx.DCDown || !strings.Contains(st.LastError, "dnsHostName")) {
			t.Errorf("%s: %+v, want down naming its rootDSE", intranet, st)
		}
	}
	_, handshakes, binds := tr.seen()
	if binds != 0 {
		t.Errorf("%s (not a DC) got %d bind(s)", intranet, binds)
	}
	if handshakes == 0 {
		t.Errorf("%s was never reached: its certificate is valid, so only its rootDSE may refuse it", intranet)
	}
}

// TestTrustDiscoveryForeignCA: DNS advertises a host under the domain
// whose certificate comes from a CA the machine's system store trusts
// (here: the only one in it, through SSL_CERT_FILE) but the domain's
// configuration does not. With tls.ca_file set it fails verification;
// without it, discovery is refused as a configuration error. Either way
// it gets no bind. The client runs in a child process, which reads its
// system roots from SSL_CERT_FILE at its first use.
func TestTrustDiscoveryForeignCA(t *testing.T) {
	w := newDiscoveryWorld(t)
	rogue := "rogue." + w.domain
	rogueCA, err := testca.New("adwriteback rogue CA")
	if err != nil {
		t.Fatal(err)
	}
	tr := w.trap(t, 3, rogue, rogueCA)
	w.dns.SetSRV(srvName(w.domain), testdns.SRV{Target: rogue, Port: 389})
	roguePEM := filepath.Join(t.TempDir(), "rogue-ca.pem")
	if err := os.WriteFile(roguePEM, rogueCA.PEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, caFile := range map[string]string{"with_ca_file": w.caBundle, "without_ca_file": ""} {
		t.Run(name, func(t *testing.T) {
			cmd := exec.CommandContext(ctxT(t), os.Args[0], "-test.run=^TestTrustDiscoveryChild$", "-test.v")
			cmd.Env = append(os.Environ(), "SSL_CERT_FILE="+roguePEM, "SSL_CERT_DIR="+t.TempDir(),
				"ADW_TRUST_CHILD_DNS="+w.dns.Addr(), "ADW_TRUST_CHILD_CA="+caFile)
			out, err := cmd.CombinedOutput()
			t.Logf("client (child process): %v\n%s", err, out)
			if _, _, binds := tr.seen(); binds != 0 {
				t.Errorf("%s (certificate from a CA the domain does not trust) got %d bind(s)", rogue, binds)
			}
		})
	}
}

// TestTrustDiscoveryChild is TestTrustDiscoveryForeignCA's client: it
// runs only in the child process that test starts.
func TestTrustDiscoveryChild(t *testing.T) {
	dns := os.Getenv("ADW_TRUST_CHILD_DNS")
	if dns == "" {
		return // not the child
	}
	info := testdc.Ensure(t)
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", dns)
	}}
	cl, err := ldapx.New(ldapx.Config{Domain: strings.ToLower(testdc.Realm), Discover: true,
		BindDN: info.ServiceDN, BindPassword: info.ServicePass, CAFile: os.Getenv("ADW_TRUST_CHILD_CA"),
		Resolver: r, DialTimeout: 20 * time.Second})
	if err != nil {
		fmt.Println("configuration refused:", err)
		return
	}
	defer cl.Close()
	_, err = cl.RootDSE(ctxT(t))
	fmt.Println("RootDSE:", err)
}

// TestTrustDiscoveryLegit: DNS advertises the DC by its name under the
// domain; its certificate is from the configured CA and its rootDSE
// names it: discovery alone finds it, binds and reads.
func TestTrustDiscoveryLegit(t *testing.T) {
	w := newDiscoveryWorld(t)
	w.dns.SetSRV(srvName(w.domain), testdns.SRV{Target: w.dc.Host + ".", Port: 389})
	cl, err := ldapx.New(w.config())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := ctxT(t)
	r, err := cl.RootDSE(ctx)
	if err != nil {
		t.Fatalf("RootDSE through discovery: %v", err)
	}
	if want := "ldaps://" + w.dc.Host + ":636"; !strings.EqualFold(r.DC, want) {
		t.Errorf("answered by %s, want %s", r.DC, want)
	}
	u, err := cl.FindUser(ctx, ldapx.UserRef{Kind: ldapx.RefSAM, Value: "alice"})
	if err != nil {
		t.Fatalf("FindUser through discovery: %v", err)
	}
	if u.DN != w.dc.Users["alice"].DN {
		t.Errorf("found %s, want %s", u.DN, w.dc.Users["alice"].DN)
	}
}
