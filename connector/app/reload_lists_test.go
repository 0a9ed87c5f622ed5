package app

import (
	"context"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/adwriteback/adwriteback/connector/config"
	"github.com/adwriteback/adwriteback/connector/engine"
	"github.com/adwriteback/adwriteback/connector/policy"
	"github.com/adwriteback/adwriteback/connector/policy/breach"
	"github.com/adwriteback/adwriteback/ldapx"
)

// listsRig is a reload rig whose domain has a banned-word list and a
// breached index, in files of its directory.
type listsRig struct {
	*reloadRig
	banned, breached string
}

func newListsRig(t *testing.T) *listsRig {
	t.Helper()
	r := &listsRig{reloadRig: newReloadRig(t)}
	r.banned = filepath.Join(r.dir, "banned.txt")
	r.breached = filepath.Join(r.dir, "breached.idx")
	writeFile(t, r.banned, "tangerine\n")
	buildIndex(t, r.breached, "pw-old")
	r.a.Domains = map[string]*ldapx.Client{"adw.test": nil}
	r.a.Cfg.Domains = []*config.Domain{{Name: "adw.test",
		OrgPolicy: config.OrgPolicy{BannedWordsFile: r.banned, BreachedIndex: r.breached}}}
	t.Cleanup(func() {
		for _, c := range r.a.closers {
			c()
		}
	})
	return r
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// buildIndex builds at path (atomically: a new file) the SHA-1 index of
// the passwords.
func buildIndex(t *testing.T, path string, passwords ...string) {
	t.Helper()
	var in strings.Builder
	for _, pw := range passwords {
		in.WriteString(strings.ToUpper(hex.EncodeToString(breach.SHA1.Hash(pw))) + ":5\n")
	}
	if _, err := breach.Build(context.Background(), strings.NewReader(in.String()), path, breach.BuildOptions{}); err != nil {
		t.Fatal(err)
	}
}

// inForce are the lists the engine checks the domain's passwords with.
func (r *listsRig) inForce() (*policy.BannedList, policy.BreachChecker) {
	p := engine.LocalPolicy(r.dom, &ldapx.Policy{})
	return p.Banned, p.Breached
}

// reload reloads the lists and returns the reload's log line.
func (r *listsRig) reload(t *testing.T) string {
	t.Helper()
	r.log.Reset()
	if err := r.a.reloadPolicyLists(context.Background()); err != nil {
		t.Fatal(err)
	}
	return r.log.String()
}

// loaded reloads the lists twice, checks that the second reload kept
// both lists the first put in force, and returns them.
func (r *listsRig) loaded(t *testing.T) (*policy.BannedList, policy.BreachChecker) {
	t.Helper()
	r.reload(t)
	banned, breached := r.inForce()
	if banned == nil || breached == nil {
		t.Fatal("no lists in force after a reload")
	}
	r.reload(t)
	if b, x := r.inForce(); b != banned || x != breached {
		t.Fatalf("an unchanged file's list was replaced: banned %p -> %p, breached %p -> %p", banned, b, breached, x)
	}
	return banned, breached
}

// breachedPw says whether the checker b finds pw breached.
func breachedPw(t *testing.T, b policy.BreachChecker, pw string) bool {
	t.Helper()
	ok, err := b.Breached(pw)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func TestReloadPolicyListsKeepsUnchangedLists(t *testing.T) {
	r := newListsRig(t)
	banned, breached := r.loaded(t)
	closers := len(r.a.closers)
	for range 3 {
		line := r.reload(t)
		if b, x := r.inForce(); b != banned || x != breached {
			t.Fatalf("an unchanged file's list was replaced: banned %p -> %p, breached %p -> %p", banned, b, breached, x)
		}
		if !strings.Contains(line, "banned_words=unchanged") || !strings.Contains(line, "breached_index=unchanged") {
			t.Fatalf("reload log: %s", line)
		}
	}
	if len(r.a.closers) != closers {
		t.Fatalf("reloads of unchanged files opened %d files", len(r.a.closers)-closers)
	}
}

func TestReloadPolicyListsReloadsAChangedBannedFile(t *testing.T) {
	r := newListsRig(t)
	first, _ := r.loaded(t)
	fi, err := os.Stat(r.banned)
	if err != nil {
		t.Fatal(err)
	}

	// Rewritten in place at the same size, with a later time.
	writeFile(t, r.banned, "mandarine\n")
	later := fi.ModTime().Add(time.Minute)
	if err := os.Chtimes(r.banned, later, later); err != nil {
		t.Fatal(err)
	}
	line := r.reload(t)
	second, _ := r.inForce()
	if second == first || !strings.Contains(line, "banned_words=reloaded") || !strings.Contains(line, "breached_index=unchanged") {
		t.Fatalf("a rewritten banned file: list replaced %v, log %s", second != first, line)
	}
	if _, ok := second.Match("Mandarine2026"); !ok {
		t.Fatal("the list in force is not the new file's")
	}

	// Replaced by another file of the same size and time.
	other := filepath.Join(r.dir, "banned.new")
	writeFile(t, other, "clementin\n")
	if err := os.Chtimes(other, later, later); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(other, r.banned); err != nil {
		t.Fatal(err)
	}
	line = r.reload(t)
	if third, _ := r.inForce(); third == second || !strings.Contains(line, "banned_words=reloaded") {
		t.Fatalf("a banned file replaced by another: list replaced %v, log %s", third != second, line)
	}
}

func TestReloadPolicyListsReopensAChangedIndex(t *testing.T) {
	r := newListsRig(t)
	_, first := r.loaded(t)
	closers := len(r.a.closers)

	buildIndex(t, r.breached, "pw-old", "pw-new") // a new file renamed over the old
	line := r.reload(t)
	_, second := r.inForce()
	if second == first || !strings.Contains(line, "breached_index=reloaded") || !strings.Contains(line, "banned_words=unchanged") {
		t.Fatalf("a rebuilt index: index replaced %v, log %s", second != first, line)
	}
	if !breachedPw(t, second, "pw-new") {
		t.Fatal("the index in force is not the rebuilt one")
	}
	if len(r.a.closers) != closers+1 {
		t.Fatalf("the rebuilt index added %d closers, want 1", len(r.a.closers)-closers)
	}
	// The replaced index stays open for a check in flight.
	if !breachedPw(t, first, "pw-old") || breachedPw(t, first, "pw-new") {
		t.Fatal("the replaced index does not read as before")
	}
	r.reload(t)
	if _, x := r.inForce(); x != second {
		t.Fatal("the rebuilt index, unchanged since, was opened again")
	}
}
