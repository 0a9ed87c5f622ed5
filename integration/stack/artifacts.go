package stack

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
)

// ModuleRoot is the directory holding go.mod, at or above the working
// directory.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("stack: go.mod not found above the working directory")
		}
		dir = parent
	}
}

// ArtifactsDir is integration/artifacts/<name>/ in the module (a test's
// name, its subtests' slashes made underscores).
func ArtifactsDir(name string) (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "integration", "artifacts", strings.ReplaceAll(name, "/", "_")), nil
}

// keepArtifacts leaves the evidence of a failed test for whoever reads the
// CI log: each connector's log, audit log and configuration, the
// emulator's log, and what the test received; and the tail of the logs in
// the test's output.
func (e *Env) keepArtifacts() {
	dir, err := ArtifactsDir(e.tb.Name())
	if err == nil {
		_ = os.RemoveAll(dir) // an earlier run's
		err = os.MkdirAll(dir, 0o755)
	}
	if err != nil {
		e.tb.Logf("artifacts not kept: %v", err)
		return
	}
	files := map[string][]byte{
		"emulator.log": []byte(e.Emu.Log()),
		"results.txt":  []byte(e.Results.String()),
	}
	for _, c := range e.all() {
		files["connector-"+c.name+".log"] = []byte(c.Logs())
		files["audit-"+c.name+".jsonl"] = []byte(c.Audit())
		if b, err := os.ReadFile(c.ConfigPath()); err == nil {
			files["config-"+c.name+".yaml"] = b
		}
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			e.tb.Logf("artifacts: %v", err)
		}
	}
	e.tb.Logf("logs, audit and configs kept in %s", dir)
	e.tb.Logf("connector logs (tail):\n%s", Tail(e.Logs(), 3000))
}

// Tail is the last n bytes of s.
func Tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
