package ldapx

import (
	"context"
	"crypto/x509"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
)

type fakeResolver struct {
	srvs []*net.SRV
	err  error
	name string
}

func (f *fakeResolver) LookupSRV(_ context.Context, service, proto, name string) (string, []*net.SRV, error) {
	f.name = "_" + service + "._" + proto + "." + name
	return "", f.srvs, f.err
}

func TestDiscover(t *testing.T) {
	r := &fakeResolver{srvs: []*net.SRV{
		{Target: "dc3.example.test.", Priority: 10, Weight: 100},
		{Target: "dc1.example.test.", Priority: 0, Weight: 10},
		{Target: "dc2.example.test.", Priority: 0, Weight: 50},
		{Target: "dc0.evil-example.test.", Priority: 0, Weight: 90},
	}}
	got, err := Discover(context.Background(), r, "example.test", nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.name != "_ldap._tcp.dc._msdcs.example.test" {
		t.Errorf("looked up %s", r.name)
	}
	want := []string{"ldaps://dc2.example.test:636", "ldaps://dc1.example.test:636", "ldaps://dc3.example.test:636"}
	if !slices.Equal(got.URLs, want) {
		t.Fatalf("got %v, want %v", got.URLs, want)
	}
	if !slices.Equal(got.Dropped, []string{"dc0.evil-example.test"}) {
		t.Errorf("dropped %v, want the target outside the domain", got.Dropped)
	}
	if _, err := Discover(context.Background(), &fakeResolver{err: errors.New("nxdomain")}, "x", nil); err == nil {
		t.Fatal("lookup failure not reported")
	}
	if _, err := Discover(context.Background(), &fakeResolver{srvs: []*net.SRV{{Target: "."}}}, "x", nil); err == nil {
		t.Fatal("empty answer not reported")
	}
	only := &fakeResolver{srvs: []*net.SRV{{Target: "dc.attacker.test."}}}
	if d, err := Discover(context.Background(), only, "example.test", nil); err == nil || !strings.Contains(err.Error(), "dc.attacker.test") {
		t.Fatalf("only a target outside the domain: %v %v, want an error naming it", d, err)
	}
	if d, err := Discover(context.Background(), only, "example.test", []string{"attacker.test"}); err != nil || len(d.URLs) != 1 {
		t.Fatalf("an allowed target: %v %v", d, err)
	}
}

func TestTargetAllowed(t *testing.T) {
	for _, c := range []struct {
		host, domain string
		allow        []string
		want         bool
	}{
		{"dc1.adw.test", "adw.test", nil, true},
		{"DC1.ADW.TEST.", "adw.test", nil, true},
		{"dc1.adw.test", "ADW.Test.", nil, true},
		{"adw.test", "adw.test", nil, true},
		{"a.b.adw.test", "adw.test", nil, true},
		{"dc1.evil-adw.test", "adw.test", nil, false},
		{"evil-adw.test", "adw.test", nil, false},
		{"adw.test.evil", "adw.test", nil, false},
		{"dc1.adw.testx", "adw.test", nil, false},
		{"xadw.test", "adw.test", nil, false},
		{"dc1.other.test", "adw.test", nil, false},
		{"dc1.other.test", "adw.test", []string{"other.test"}, true},
		{"dc1.other.test", "adw.test", []string{"dc1.other.test"}, true},
		{"dc2.other.test", "adw.test", []string{"dc1.other.test"}, false},
		{"127.0.0.1", "adw.test", []string{"127.0.0.1"}, false},
		{"::1", "adw.test", nil, false},
		{"dc1..adw.test", "adw.test", nil, false},
		{"dc1 .adw.test", "adw.test", nil, false},
		{"", "adw.test", nil, false},
		{"dc1.adw.test", "", nil, false},
	} {
		if got := TargetAllowed(c.host, c.domain, c.allow); got != c.want {
			t.Errorf("TargetAllowed(%q, %q, %q) = %v, want %v", c.host, c.domain, c.allow, got, c.want)
		}
	}
}

func TestDomainDN(t *testing.T) {
	for in, want := range map[string]string{"adw.test": "DC=adw,DC=test", "Corp.Example.COM.": "DC=corp,DC=example,DC=com"} {
		if got := DomainDN(in); got != want {
			t.Errorf("DomainDN(%q) = %q, want %q", in, got, want)
		}
	}
	if !sameDN("DC=ADW, DC=test", "dc=adw,dc=test") || sameDN("DC=adw,DC=test", "DC=evil,DC=test") {
		t.Error("sameDN")
	}
}

func TestClientServersFromDiscovery(t *testing.T) {
	r := &fakeResolver{srvs: []*net.SRV{{Target: "dc9.example.test.", Port: 389}, {Target: "static.example.test"},
		{Target: "dc.elsewhere.test."}}}
	cl, err := New(Config{Servers: []string{"ldaps://static.example.test"}, Domain: "example.test", Discover: true,
		Resolver: r, BindDN: "svc", BindPassword: "x", RootCAs: x509.NewCertPool()})
	if err != nil {
		t.Fatal(err)
	}
	servers, err := cl.servers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var urls []string
	for _, s := range servers {
		urls = append(urls, s.url.raw)
	}
	want := []string{"ldaps://static.example.test", "ldaps://dc9.example.test:636"}
	if !slices.Equal(urls, want) {
		t.Fatalf("servers %v, want %v (static first, duplicates and targets outside the domain dropped)", urls, want)
	}
	if servers[0].discovered || !servers[1].discovered {
		t.Error("only the DNS-found DC is marked discovered")
	}
}

// TestDiscoveryNeedsCA: a discovering client never trusts the system
// roots for a DC DNS named: without a CA it is a configuration error, and
// so are verification turned off and allow entries that are not names.
func TestDiscoveryNeedsCA(t *testing.T) {
	_, err := New(Config{Domain: "adw.test", Discover: true, BindDN: "svc", BindPassword: "x"})
	if err == nil || !strings.Contains(err.Error(), "CA") {
		t.Fatalf("New without a CA and with discovery: %v, want a configuration error naming the CA", err)
	}
	err = (&Config{Domain: "adw.test", Discover: true, BindDN: "svc", BindPassword: "x", RootCAs: x509.NewCertPool(),
		InsecureSkipVerify: true, DiscoverAllow: []string{"10.0.0.1", "ok.test"}}).Validate()
	if err == nil || !strings.Contains(err.Error(), "verification") || !strings.Contains(err.Error(), "allow[0]") ||
		strings.Contains(err.Error(), "allow[1]") {
		t.Fatalf("got %v", err)
	}
}

// FuzzTargetAllowed: whatever DNS answers, an accepted target is a DNS
// name (never an IP address) equal to the domain or an allow entry, or
// ending in "." and one of them, compared without case or trailing dot.
func FuzzTargetAllowed(f *testing.F) {
	f.Add("dc1.adw.test.", "adw.test", "")
	f.Add("dc1.evil-adw.test", "adw.test", "other.test")
	f.Add("127.0.0.1", "adw.test", "127.0.0.1")
	f.Add("DC1.Other.TEST", "adw.test", "other.test.")
	f.Fuzz(func(t *testing.T, host, domain, allow string) {
		if !TargetAllowed(host, domain, []string{allow}) {
			return
		}
		if !IsDNSName(host) || net.ParseIP(strings.TrimSuffix(host, ".")) != nil {
			t.Fatalf("accepted %q, not a DNS name", host)
		}
		h := canonicalName(host)
		for _, z := range []string{domain, allow} {
			if z := canonicalName(z); z != "" && (h == z || strings.HasSuffix(h, "."+z)) {
				return
			}
		}
		t.Fatalf("accepted %q, under neither %q nor %q", host, domain, allow)
	})
}
