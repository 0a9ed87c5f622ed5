package sender

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/adwriteback/adwriteback/relay/keys"
	"github.com/adwriteback/adwriteback/relay/protocol"
)

// Helpers for command-line front ends (adwriteback send): parse a --user
// value and load the key files of a sender.

// ErrBadUser is wrapped by ParseUser errors.
var ErrBadUser = errors.New("bad user reference")

// ParseUser parses a user reference as typed on a command line, with an
// optional domain:
//
//	upn:ada@corp.example.com   objectGUID:8e2f6a1c-...   immutableId:HBoGe8dN...==   sam:ada
//
// Without a "kind:" prefix the kind is guessed: a value with "@" is a UPN,
// a 36-character GUID is an objectGUID, anything else is a sAMAccountName
// (an immutableId always needs its prefix). The result is validated as the
// connector would.
func ParseUser(s, domain string) (protocol.UserRef, error) {
	u := protocol.UserRef{Domain: domain}
	kind, value, hasKind := strings.Cut(s, ":")
	if !hasKind {
		value = s
		switch {
		case strings.Contains(s, "@"):
			kind = protocol.UserKindUPN
		case len(s) == 36 && strings.Count(s, "-") == 4:
			kind = protocol.UserKindObjectGUID
		default:
			kind = protocol.UserKindSAM
		}
	}
	switch strings.ToLower(kind) {
	case "upn":
		u.UPN = value
	case "objectguid", "guid":
		u.ObjectGUID = value
	case "immutableid":
		u.ImmutableID = value
		if b, err := base64.StdEncoding.DecodeString(value); err != nil || len(b) != 16 {
			return protocol.UserRef{}, fmt.Errorf("%w: immutableId must be the base64 of 16 bytes", ErrBadUser)
		}
	case "sam", "samaccountname":
		u.SAM = value
	default:
		// kind is not repeated: it may be a password typed in the wrong place
		return protocol.UserRef{}, fmt.Errorf("%w: unknown kind before the colon (use upn, objectGUID, immutableId or sam)", ErrBadUser)
	}
	if err := u.Validate(); err != nil {
		return protocol.UserRef{}, fmt.Errorf("%w: %w", ErrBadUser, err)
	}
	return u, nil
}

// LoadConfig reads a sender private key file and the public key files of
// the connector: passwords are sealed to the first, and results signed by
// any of them are accepted (several during a rotation). Transport, TTL and
// the rest are left for the caller.
func LoadConfig(senderKeyPath string, connectorPubPaths ...string) (Config, error) {
	if len(connectorPubPaths) == 0 {
		return Config{}, errors.New("sender: at least one connector public key is required")
	}
	sk, err := keys.LoadSenderPrivate(senderKeyPath)
	if err != nil {
		return Config{}, err
	}
	pubs := make([]*keys.ConnectorPublic, 0, len(connectorPubPaths))
	for _, p := range connectorPubPaths {
		cp, err := keys.LoadConnectorPublic(p)
		if err != nil {
			return Config{}, err
		}
		pubs = append(pubs, cp)
	}
	return ConfigFromKeys(sk, pubs[0], pubs[1:]...)
}
