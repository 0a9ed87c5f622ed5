package protocol_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/adwriteback/adwriteback/relay/keys"
	"github.com/adwriteback/adwriteback/relay/protocol"
)

// statusVectorsPath holds the golden vectors of status messages (§12),
// kept apart from the command and result vectors. -update rewrites it.
var statusVectorsPath = filepath.Join("testdata", "status-vectors.json")

// statusVector is one golden status envelope and what verifying it with
// the connector keys VerifyWith ("a", "b") must give.
type statusVector struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	VerifyWith  []string        `json:"verifyWith"`
	Envelope    string          `json:"envelope"`
	Want        statusWant      `json:"want"`
	Payload     json.RawMessage `json:"payload,omitempty"` // the signed payload, for reading
}

type statusWant struct {
	// Error is the expected error kind name (protocol.KindName); "" =
	// verified.
	Error      string `json:"error,omitempty"`
	Instance   string `json:"instance,omitempty"`
	State      string `json:"state,omitempty"`
	TakingWork bool   `json:"takingWork,omitempty"`
}

func readStatusVectors(t testing.TB) []statusVector {
	t.Helper()
	b, err := os.ReadFile(statusVectorsPath)
	if err != nil {
		t.Fatal(err)
	}
	var vs []statusVector
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatal(err)
	}
	return vs
}

// TestStatusVectors verifies every golden status vector; with -update it
// first regenerates them (Ed25519 signatures are deterministic, so the
// file changes only when the format does).
func TestStatusVectors(t *testing.T) {
	f := loadFixture(t)
	if *update {
		writeStatusVectors(t, makeStatusVectors(t, f))
	}
	vs := readStatusVectors(t)
	if len(vs) == 0 {
		t.Fatal("no status vectors")
	}
	for _, v := range vs {
		t.Run(v.Name, func(t *testing.T) {
			vk := protocol.VerifyKeys{}
			for _, k := range v.VerifyWith {
				c := map[string]*keys.ConnectorPrivate{"a": f.connA, "b": f.connB}[k]
				vk[c.KID] = c.Public().Verify
			}
			got, err := protocol.VerifyStatus([]byte(v.Envelope), vk)
			if name := protocol.KindName(err); v.Want.Error != "" {
				if err == nil || name != v.Want.Error {
					t.Fatalf("error %v (%s), want %s", err, name, v.Want.Error)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Instance != v.Want.Instance || string(got.State) != v.Want.State || got.TakingWork != v.Want.TakingWork {
				t.Errorf("got %s %s %v, want %+v", got.Instance, got.State, got.TakingWork, v.Want)
			}
		})
	}
}

func makeStatusVectors(t *testing.T, f fixture) []statusVector {
	signed := func(s protocol.Status) []byte {
		raw, err := protocol.SignStatus(&s, f.connA.SigningKey())
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	raw := func(s protocol.Status, typ string, mutate func(map[string]any)) []byte {
		m := statusPayload(t, s)
		mutate(m)
		p, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return signRaw(t, typ, p, f.connA.SigningKey())
	}
	running := baseStatus(f)
	stopping := baseStatus(f)
	stopping.State, stopping.TakingWork = protocol.StatusStopping, false
	degraded := baseStatus(f)
	degraded.TakingWork, degraded.Queue.State = false, protocol.QueueDown
	degraded.Domains = []protocol.DomainStatus{{Name: "corp.example.com", DCsDown: 2}, {Name: "emea.corp.example.com", DCsUp: 1, DCsUnknown: 1}}
	// the running heartbeat's signature over the stopping one's payload
	_, stoppingPayload := splitEnvelope(t, signed(stopping))
	tampered := swapPayload(t, signed(running), stoppingPayload)
	none := func(map[string]any) {}
	return []statusVector{
		{Name: "ok-running", Description: "a running connector taking work", VerifyWith: []string{"a"},
			Envelope: string(signed(running)), Want: statusWant{Instance: "connector-1", State: "running", TakingWork: true}},
		{Name: "ok-stopping", Description: "the last heartbeat of a clean stop", VerifyWith: []string{"a"},
			Envelope: string(signed(stopping)), Want: statusWant{Instance: "connector-1", State: "stopping"}},
		{Name: "ok-degraded", Description: "running, not taking work: queue link down, no DC up in one domain", VerifyWith: []string{"a", "b"},
			Envelope: string(signed(degraded)), Want: statusWant{Instance: "connector-1", State: "running"}},
		{Name: "unknown-signer", Description: "signed by a connector key the reader does not hold", VerifyWith: []string{"b"},
			Envelope: string(signed(running)), Want: statusWant{Error: "unknown_signer"}},
		{Name: "bad-signature", Description: "another payload under a valid heartbeat's signature", VerifyWith: []string{"a"},
			Envelope: string(tampered), Want: statusWant{Error: "bad_signature"}},
		{Name: "result-label", Description: "a status payload signed under the result label, relabelled status",
			VerifyWith: []string{"a"}, Envelope: relabel(t, raw(running, protocol.TypeResult, none), protocol.TypeStatus),
			Want: statusWant{Error: "bad_signature"}},
		{Name: "v1", Description: "status messages exist in version 2 only", VerifyWith: []string{"a"},
			Envelope: string(raw(running, protocol.TypeStatus, func(m map[string]any) { m["v"] = 1 })),
			Want:     statusWant{Error: "unsupported_version"}},
		{Name: "unknown-member", Description: "a member not in §12 (a DC host name)", VerifyWith: []string{"a"},
			Envelope: string(raw(running, protocol.TypeStatus, func(m map[string]any) { m["dc"] = "dc1.corp.example.com" })),
			Want:     statusWant{Error: "unknown_field"}},
		{Name: "kid-mismatch", Description: "connectorKid names another key than the envelope's kid", VerifyWith: []string{"a", "b"},
			Envelope: string(raw(running, protocol.TypeStatus, func(m map[string]any) { m["connectorKid"] = f.connB.KID })),
			Want:     statusWant{Error: "invalid_field"}},
		{Name: "takingwork-missing", Description: "takingWork is required", VerifyWith: []string{"a"},
			Envelope: string(raw(running, protocol.TypeStatus, func(m map[string]any) { delete(m, "takingWork") })),
			Want:     statusWant{Error: "invalid_field"}},
	}
}

// swapPayload replaces an envelope's payload, keeping its signature.
func swapPayload(t *testing.T, raw, payload []byte) []byte {
	var env map[string]any
	if err := json.Unmarshal(raw, &env); err != nil {
		t.Fatal(err)
	}
	env["payload"] = b64(payload)
	b, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// relabel changes an envelope's type member, keeping its signature.
func relabel(t *testing.T, raw []byte, typ string) string {
	var env map[string]any
	if err := json.Unmarshal(raw, &env); err != nil {
		t.Fatal(err)
	}
	env["type"] = typ
	b, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeStatusVectors(t *testing.T, vs []statusVector) {
	for i := range vs {
		_, p := splitEnvelope(t, []byte(vs[i].Envelope))
		vs[i].Payload = json.RawMessage(p)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(vs); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(statusVectorsPath, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestStatusDocExample: the envelope §12 of PROTOCOL.md shows is the
// ok-running vector, byte for byte, and its payload block is that
// envelope's payload.
func TestStatusDocExample(t *testing.T) {
	doc, err := os.ReadFile("PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := bytes.Cut(doc, []byte("\n## 12. Status messages\n"))
	if !ok {
		t.Fatal("PROTOCOL.md has no §12 Status messages")
	}
	var blocks [][]byte
	for {
		var block []byte
		_, rest, ok := bytes.Cut(sec, []byte("```json\n"))
		if !ok {
			break
		}
		block, sec, _ = bytes.Cut(rest, []byte("\n```"))
		blocks = append(blocks, block)
	}
	if len(blocks) != 2 {
		t.Fatalf("§12 has %d JSON examples, want 2 (the envelope and its payload)", len(blocks))
	}
	var want statusVector
	for _, v := range readStatusVectors(t) {
		if v.Name == "ok-running" {
			want = v
		}
	}
	if string(blocks[0]) != want.Envelope {
		t.Errorf("§12's envelope is not the ok-running vector")
	}
	fx := loadFixture(t)
	if _, err := protocol.VerifyStatus(blocks[0], fx.connectorResultKeys()); err != nil {
		t.Errorf("§12's envelope: %v", err)
	}
	_, payload := splitEnvelope(t, blocks[0])
	var a, b any
	if json.Unmarshal(payload, &a) != nil || json.Unmarshal(blocks[1], &b) != nil || !reflect.DeepEqual(a, b) {
		t.Errorf("§12's payload block is not its envelope's payload")
	}
}
