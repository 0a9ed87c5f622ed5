package app

import (
	"errors"

	"github.com/adwriteback/adwriteback/connector/policy"
)

// openBreached opens a breached-password index built by
// `adwriteback policy build-breached`.
func openBreached(path string) (policy.BreachChecker, func() error, error) {
	return nil, nil, errors.New("breached index support is being wired")
}
