//go:build integration

package e2e

import (
	"testing"
	"time"

	"github.com/adwriteback/adwriteback/integration/stack"
)

// newEnv is one test's world (integration/stack): the shared Samba DC,
// its own emulator and queues, keys; its connectors run in this process
// with a 10 s dial timeout, 4 commands at once and 10 s to shut down.
func newEnv(t *testing.T, opts ...stack.Option) *stack.Env {
	t.Helper()
	return stack.New(t, append([]stack.Option{stack.ForEveryConnector(stack.Configure(func(c *stack.ConfigSpec) {
		c.DialTimeout = 10 * time.Second
		c.Concurrency, c.ShutdownGrace = 4, 10*time.Second
	}))}, opts...)...)
}
