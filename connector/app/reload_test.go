package app

import (
	"bytes"
	"context"
	"encoding/base64"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/adwriteback/adwriteback/connector/config"
	"github.com/adwriteback/adwriteback/connector/engine"
	"github.com/adwriteback/adwriteback/connector/journal"
	"github.com/adwriteback/adwriteback/relay/keys"
	"github.com/adwriteback/adwriteback/relay/protocol"
	"github.com/adwriteback/adwriteback/relay/transport"
)

type nopReporter struct{}

func (nopReporter) Report(context.Context, *transport.Delivery, string, []byte) error { return nil }

// reloadRig is an app with only what reloadKeys touches: its
// configuration (no file: the key files it names are re-read), an
// engine and a log.
type reloadRig struct {
	a    *App
	log  *bytes.Buffer
	dir  string
	conn *keys.ConnectorPrivate
}

func newReloadRig(t *testing.T) *reloadRig {
	t.Helper()
	dir := t.TempDir()
	now := time.Now()
	conn, err := keys.GenerateConnector(keys.DefaultKEM, now)
	if err != nil {
		t.Fatal(err)
	}
	snd, err := keys.GenerateSender(now)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := conn.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{Keys: config.Keys{
		Connector: []string{writeKey(t, dir, "conn.key.json", cb, keys.PrivateMode)},
		Senders:   []string{writeKey(t, dir, "sender.pub.json", snd.Public().Marshal(), keys.PublicMode)},
	}}
	jr, err := journal.Open(filepath.Join(dir, "j.db"), journal.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { jr.Close() })
	var log bytes.Buffer
	a := &App{Cfg: cfg, Log: slog.New(slog.NewTextHandler(&log, nil))}
	open, verify, err := a.loadKeys()
	if err != nil {
		t.Fatal(err)
	}
	a.Engine, err = engine.New(engine.Config{Receiver: &protocol.Receiver{Senders: verify, Keys: open},
		Signer: conn.SigningKey(), Journal: jr, Reporter: nopReporter{}, Domains: []*engine.Domain{{Name: "adw.test"}},
		Concurrency: 1, MaxAttempts: 1, WriteWindow: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return &reloadRig{a: a, log: &log, dir: dir, conn: conn}
}

func writeKey(t *testing.T, dir, name string, b []byte, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := keys.WriteFile(p, b, mode, true); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReloadKeysSwapsAndLogsKeyIDs(t *testing.T) {
	r := newReloadRig(t)
	old := r.a.Senders[0].KID
	snd2, err := keys.GenerateSender(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	p2 := writeKey(t, r.dir, "sender2.pub.json", snd2.Public().Marshal(), keys.PublicMode)
	r.a.Cfg.Keys.Senders = []string{p2}
	if err := r.a.reloadKeys(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := r.a.Engine.CurrentKeys()
	if _, ok := got.Senders[snd2.KID]; !ok || len(got.Senders) != 1 {
		t.Fatalf("senders in force %v, want only %s", slices.Collect(maps.Keys(got.Senders)), snd2.KID)
	}
	for _, want := range []string{"sender_added=[" + snd2.KID + "]", "sender_removed=[" + old + "]"} {
		if !strings.Contains(r.log.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, r.log)
		}
	}
}

func TestReloadKeysRefusesABadFileAndKeepsTheOldSet(t *testing.T) {
	for name, edit := range map[string]func(t *testing.T, r *reloadRig) string{
		"corrupt sender key": func(t *testing.T, r *reloadRig) string {
			p := r.a.Cfg.Keys.Senders[0]
			if err := os.WriteFile(p, []byte(`{"v":1,"type":"adwriteback-sender-public-key"`), keys.PublicMode); err != nil {
				t.Fatal(err)
			}
			return p
		},
		"connector key readable by others": func(t *testing.T, r *reloadRig) string {
			p := r.a.Cfg.Keys.Connector[0]
			if err := os.Chmod(p, 0o644); err != nil {
				t.Fatal(err)
			}
			return p
		},
		"missing sender key": func(t *testing.T, r *reloadRig) string {
			p := filepath.Join(r.dir, "gone.pub.json")
			r.a.Cfg.Keys.Senders = append(r.a.Cfg.Keys.Senders, p)
			return p
		},
	} {
		t.Run(name, func(t *testing.T) {
			r := newReloadRig(t)
			before := r.a.Engine.CurrentKeys()
			file := edit(t, r)
			err := r.a.reloadKeys(context.Background())
			if err == nil || !strings.Contains(err.Error(), file) {
				t.Fatalf("reload: %v, want a refusal naming %s", err, file)
			}
			after := r.a.Engine.CurrentKeys()
			if after.Signer.KID != before.Signer.KID || len(after.Senders) != len(before.Senders) || len(r.a.Senders) != 1 {
				t.Fatal("the old key set is not in force any more")
			}
			logs := r.log.String()
			if !strings.Contains(logs, "reload refused") {
				t.Errorf("no refusal logged:\n%s", logs)
			}
			seed := base64.StdEncoding.EncodeToString(r.conn.Sign.Seed())
			if strings.Contains(logs, seed) || strings.Contains(err.Error(), seed) {
				t.Error("key material in the log or error")
			}
		})
	}
}

func TestRestartNeededNamesOnlyOtherSettings(t *testing.T) {
	old := &config.Config{Domains: []*config.Domain{{Name: "adw.test"}}, Journal: config.Journal{Path: "/a"}}
	same := &config.Config{Domains: []*config.Domain{{Name: "adw.test"}}, Journal: config.Journal{Path: "/a"},
		Keys: config.Keys{Senders: []string{"/s"}}, Results: config.Results{HTTPS: config.HTTPSResults{URL: "https://x"}}}
	same.Domains[0].OrgPolicy.BannedWordsFile = "/banned"
	if got := restartNeeded(old, same); len(got) != 0 {
		t.Errorf("reloadable changes need a restart: %v", got)
	}
	other := &config.Config{Domains: []*config.Domain{{Name: "adw.test", OpTimeout: time.Second}}, Journal: config.Journal{Path: "/b"}}
	if got := restartNeeded(old, other); !slices.Equal(got, []string{"domains", "journal"}) {
		t.Errorf("restart needed for %v, want domains and journal", got)
	}
}
