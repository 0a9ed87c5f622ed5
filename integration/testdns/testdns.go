// Package testdns is the integration harness's DNS server: a real
// authoritative server on a loopback UDP port that answers the SRV and A
// records a test gives it (NXDOMAIN for any other name, an empty answer
// for any other type of a known name). Resolver returns a *net.Resolver
// (Go's own resolver, the production code path) that asks only this
// server, so a test can make DC discovery find what it wants without
// touching the machine's DNS.
package testdns

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// SRV is one SRV record's data.
type SRV struct {
	Target   string
	Port     uint16
	Priority uint16
	Weight   uint16
}

// Server answers DNS queries over UDP on 127.0.0.1.
type Server struct {
	pc net.PacketConn

	mu      sync.Mutex
	srv     map[string][]SRV
	a       map[string]net.IP
	queries []string
}

// New starts a server; the test's cleanup stops it.
func New(tb testing.TB) *Server {
	tb.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("testdns: %v", err)
	}
	s := &Server{pc: pc, srv: map[string][]SRV{}, a: map[string]net.IP{}}
	go s.serve()
	tb.Cleanup(func() { pc.Close() })
	return s
}

// Addr is the server's UDP address.
func (s *Server) Addr() string { return s.pc.LocalAddr().String() }

// SetSRV replaces the SRV records of name (e.g.
// "_ldap._tcp.dc._msdcs.adw.test").
func (s *Server) SetSRV(name string, recs ...SRV) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.srv[canonical(name)] = recs
}

// SetA sets the IPv4 address of name.
func (s *Server) SetA(name string, ip net.IP) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.a[canonical(name)] = ip.To4()
}

// Queries lists the names asked so far ("type name"), in order.
func (s *Server) Queries() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.queries...)
}

// Resolver is Go's resolver asking only this server.
func (s *Server) Resolver() *net.Resolver {
	addr := s.Addr()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", addr)
	}}
}

func canonical(name string) string {
	return strings.ToLower(strings.TrimSuffix(name, ".")) + "."
}

func (s *Server) serve() {
	buf := make([]byte, 1500)
	for {
		n, from, err := s.pc.ReadFrom(buf)
		if err != nil {
			return
		}
		resp, err := s.answer(buf[:n])
		if err != nil {
			continue // not a query we can parse: no answer, as a real server
		}
		_, _ = s.pc.WriteTo(resp, from)
	}
}

// answer builds the response to one query message.
func (s *Server) answer(query []byte) ([]byte, error) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, err
	}
	q, err := p.Question()
	if err != nil {
		return nil, err
	}
	name := canonical(q.Name.String())
	s.mu.Lock()
	s.queries = append(s.queries, q.Type.String()+" "+name)
	srvs, hasSRV := s.srv[name]
	ip, hasA := s.a[name]
	s.mu.Unlock()

	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired}
	if !hasSRV && !hasA {
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, rh)
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	if err := b.StartAnswers(); err != nil {
		return nil, err
	}
	rr := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 1}
	switch {
	case q.Type == dnsmessage.TypeSRV && hasSRV:
		for _, r := range srvs {
			target, err := dnsmessage.NewName(canonical(r.Target))
			if err != nil {
				return nil, err
			}
			if err := b.SRVResource(rr, dnsmessage.SRVResource{Priority: r.Priority, Weight: r.Weight,
				Port: r.Port, Target: target}); err != nil {
				return nil, err
			}
		}
	case q.Type == dnsmessage.TypeA && hasA:
		var a dnsmessage.AResource
		if copy(a.A[:], ip) != 4 {
			return nil, errors.New("testdns: not an IPv4 address")
		}
		if err := b.AResource(rr, a); err != nil {
			return nil, err
		}
	}
	return b.Finish()
}
