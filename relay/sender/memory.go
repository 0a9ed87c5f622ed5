package sender

import (
	"context"
	"fmt"
	"sync"

	"github.com/adwriteback/adwriteback/relay/protocol"
)

// Memory is an in-process Transport for tests: Send queues commands that a
// fake connector takes with Receive and answers with Reply; AwaitResult
// returns the reply for a command id, whether it came before or after the
// call. It is safe for concurrent use.
type Memory struct {
	mu       sync.Mutex
	commands []Envelope
	results  map[string]Envelope
	changed  chan struct{} // closed and replaced on every change
}

// NewMemory returns an empty in-memory transport.
func NewMemory() *Memory {
	return &Memory{results: make(map[string]Envelope), changed: make(chan struct{})}
}

var _ Transport = (*Memory)(nil)

func (m *Memory) notifyLocked() {
	close(m.changed)
	m.changed = make(chan struct{})
}

func checkEnvelope(env Envelope) error {
	if env.ID == "" {
		return fmt.Errorf("memory transport: envelope without ID")
	}
	if len(env.Body) > protocol.MaxEnvelopeSize {
		return fmt.Errorf("memory transport: body of %d bytes exceeds %d", len(env.Body), protocol.MaxEnvelopeSize)
	}
	return nil
}

// Send implements Transport.
func (m *Memory) Send(ctx context.Context, env Envelope) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkEnvelope(env); err != nil {
		return err
	}
	env.Body = append([]byte(nil), env.Body...)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.commands = append(m.commands, env)
	m.notifyLocked()
	return nil
}

// Receive takes the oldest queued command, waiting for one until ctx ends.
func (m *Memory) Receive(ctx context.Context) (Envelope, error) {
	for {
		m.mu.Lock()
		if len(m.commands) > 0 {
			env := m.commands[0]
			m.commands = m.commands[1:]
			m.mu.Unlock()
			return env, nil
		}
		ch := m.changed
		m.mu.Unlock()
		select {
		case <-ctx.Done():
			return Envelope{}, ctx.Err()
		case <-ch:
		}
	}
}

// Reply stores a result envelope (env.ID = the command id) for AwaitResult.
func (m *Memory) Reply(ctx context.Context, env Envelope) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkEnvelope(env); err != nil {
		return err
	}
	env.Body = append([]byte(nil), env.Body...)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.results[env.ID] = env
	m.notifyLocked()
	return nil
}

// AwaitResult implements Transport.
func (m *Memory) AwaitResult(ctx context.Context, commandID string) (Envelope, error) {
	for {
		m.mu.Lock()
		if env, ok := m.results[commandID]; ok {
			m.mu.Unlock()
			return env, nil
		}
		ch := m.changed
		m.mu.Unlock()
		select {
		case <-ctx.Done():
			return Envelope{}, ctx.Err()
		case <-ch:
		}
	}
}
