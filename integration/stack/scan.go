package stack

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/adwriteback/adwriteback/relay/protocol"
)

// surface is one place the leak scan reads: what it holds at the end of
// the test.
type surface struct {
	name string
	read func() ([]byte, error)
}

// AddSurface adds a place the leak scan reads at the end of the test (an
// option's server log, a proxy's capture). A read error fails the test:
// the scan would be incomplete.
func (e *Env) AddSurface(name string, read func() ([]byte, error)) { e.addSurface(name, read) }

func (e *Env) addSurface(name string, read func() ([]byte, error)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.surfaces = append(e.surfaces, surface{name, read})
}

// scan fails the test if a password it registered appears on any surface:
// every connector's log and audit log, the results, CLI output and pages
// the test recorded, every message of every queue (body, dead-letter
// reason and description, whether active, locked or dead-lettered), the
// connectors' /metrics, /status and /readyz, and what the options added
// (the raw replies a RawClient received). A stack that registered no
// password has nothing to look for.
func (e *Env) scan() {
	e.mu.Lock()
	secrets, surfaces := e.secrets, append([]surface(nil), e.surfaces...)
	e.mu.Unlock()
	if len(secrets) == 0 {
		return
	}
	var hay bytes.Buffer
	for _, s := range surfaces {
		b, err := s.read()
		if err != nil {
			e.tb.Errorf("leak scan: %s not scanned: %v", s.name, err)
		}
		hay.Write(b)
	}
	if hay.Len() == 0 {
		e.tb.Errorf("leak scan: nothing was produced to scan")
	}
	for _, pw := range secrets {
		if bytes.Contains(hay.Bytes(), pw) {
			e.tb.Errorf("leak scan: a password used by the test appears in logs, audit, results, queues, dead letters or pages")
		}
	}
}

// queueTexts is every message of every queue of the stack: bodies and
// dead-letter texts.
func (e *Env) queueTexts() ([]byte, error) {
	e.mu.Lock()
	names := append([]string(nil), e.queues...)
	e.mu.Unlock()
	var b bytes.Buffer
	for _, q := range names {
		st, err := e.Emu.Queue(context.Background(), q)
		if err != nil {
			return b.Bytes(), fmt.Errorf("queue %s: %w", q, err)
		}
		for _, m := range append(append(st.DeadLetters, st.Messages...), st.LockedMessages...) {
			b.WriteString(m.DeadLetterReason)
			b.WriteString(m.DeadLetterDescription)
			b.Write(m.Body)
		}
	}
	return b.Bytes(), nil
}

// capturePages reads c's pages for the leak scan (before it stops); a
// page it cannot read fails the test.
func (e *Env) capturePages(c *Connector) {
	for _, page := range []string{"/metrics", "/status", "/readyz"} {
		b, err := httpGet(c.pageClient(), c.URL(page))
		if err != nil {
			e.tb.Errorf("leak scan: %s of connector %s not scanned: %v", page, c.name, err)
			continue
		}
		e.mu.Lock()
		e.pageText.Write(b)
		e.mu.Unlock()
	}
}

func (e *Env) pages() ([]byte, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return bytes.Clone(e.pageText.Bytes()), nil
}

// resultPayload is the decoded payload of a result envelope (nil if raw
// is not one), so the scan reads the result's fields as well as its
// base64.
func resultPayload(raw []byte) []byte {
	var env protocol.Envelope
	if json.Unmarshal(raw, &env) != nil {
		return nil
	}
	b, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		return nil
	}
	return b
}
