//go:build !windows

package ldapx

import (
	"context"
	"errors"

	"github.com/go-ldap/ldap/v3"
)

// negotiateBinder is SSPI, which only Windows has: Config.Validate refuses
// the method elsewhere, so this is never reached.
type negotiateBinder struct{}

func (negotiateBinder) bind(context.Context, *ldap.Conn, string) error {
	return errors.New("bind method negotiate (SSPI) exists only on Windows")
}
