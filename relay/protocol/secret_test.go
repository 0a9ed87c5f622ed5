package protocol_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/adwriteback/adwriteback/relay/protocol"
)

func TestReadSecret(t *testing.T) {
	r := strings.NewReader("new-Passw0rd!\r\nold-Passw0rd!\nrest")
	a, err := protocol.ReadSecret(r)
	if err != nil || string(a.Bytes()) != "new-Passw0rd!" {
		t.Fatalf("first line: %v", err)
	}
	b, err := protocol.ReadSecret(r)
	if err != nil || string(b.Bytes()) != "old-Passw0rd!" {
		t.Fatalf("second line: %v", err)
	}
	c, err := protocol.ReadSecret(iotest.OneByteReader(strings.NewReader("no-newline-at-end")))
	if err != nil || string(c.Bytes()) != "no-newline-at-end" {
		t.Fatalf("EOF line: %v", err)
	}
	exact := strings.Repeat("a", protocol.MaxPasswordBytes)
	if _, err := protocol.ReadSecret(strings.NewReader(exact + "\n")); !errors.Is(err, protocol.ErrBadSecret) {
		// 768 ASCII bytes are 768 UTF-16 units: too long for AD.
		t.Fatalf("768 ASCII: %v", err)
	}
	ok := strings.Repeat("€", 256) // 768 bytes, 256 units
	if s, err := protocol.ReadSecret(strings.NewReader(ok)); err != nil || s.UTF16Len() != 256 {
		t.Fatalf("max: %v", err)
	}
	for _, bad := range []string{"", "\n", "\r\n", "a\x00b\n", "\xff\xfe\n"} {
		if _, err := protocol.ReadSecret(strings.NewReader(bad)); !errors.Is(err, protocol.ErrBadSecret) {
			t.Fatalf("%q: %v", bad, err)
		}
	}
	if _, err := protocol.ReadSecret(iotest.ErrReader(errors.New("boom"))); err == nil || errors.Is(err, protocol.ErrBadSecret) {
		t.Fatalf("read error: %v", err)
	}
}

func TestMemoryReplayCacheConcurrentClaims(t *testing.T) {
	m := protocol.NewMemoryReplayCache(nil, 0)
	const n = 16
	results := make(chan protocol.ClaimStatus, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := m.Claim(context.Background(), "same-id", [32]byte{9}, time.Now().Add(time.Minute))
			if err != nil {
				t.Error(err)
			}
			results <- s
		}()
	}
	wg.Wait()
	close(results)
	fresh := 0
	for s := range results {
		if s == protocol.ClaimNew {
			fresh++
		}
	}
	if fresh != 1 {
		t.Fatalf("%d concurrent claims of one id were new", fresh)
	}
}
