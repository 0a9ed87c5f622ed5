package doctor

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/credentials"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/iana/patype"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// The doctor talks to the KDC itself (TCP, RFC 4120 §7.2.2) with
// gokrb5's message types rather than through gokrb5's client: the client
// flattens the KDC's KRB-ERROR into a string, and the doctor must tell a
// wrong key from an unknown principal or a skewed clock by the error's
// code. Every KRB-ERROR is returned as messages.KRBError (wrapped), so
// errors.As finds it.

// Errors of a KDC exchange that are not the KDC's KRB-ERROR.
var (
	// ErrKDCUnreachable: no TCP connection to the KDC, or no answer.
	ErrKDCUnreachable = errors.New("the KDC cannot be reached")
	// ErrNoKey: the keytab holds no key of an encryption type the KDC
	// offers for the principal.
	ErrNoKey = errors.New("the keytab has no key of an encryption type the KDC offers")
	// ErrReplyKey: the KDC's reply does not decrypt with the keytab's key
	// (a key of another version, or another account's).
	ErrReplyKey = errors.New("the KDC's reply does not decrypt with the keytab's key")
	// ErrBadReply: the KDC answered something that is not a Kerberos reply.
	ErrBadReply = errors.New("the KDC's answer is not a Kerberos reply")
)

// maxKDCReply bounds a reply read from a KDC.
const maxKDCReply = 1 << 20

// kdcClient runs AS and TGS exchanges over TCP.
type kdcClient struct {
	dialer  Dialer
	timeout time.Duration
	now     func() time.Time
}

// tgt is the result of an AS exchange: the ticket, its session key and
// the KDC's clock as it said it (zero if it did not).
type tgt struct {
	rep        messages.ASRep
	sessionKey types.EncryptionKey
	kdcTime    time.Time
	kvno       int
	etype      int32
}

// kdcTimeOf returns the KDC's clock from a KRB-ERROR in err (zero if none).
func kdcTimeOf(err error) time.Time {
	var ke messages.KRBError
	if errors.As(err, &ke) {
		return ke.STime.Add(time.Duration(ke.Susec) * time.Microsecond)
	}
	return time.Time{}
}

// roundTrip sends one request to kdc (host:port) and returns the reply;
// a KRB-ERROR reply is returned as the error.
func (k kdcClient) roundTrip(ctx context.Context, kdc string, req []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, k.timeout)
	defer cancel()
	conn, err := k.dialer.DialContext(ctx, "tcp", kdc)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrKDCUnreachable, kdc, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	msg := binary.BigEndian.AppendUint32(nil, uint32(len(req)))
	if _, err := conn.Write(append(msg, req...)); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrKDCUnreachable, kdc, err)
	}
	rep, err := readKDCReply(conn)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrKDCUnreachable, kdc, err)
	}
	var ke messages.KRBError
	if ke.Unmarshal(rep) == nil {
		return nil, fmt.Errorf("kdc %s: %w", kdc, ke)
	}
	return rep, nil
}

func readKDCReply(r io.Reader) ([]byte, error) {
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return nil, err
	}
	size := binary.BigEndian.Uint32(n[:])
	if size > maxKDCReply {
		return nil, fmt.Errorf("a reply of %d bytes", size)
	}
	b := make([]byte, size)
	_, err := io.ReadFull(r, b)
	return b, err
}

// krbConfig is the little of a krb5.conf the requests need: the
// encryption types to ask for (those the keytab has, strongest first).
func krbConfig(etypes []int32) *config.Config {
	c := config.New()
	c.LibDefaults.DefaultTktEnctypeIDs = etypes
	c.LibDefaults.NoAddresses = true
	return c
}

// login gets a TGT for cname with the keytab's key: an AS-REQ without
// pre-authentication (the KDC answers which encryption type and salt it
// wants, and its clock), then one with the timestamp encrypted in the
// keytab's key; the reply is decrypted with the same keytab.
func (k kdcClient) login(ctx context.Context, kdc, realm string, cname types.PrincipalName, kt *keytab.Keytab) (tgt, error) {
	etypes := keytabETypes(kt, cname, realm)
	cfg := krbConfig(etypes)
	req, err := messages.NewASReqForTGT(realm, cfg, cname)
	if err != nil {
		return tgt{}, fmt.Errorf("build AS-REQ: %w", err)
	}
	rep, err := k.send(ctx, kdc, &req)
	var t tgt
	var ke messages.KRBError
	switch {
	case err == nil: // no pre-authentication required
	case errors.As(err, &ke) && ke.ErrorCode == errorcode.KDC_ERR_PREAUTH_REQUIRED:
		t.kdcTime = kdcTimeOf(err)
		if err := k.preauthenticate(&req, ke, kt, cname, realm); err != nil {
			return t, err
		}
		if rep, err = k.send(ctx, kdc, &req); err != nil {
			if kt := kdcTimeOf(err); !kt.IsZero() {
				t.kdcTime = kt
			}
			return t, err
		}
	default:
		t.kdcTime = kdcTimeOf(err)
		return t, err
	}
	return k.decryptASRep(rep, t, kt, cname, realm)
}

func (k kdcClient) send(ctx context.Context, kdc string, req *messages.ASReq) ([]byte, error) {
	b, err := req.Marshal()
	if err != nil {
		return nil, fmt.Errorf("marshal AS-REQ: %w", err)
	}
	return k.roundTrip(ctx, kdc, b)
}

func (k kdcClient) decryptASRep(b []byte, t tgt, kt *keytab.Keytab, cname types.PrincipalName, realm string) (tgt, error) {
	if err := t.rep.Unmarshal(b); err != nil {
		return t, fmt.Errorf("%w: %w", ErrBadReply, err)
	}
	t.kvno, t.etype = t.rep.EncPart.KVNO, t.rep.EncPart.EType
	if _, err := t.rep.DecryptEncPart(credentials.NewFromPrincipalName(cname, realm).WithKeytab(kt)); err != nil {
		return t, fmt.Errorf("%w (key version %d, %s): %w", ErrReplyKey, t.kvno, etypeName(t.etype), err)
	}
	t.sessionKey = t.rep.DecryptedEncPart.Key
	if t.kdcTime.IsZero() {
		t.kdcTime = t.rep.DecryptedEncPart.AuthTime
	}
	return t, nil
}

// preauthenticate adds PA-ENC-TIMESTAMP to req, encrypted with the
// keytab's key of the first encryption type the KDC offered that the
// keytab has (the newest key version of it).
func (k kdcClient) preauthenticate(req *messages.ASReq, ke messages.KRBError, kt *keytab.Keytab, cname types.PrincipalName, realm string) error {
	offered, err := offeredETypes(ke)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadReply, err)
	}
	have := keytabETypes(kt, cname, realm)
	i := slices.IndexFunc(offered, func(e int32) bool { return slices.Contains(have, e) })
	if i < 0 {
		return fmt.Errorf("%w (the KDC offers %s; the keytab has %s)", ErrNoKey, etypeNamesOf(offered), etypeNamesOf(have))
	}
	key, kvno, err := kt.GetEncryptionKey(cname, realm, 0, offered[i])
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNoKey, err)
	}
	now := k.now().UTC()
	ts, err := asn1.Marshal(types.PAEncTSEnc{PATimestamp: now.Truncate(time.Second), PAUSec: now.Nanosecond() / 1000})
	if err != nil {
		return fmt.Errorf("marshal PA-ENC-TIMESTAMP: %w", err)
	}
	enc, err := crypto.GetEncryptedData(ts, key, keyusage.AS_REQ_PA_ENC_TIMESTAMP, kvno)
	if err != nil {
		return fmt.Errorf("encrypt PA-ENC-TIMESTAMP: %w", err)
	}
	pb, err := enc.Marshal()
	if err != nil {
		return fmt.Errorf("marshal PA-ENC-TIMESTAMP: %w", err)
	}
	req.PAData = append(req.PAData, types.PAData{PADataType: patype.PA_ENC_TIMESTAMP, PADataValue: pb})
	return nil
}

// offeredETypes reads the encryption types a PREAUTH_REQUIRED error
// offers (ETYPE-INFO2, else ETYPE-INFO), in the KDC's order.
func offeredETypes(ke messages.KRBError) ([]int32, error) {
	var pas types.PADataSequence
	if err := pas.Unmarshal(ke.EData); err != nil {
		return nil, err
	}
	var out []int32
	for _, pa := range pas {
		switch pa.PADataType {
		case patype.PA_ETYPE_INFO2:
			info, err := pa.GetETypeInfo2()
			if err != nil {
				return nil, err
			}
			for _, e := range info {
				out = append(out, e.EType)
			}
			return out, nil
		case patype.PA_ETYPE_INFO:
			info, err := pa.GetETypeInfo()
			if err != nil {
				return nil, err
			}
			for _, e := range info {
				out = append(out, e.EType)
			}
		}
	}
	return out, nil
}

// serviceTicket asks the KDC for a ticket to spn (e.g. ldap/dc1.example.com)
// with t, and checks that the reply decrypts with t's session key.
func (k kdcClient) serviceTicket(ctx context.Context, kdc, realm string, cname types.PrincipalName, t tgt, spn string) error {
	sname := types.NewPrincipalName(nametype.KRB_NT_SRV_INST, spn)
	req, err := messages.NewTGSReq(cname, realm, krbConfig([]int32{t.sessionKey.KeyType}), t.rep.Ticket, t.sessionKey, sname, false)
	if err != nil {
		return fmt.Errorf("build TGS-REQ: %w", err)
	}
	b, err := req.Marshal()
	if err != nil {
		return fmt.Errorf("marshal TGS-REQ: %w", err)
	}
	b, err = k.roundTrip(ctx, kdc, b)
	if err != nil {
		return err
	}
	var rep messages.TGSRep
	if err := rep.Unmarshal(b); err != nil {
		return fmt.Errorf("%w: %w", ErrBadReply, err)
	}
	if err := rep.DecryptEncPart(t.sessionKey); err != nil {
		return fmt.Errorf("%w: %w", ErrBadReply, err)
	}
	return nil
}
