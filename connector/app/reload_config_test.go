package app

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/pem"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/adwriteback/adwriteback/connector/config"
	"github.com/adwriteback/adwriteback/connector/engine"
	"github.com/adwriteback/adwriteback/connector/journal"
	"github.com/adwriteback/adwriteback/connector/policy"
	"github.com/adwriteback/adwriteback/ldapx"
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
	dom  *engine.Domain
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
	dom := &engine.Domain{Name: "adw.test"}
	a.Engine, err = engine.New(engine.Config{Receiver: &protocol.Receiver{Senders: verify, Keys: open},
		Signer: conn.SigningKey(), Journal: jr, Reporter: nopReporter{}, Domains: []*engine.Domain{dom},
		Concurrency: 1, MaxAttempts: 1, WriteWindow: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return &reloadRig{a: a, log: &log, dir: dir, conn: conn, dom: dom}
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

func TestReloadReporterSendsTheNextResultsToTheNewEndpoint(t *testing.T) {
	hits := map[string]int{}
	var mu sync.Mutex
	handler := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			mu.Lock()
			hits[name]++
			mu.Unlock()
		})
	}
	srvA, srvB := httptest.NewTLSServer(handler("a")), httptest.NewTLSServer(handler("b"))
	defer srvA.Close()
	defer srvB.Close()
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srvA.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	a := &App{Cfg: &config.Config{}, Log: slog.New(slog.NewTextHandler(&log, nil))}
	a.reloadCfg.https = &swapReporter{}
	if err := a.applyHTTPS(config.HTTPSResults{URL: srvA.URL, CAFile: ca, MaxAttempts: 1}); err != nil {
		t.Fatal(err)
	}
	report := func() {
		t.Helper()
		if err := a.reloadCfg.https.Report(context.Background(), nil, "id-1", []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
	report()
	if err := a.applyHTTPS(config.HTTPSResults{URL: srvB.URL, CAFile: ca, MaxAttempts: 1}); err != nil {
		t.Fatal(err)
	}
	report()
	bad := filepath.Join(dir, "bad.pem")
	if err := os.WriteFile(bad, []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := a.applyHTTPS(config.HTTPSResults{URL: srvA.URL, CAFile: bad, MaxAttempts: 1})
	if err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(log.String(), "reload refused") {
		t.Fatalf("a CA file without a certificate: %v", err)
	}
	report()
	mu.Lock()
	defer mu.Unlock()
	if hits["a"] != 1 || hits["b"] != 2 {
		t.Fatalf("results per endpoint %v, want a:1 b:2", hits)
	}
}

func TestReloadPolicyListsPutsANewListInForceAndRefusesABadOne(t *testing.T) {
	r := newReloadRig(t)
	banned := filepath.Join(r.dir, "banned.txt")
	if err := os.WriteFile(banned, []byte("tangerine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r.a.Domains = map[string]*ldapx.Client{"adw.test": nil}
	r.a.Cfg.Domains = []*config.Domain{{Name: "adw.test", OrgPolicy: config.OrgPolicy{BannedWordsFile: banned}}}
	if err := r.a.reloadPolicyLists(context.Background()); err != nil {
		t.Fatal(err)
	}
	inForce := func() *policy.BannedList { return engine.LocalPolicy(r.dom, &ldapx.Policy{}).Banned }
	first := inForce()
	if first == nil {
		t.Fatal("no banned list in force after the reload")
	}
	r.a.Cfg.Domains[0].OrgPolicy.BannedWordsFile = filepath.Join(r.dir, "gone.txt")
	err := r.a.reloadPolicyLists(context.Background())
	if err == nil || !strings.Contains(err.Error(), "banned words") || !strings.Contains(r.log.String(), "reload refused") {
		t.Fatalf("a missing banned-words file: %v", err)
	}
	if inForce() != first {
		t.Fatal("a refused reload changed the list in force")
	}
}
