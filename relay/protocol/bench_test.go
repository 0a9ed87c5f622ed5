package protocol_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/adwriteback/adwriteback/relay/protocol"
)

func BenchmarkSeal(b *testing.B) {
	f := loadFixture(b)
	key := f.connA.Public().SealKey()
	pw := protocol.SecretFromString(pwNew)
	c := baseCommand(protocol.OpReset)
	for b.Loop() {
		if err := protocol.Seal(&c, key, protocol.DefaultSuite(), pw, protocol.Secret{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	f := loadFixture(b)
	c := baseCommand(protocol.OpReset)
	if err := protocol.Seal(&c, f.connA.Public().SealKey(), protocol.DefaultSuite(), protocol.SecretFromString(pwNew), protocol.Secret{}); err != nil {
		b.Fatal(err)
	}
	keys := protocol.OpenKeys{f.connA.KID: f.connA.HPKE}
	for b.Loop() {
		s, err := c.Open(keys)
		if err != nil {
			b.Fatal(err)
		}
		s.Zero()
	}
}

func BenchmarkSign(b *testing.B) {
	f := loadFixture(b)
	c := baseCommand(protocol.OpReset)
	if err := protocol.Seal(&c, f.connA.Public().SealKey(), protocol.DefaultSuite(), protocol.SecretFromString(pwNew), protocol.Secret{}); err != nil {
		b.Fatal(err)
	}
	k := f.sender.SigningKey()
	for b.Loop() {
		if _, err := protocol.SignCommand(&c, k); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify is signature check plus strict decode and validation of
// the command (no secret opening).
func BenchmarkVerify(b *testing.B) {
	f := loadFixture(b)
	raw := buildCommand(b, f, baseCommand(protocol.OpReset))
	keys := f.senders()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := protocol.VerifyCommand(raw, keys); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyAndOpenCommand is the connector's whole protocol cost per
// command: Receiver.Receive (verify, times, open, replay claim).
func BenchmarkVerifyAndOpenCommand(b *testing.B) {
	f := loadFixture(b)
	const n = 1024
	raws := make([][]byte, n)
	for i := range raws {
		c := baseCommand(protocol.OpReset)
		c.ID = fmt.Sprintf("bench-%d", i)
		raws[i] = buildCommand(b, f, c)
	}
	rcv := f.receiver(testNow)
	i := 0
	for b.Loop() {
		if i%n == 0 { // ids repeat every n: start a fresh replay cache
			rcv.Replay = protocol.NewMemoryReplayCache(func() time.Time { return testNow }, 0)
		}
		got, err := rcv.Receive(context.Background(), raws[i%n], fmt.Sprintf("bench-%d", i%n))
		if err != nil {
			b.Fatal(err)
		}
		got.Secrets.Zero()
		i++
	}
}

// BenchmarkSignResult is the connector's cost to answer.
func BenchmarkSignResult(b *testing.B) {
	f := loadFixture(b)
	r := goodResult()
	k := f.connA.SigningKey()
	for b.Loop() {
		if _, err := protocol.SignResult(&r, k); err != nil {
			b.Fatal(err)
		}
	}
}
