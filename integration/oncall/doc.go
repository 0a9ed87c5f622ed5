//go:build integration

// Package oncall holds the integration tests of what an operator on call
// relies on: that /readyz, /status and /metrics tell the truth about the
// connector's dependencies (domain controllers, result delivery) before
// a command suffers from them. Each test builds its world with
// integration/stack.
package oncall
