package sender_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/adwriteback/adwriteback/relay/keys"
	"github.com/adwriteback/adwriteback/relay/protocol"
	"github.com/adwriteback/adwriteback/relay/sender"
)

func TestParseUser(t *testing.T) {
	good := map[string]protocol.UserRef{
		"ada@corp.example.com":                            {UPN: "ada@corp.example.com", Domain: "corp.example.com"},
		"upn:ada@corp.example.com":                        {UPN: "ada@corp.example.com", Domain: "corp.example.com"},
		"8e2f6a1c-3b4d-4e5f-9a0b-1c2d3e4f5a6b":            {ObjectGUID: "8e2f6a1c-3b4d-4e5f-9a0b-1c2d3e4f5a6b", Domain: "corp.example.com"},
		"objectGUID:8e2f6a1c-3b4d-4e5f-9a0b-1c2d3e4f5a6b": {ObjectGUID: "8e2f6a1c-3b4d-4e5f-9a0b-1c2d3e4f5a6b", Domain: "corp.example.com"},
		"immutableId:HBoGe8dNQ0WDq9U0Y7Q2zg==":            {ImmutableID: "HBoGe8dNQ0WDq9U0Y7Q2zg==", Domain: "corp.example.com"},
		"ada":                                             {SAM: "ada", Domain: "corp.example.com"},
		"sam:ada":                                         {SAM: "ada", Domain: "corp.example.com"},
	}
	for in, want := range good {
		got, err := sender.ParseUser(in, "corp.example.com")
		if err != nil || got != want {
			t.Fatalf("%q: %+v %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "upn:ada", "objectGUID:xyz", "immutableId:AAAA", "sam:a/b", "phone:123", "a b@c"} {
		if _, err := sender.ParseUser(bad, ""); !errors.Is(err, sender.ErrBadUser) {
			t.Fatalf("%q: %v", bad, err)
		}
	}
	if _, err := sender.ParseUser("ada", "not a domain"); !errors.Is(err, sender.ErrBadUser) {
		t.Fatal("bad domain accepted")
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	sk, _ := keys.GenerateSender(now)
	c1, _ := keys.GenerateConnector(0, now)
	c2, _ := keys.GenerateConnector(0, now)
	write := func(name string, b []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := keys.WriteFile(p, b, mode, false); err != nil {
			t.Fatal(err)
		}
		return p
	}
	skp := write("sender.key.json", sk.Marshal(), keys.PrivateMode)
	p1 := write("c1.pub.json", c1.Public().Marshal(), keys.PublicMode)
	p2 := write("c2.pub.json", c2.Public().Marshal(), keys.PublicMode)
	cfg, err := sender.LoadConfig(skp, p2, p1)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SealTo.KID != c2.KID || len(cfg.ResultKeys) != 2 || cfg.Signer.KID != sk.KID {
		t.Fatalf("config %+v", cfg)
	}
	if _, err := sender.LoadConfig(skp); err == nil {
		t.Fatal("no connector key accepted")
	}
	if _, err := sender.LoadConfig(p1, p1); !errors.Is(err, keys.ErrInvalidKey) {
		t.Fatalf("public file as private key: %v", err)
	}
}
