package ldapx

import (
	"context"
	"net"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
)

// TestConnLostMidRequestIsTransient: a DC that dies after reading a modify
// (the connection closes before any answer) leaves the write's outcome
// unknown. go-ldap reports that with a plain error; it must come out
// transient, so the engine checks whether the write landed and retries,
// not "internal".
func TestConnLostMidRequestIsTransient(t *testing.T) {
	client, dc := net.Pipe()
	got := make(chan error, 1)
	go func() {
		_, err := ber.ReadPacket(dc) // the modify arrives...
		dc.Close()                   // ...and the DC goes away
		got <- err
	}()
	l := ldap.NewConn(client, true)
	l.Start()
	defer l.Close()
	c := &conn{l: l, srv: &server{}}
	err := c.do(context.Background(), 10*time.Second, func(l *ldap.Conn) error {
		return l.Modify(ldap.NewModifyRequest("CN=u,DC=adw,DC=test", nil))
	})
	if rerr := <-got; rerr != nil {
		t.Fatalf("the fake DC did not read a request: %v", rerr)
	}
	if err == nil {
		t.Fatal("a modify whose connection closed succeeded")
	}
	derr := decode("ldapx.Reset", "ldaps://dc", err)
	if k := KindOf(derr); k != KindTransient {
		t.Fatalf("kind %v, want transient (%v)", k, derr)
	}
	if !c.broken.Load() {
		t.Error("the connection was not marked broken")
	}
}
