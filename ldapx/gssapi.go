package ldapx

import (
	"errors"
	"fmt"

	ldapgssapi "github.com/go-ldap/ldap/v3/gssapi"
	"github.com/jcmturner/gokrb5/v8/client"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/gssapi"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/spnego"
	"github.com/jcmturner/gokrb5/v8/types"
)

// krbSecContext is the GSSAPI initiator of one SASL GSSAPI bind (RFC 4752)
// with a service ticket obtained by kerberosBinder: go-ldap's
// gssapi.Client, but with a ticket from our own KDC exchange, and a
// KRB_ERROR from the DC returned as the typed messages.KRBError. It
// negotiates no security layer: the bind runs over TLS (a Windows DC
// accepts that; Samba needs "ldap server require strong auth =
// allow_sasl_over_tls").
type krbSecContext struct {
	creds  *client.Client // the principal's credentials (authenticator)
	ticket messages.Ticket
	key    types.EncryptionKey // the service ticket's session key
	subkey types.EncryptionKey // the DC's, from its AP-REP
}

func (c *krbSecContext) InitSecContext(target string, input []byte) ([]byte, bool, error) {
	return c.InitSecContextWithOptions(target, input, nil)
}

// InitSecContextWithOptions sends the AP-REQ first, then takes the DC's
// AP-REP (mutual authentication) or KRB_ERROR.
func (c *krbSecContext) InitSecContextWithOptions(_ string, input []byte, apOptions []int) ([]byte, bool, error) {
	if input == nil {
		flags := []int{gssapi.ContextFlagInteg, gssapi.ContextFlagConf, gssapi.ContextFlagMutual}
		tok, err := spnego.NewKRB5TokenAPREQ(c.creds, c.ticket, c.key, flags, apOptions)
		if err != nil {
			return nil, false, err
		}
		out, err := tok.Marshal()
		return out, true, err
	}
	var tok spnego.KRB5Token
	if err := tok.Unmarshal(input); err != nil {
		return nil, false, err
	}
	if tok.IsKRBError() {
		return nil, true, tok.KRBError
	}
	if !tok.IsAPRep() {
		return nil, false, errors.New("the DC answered the AP-REQ with neither AP-REP nor KRB_ERROR")
	}
	enc, err := crypto.DecryptEncPart(tok.APRep.EncPart, c.key, keyusage.AP_REP_ENCPART)
	if err != nil {
		return nil, false, fmt.Errorf("the DC's AP-REP: %w", err)
	}
	var part messages.EncAPRepPart
	if err := part.Unmarshal(enc); err != nil {
		return nil, false, err
	}
	c.subkey = part.Subkey
	return []byte{}, false, nil
}

// NegotiateSaslAuth answers the DC's security-layer offer: none (the
// connection is TLS), no authorization identity other than authzid.
func (c *krbSecContext) NegotiateSaslAuth(input []byte, authzid string) ([]byte, error) {
	var tok gssapi.WrapToken
	if err := ldapgssapi.UnmarshalWrapToken(&tok, input, true); err != nil {
		return nil, err
	}
	key := c.key
	if tok.Flags&0b100 != 0 { // AcceptorSubkey
		key = c.subkey
	}
	if ok, err := tok.Verify(key, keyusage.GSSAPI_ACCEPTOR_SEAL); !ok {
		return nil, fmt.Errorf("the DC's security-layer token does not verify: %w", err)
	}
	if len(tok.Payload) != 4 {
		return nil, errors.New("the DC's security-layer token is not 4 bytes")
	}
	et, err := crypto.GetEtype(key.KeyType)
	if err != nil {
		return nil, err
	}
	out := gssapi.WrapToken{Flags: 0b100, EC: uint16(et.GetHMACBitLength() / 8),
		SndSeqNum: 1, Payload: append([]byte{0, 0, 0, 0}, authzid...)}
	if err := out.SetCheckSum(key, keyusage.GSSAPI_INITIATOR_SEAL); err != nil {
		return nil, err
	}
	return out.Marshal()
}

// DeleteSecContext forgets the keys.
func (c *krbSecContext) DeleteSecContext() error {
	c.key, c.subkey = types.EncryptionKey{}, types.EncryptionKey{}
	return nil
}
