package protocol_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/adwriteback/adwriteback/relay/protocol"
)

// baseStatus is a valid heartbeat of the test connector key A at testNow.
func baseStatus(f fixture) protocol.Status {
	return protocol.Status{
		V: protocol.Version, ConnectorKID: f.connA.KID, Instance: "connector-1", Version: "1.4.0",
		StartedAt: protocol.At(testNow.Add(-time.Hour)), SentAt: protocol.At(testNow),
		State: protocol.StatusRunning, TakingWork: true,
		Queue: protocol.QueueStatus{State: protocol.QueueUp}, Journal: protocol.JournalStatus{State: protocol.JournalOK},
		Domains:  []protocol.DomainStatus{{Name: "corp.example.com", DCsUp: 2, DCsDown: 1}},
		Interval: 60,
	}
}

// statusPayload is s as a JSON object the test can change member by member.
func statusPayload(t testing.TB, s protocol.Status) map[string]any {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestStatusRoundTrip(t *testing.T) {
	f := loadFixture(t)
	s := baseStatus(f)
	raw, err := protocol.SignStatus(&s, f.connA.SigningKey())
	if err != nil {
		t.Fatal(err)
	}
	got, err := protocol.VerifyStatus(raw, f.connectorResultKeys())
	if err != nil {
		t.Fatal(err)
	}
	if got.SignerKID != f.connA.KID || got.Instance != "connector-1" || !got.TakingWork ||
		got.Domains[0].DCsUp != 2 || got.Domains[0].DCsDown != 1 || !got.SentAt.Equal(testNow) {
		t.Fatalf("got %+v", got)
	}
	if want := testNow.Add(2 * time.Minute); !got.StaleAt().Equal(want) {
		t.Errorf("StaleAt %s, want %s", got.StaleAt(), want)
	}
}

// TestStatusSignatureIsTyped: a status signature verifies neither as a
// result nor as a command, and a result's does not verify as a status.
func TestStatusSignatureIsTyped(t *testing.T) {
	f := loadFixture(t)
	s := baseStatus(f)
	payload, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	asResult := signRaw(t, protocol.TypeResult, payload, f.connA.SigningKey())
	relabelled := []byte(string(asResult))
	var env map[string]any
	if err := json.Unmarshal(relabelled, &env); err != nil {
		t.Fatal(err)
	}
	env["type"] = protocol.TypeStatus
	relabelled, _ = json.Marshal(env)
	_, err = protocol.VerifyStatus(relabelled, f.connectorResultKeys())
	wantKind(t, err, protocol.ErrBadSignature)

	raw, err := protocol.SignStatus(&s, f.connA.SigningKey())
	if err != nil {
		t.Fatal(err)
	}
	_, err = protocol.VerifyResult(raw, f.connectorResultKeys())
	wantKind(t, err, protocol.ErrInvalidField)
}

func TestStatusUnknownSigner(t *testing.T) {
	f := loadFixture(t)
	s := baseStatus(f)
	raw, err := protocol.SignStatus(&s, f.connA.SigningKey())
	if err != nil {
		t.Fatal(err)
	}
	only := protocol.VerifyKeys{f.connB.KID: f.connB.Public().Verify}
	_, err = protocol.VerifyStatus(raw, only)
	wantKind(t, err, protocol.ErrUnknownSigner)
}

// TestStatusRejects: each broken rule of §12, signed validly so that the
// payload checks are reached.
func TestStatusRejects(t *testing.T) {
	f := loadFixture(t)
	cases := []struct {
		name   string
		mutate func(m map[string]any)
		kind   error
	}{
		{"v1", func(m map[string]any) { m["v"] = 1 }, protocol.ErrUnsupportedVersion},
		{"unknown member", func(m map[string]any) { m["host"] = "dc1" }, protocol.ErrUnknownField},
		{"unknown domain member", func(m map[string]any) {
			m["domains"] = []any{map[string]any{"name": "corp.example.com", "dcsUp": 1, "dcsDown": 0, "dcsUnknown": 0, "dcs": "dc1"}}
		}, protocol.ErrUnknownField},
		{"takingWork missing", func(m map[string]any) { delete(m, "takingWork") }, protocol.ErrInvalidField},
		{"takingWork a string", func(m map[string]any) { m["takingWork"] = "yes" }, protocol.ErrInvalidField},
		{"connectorKid of another key", func(m map[string]any) { m["connectorKid"] = f.connB.KID }, protocol.ErrInvalidField},
		{"instance with a space", func(m map[string]any) { m["instance"] = "a b" }, protocol.ErrInvalidField},
		{"no version", func(m map[string]any) { delete(m, "version") }, protocol.ErrInvalidField},
		{"state", func(m map[string]any) { m["state"] = "paused" }, protocol.ErrInvalidField},
		{"stopping and taking work", func(m map[string]any) { m["state"] = "stopping" }, protocol.ErrInvalidField},
		{"queue state", func(m map[string]any) { m["queue"] = map[string]any{"state": "connecting"} }, protocol.ErrInvalidField},
		{"journal state", func(m map[string]any) { m["journal"] = map[string]any{"state": "full"} }, protocol.ErrInvalidField},
		{"no domains", func(m map[string]any) { m["domains"] = []any{} }, protocol.ErrInvalidField},
		{"negative count", func(m map[string]any) {
			m["domains"] = []any{map[string]any{"name": "corp.example.com", "dcsUp": -1, "dcsDown": 0, "dcsUnknown": 0}}
		}, protocol.ErrInvalidField},
		{"domain twice", func(m map[string]any) {
			d := map[string]any{"name": "corp.example.com", "dcsUp": 1, "dcsDown": 0, "dcsUnknown": 0}
			m["domains"] = []any{d, d}
		}, protocol.ErrInvalidField},
		{"interval 0", func(m map[string]any) { m["interval"] = 0 }, protocol.ErrInvalidField},
		{"interval fractional", func(m map[string]any) { m["interval"] = 1.5 }, protocol.ErrInvalidField},
		{"sent before started", func(m map[string]any) { m["sentAt"] = "2025-06-01T10:00:00Z" }, protocol.ErrInvalidField},
		{"offset timestamp", func(m map[string]any) { m["sentAt"] = "2025-06-01T12:00:00+00:00" }, protocol.ErrInvalidField},
		{"null", func(m map[string]any) { m["version"] = nil }, protocol.ErrInvalidField},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := statusPayload(t, baseStatus(f))
			tc.mutate(m)
			p, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			raw := signRaw(t, protocol.TypeStatus, p, f.connA.SigningKey())
			_, err = protocol.VerifyStatus(raw, f.connectorResultKeys())
			wantKind(t, err, tc.kind)
		})
	}
}

// TestSignStatusRefuses: the signer validates, and signs only with the
// key the heartbeat names.
func TestSignStatusRefuses(t *testing.T) {
	f := loadFixture(t)
	s := baseStatus(f)
	if _, err := protocol.SignStatus(&s, f.connB.SigningKey()); err == nil {
		t.Error("signed with a key other than connectorKid")
	}
	s.Domains = nil
	_, err := protocol.SignStatus(&s, f.connA.SigningKey())
	wantKind(t, err, protocol.ErrInvalidField)
}

func FuzzVerifyStatus(f *testing.F) {
	fx := loadFixture(f)
	s := baseStatus(fx)
	raw, err := protocol.SignStatus(&s, fx.connA.SigningKey())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)
	for _, v := range readStatusVectors(f) {
		f.Add([]byte(v.Envelope))
	}
	vk := fx.connectorResultKeys()
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := protocol.VerifyStatus(b, vk)
		checkErr(t, err)
		if err == nil {
			if v.Validate() != nil || v.SignerKID != v.ConnectorKID {
				t.Fatalf("accepted an invalid status: %+v", v)
			}
		}
	})
}

func FuzzParseStatus(f *testing.F) {
	fx := loadFixture(f)
	b, err := json.Marshal(baseStatus(fx))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := protocol.ParseStatus(b)
		checkErr(t, err)
		if err == nil && s.Validate() != nil {
			t.Fatalf("accepted an invalid status: %+v", s)
		}
	})
}
