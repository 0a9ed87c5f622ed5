package ldapx

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/credentials"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/iana/patype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// maxKDCReply bounds a KDC's reply (a ticket with a large PAC is a few
// tens of kilobytes).
const maxKDCReply = 1 << 20

// login is the AS exchange: a TGT for the principal, proving the keytab's
// key with an encrypted timestamp when the KDC asks for one (AD always
// does).
func (b *krbClient) login(ctx context.Context) (*tgt, error) {
	f := b.facts("")
	req, err := messages.NewASReqForTGT(b.realm, b.krb, b.name)
	if err != nil {
		return nil, classifyKerberos("AS", err, f)
	}
	rb, err := b.sendAS(ctx, &req)
	var ke messages.KRBError
	var kdcTime time.Time // the KDC's clock, as its PREAUTH_REQUIRED said it
	if errors.As(err, &ke) && ke.ErrorCode == errorcode.KDC_ERR_PREAUTH_REQUIRED {
		kdcTime = krbErrorTime(ke)
		if err := b.preauth(&req, ke); err != nil {
			return nil, withKDCTime(err, kdcTime)
		}
		rb, err = b.sendAS(ctx, &req)
	}
	if err != nil {
		return nil, withKDCTime(b.kdcFailure("AS", err, f), kdcTime)
	}
	t, err := b.acceptASRep(rb, req, f)
	if err != nil {
		return nil, withKDCTime(err, kdcTime)
	}
	if !kdcTime.IsZero() {
		t.kdcTime = kdcTime
	}
	return t, nil
}

// withKDCTime gives a *KerberosError that does not know the KDC's time
// the one seen earlier in the exchange.
func withKDCTime(err error, kdcTime time.Time) error {
	var ke *KerberosError
	if errors.As(err, &ke) && ke.KDCTime.IsZero() {
		ke.KDCTime = kdcTime
	}
	return err
}

func (b *krbClient) sendAS(ctx context.Context, req *messages.ASReq) ([]byte, error) {
	raw, err := req.Marshal()
	if err != nil {
		return nil, err
	}
	return b.exchange(ctx, raw)
}

// kdcFailure classifies a failed exchange: no KDC answered, or one sent a
// KRB_ERROR (or something else went wrong).
func (b *krbClient) kdcFailure(stage string, err error, f krbFacts) error {
	var ue *kdcUnreachableError
	if errors.As(err, &ue) {
		return unreachable(stage, ue)
	}
	return classifyKerberos(stage, err, f)
}

// preauth adds PA-ENC-TIMESTAMP to req: this host's time (Config.Clock)
// encrypted with the keytab's key of the type the KDC names first.
func (b *krbClient) preauth(req *messages.ASReq, ke messages.KRBError) error {
	offered, err := offeredEtypes(ke)
	if err != nil {
		return classifyKerberos("AS", err, b.facts(""))
	}
	var key types.EncryptionKey
	var kvno int
	err = errNoKeyOffered
	for _, etype := range offered {
		if key, kvno, err = b.kt.GetEncryptionKey(b.name, b.realm, 0, etype); err == nil {
			break
		}
	}
	if err != nil {
		names := make([]string, len(offered))
		for i, e := range offered {
			names[i] = etypeName(e)
		}
		return &KerberosError{Reason: KerberosEncryptionType, Stage: "AS", Err: err,
			Fix: fmt.Sprintf("the KDC wants a key of type %s, and the keytab holds %s for %s@%s: export the keytab with that type",
				strings.Join(names, " or "), strings.Join(keytabEtypes(b.kt, b.name, b.realm), ", "), b.name.PrincipalNameString(), b.realm)}
	}
	now := b.clock.Now().UTC()
	ts, err := asn1.Marshal(types.PAEncTSEnc{PATimestamp: now.Truncate(time.Second), PAUSec: now.Nanosecond() / 1000})
	if err != nil {
		return classifyKerberos("AS", err, b.facts(""))
	}
	enc, err := crypto.GetEncryptedData(ts, key, keyusage.AS_REQ_PA_ENC_TIMESTAMP, kvno)
	if err != nil {
		return classifyKerberos("AS", err, b.facts(""))
	}
	pb, err := enc.Marshal()
	if err != nil {
		return classifyKerberos("AS", err, b.facts(""))
	}
	req.PAData = append(req.PAData, types.PAData{PADataType: patype.PA_ENC_TIMESTAMP, PADataValue: pb})
	return nil
}

// errNoKeyOffered: the KDC named no encryption type for pre-authentication.
var errNoKeyOffered = errors.New("the KDC named no encryption type for pre-authentication")

// offeredEtypes are the encryption types the KDC offers in its
// PREAUTH_REQUIRED error, in its order (ETYPE-INFO2, else ETYPE-INFO;
// RFC 4120 5.2.7.5).
func offeredEtypes(ke messages.KRBError) ([]int32, error) {
	var pas types.PADataSequence
	if err := pas.Unmarshal(ke.EData); err != nil {
		return nil, fmt.Errorf("KDC's pre-authentication hints: %w", err)
	}
	var info2, info []int32
	for _, pa := range pas {
		switch pa.PADataType {
		case patype.PA_ETYPE_INFO2:
			if es, err := pa.GetETypeInfo2(); err == nil {
				for _, e := range es {
					info2 = append(info2, e.EType)
				}
			}
		case patype.PA_ETYPE_INFO:
			if es, err := pa.GetETypeInfo(); err == nil {
				for _, e := range es {
					info = append(info, e.EType)
				}
			}
		}
	}
	if len(info2) > 0 {
		return info2, nil
	}
	if len(info) == 0 {
		return nil, errNoKeyOffered
	}
	return info, nil
}

// acceptASRep decrypts and checks the KDC's answer: a key the keytab does
// not have (another version) is a key mismatch; a KDC whose time differs
// from this host's by more than the allowed skew is a clock problem.
func (b *krbClient) acceptASRep(rb []byte, req messages.ASReq, f krbFacts) (*tgt, error) {
	var rep messages.ASRep
	if err := rep.Unmarshal(rb); err != nil {
		return nil, classifyKerberos("AS", err, f)
	}
	creds := credentials.New(b.name.PrincipalNameString(), b.realm).WithKeytab(b.kt)
	if _, err := rep.DecryptEncPart(creds); err != nil {
		return nil, &KerberosError{Reason: KerberosKeyMismatch, Stage: "AS", Err: err,
			Fix: fmt.Sprintf("the KDC used key version %d of %s and the keytab cannot decrypt with it (it holds versions %v): export the keytab again",
				rep.EncPart.KVNO, f.principal, keyVersions(b.kt, b.name, b.realm))}
	}
	now := b.clock.Now()
	if d := now.Sub(rep.DecryptedEncPart.AuthTime); d > b.krb.LibDefaults.Clockskew || -d > b.krb.LibDefaults.Clockskew {
		ke := messages.KRBError{ErrorCode: errorcode.KRB_AP_ERR_SKEW, STime: rep.DecryptedEncPart.AuthTime}
		return nil, classifyKerberos("AS", ke, f)
	}
	if ok, err := rep.Verify(b.krb, creds, req); !ok {
		return nil, classifyKerberos("AS", err, f)
	}
	p := rep.DecryptedEncPart
	start := p.StartTime
	if start.IsZero() {
		start = p.AuthTime
	}
	// p.Key is the session key (DecryptEncPart returns the account's).
	return &tgt{ticket: rep.Ticket, key: p.Key, start: start, end: p.EndTime,
		renewAt: start.Add(p.EndTime.Sub(start) * 5 / 6), kvno: rep.EncPart.KVNO, etype: rep.EncPart.EType,
		kdcTime: p.AuthTime}, nil
}

// serviceTicket is the TGS exchange: a ticket for spn (ldap/<DC host>)
// and its session key.
func (b *krbClient) serviceTicket(ctx context.Context, t *tgt, spn string) (messages.Ticket, types.EncryptionKey, error) {
	f := b.facts(spn)
	sname := types.NewPrincipalName(nametype.KRB_NT_SRV_INST, spn)
	req, err := messages.NewTGSReq(b.name, b.realm, b.krb, t.ticket, t.key, sname, false)
	if err != nil {
		return messages.Ticket{}, types.EncryptionKey{}, classifyKerberos("TGS", err, f)
	}
	raw, err := req.Marshal()
	if err != nil {
		return messages.Ticket{}, types.EncryptionKey{}, classifyKerberos("TGS", err, f)
	}
	rb, err := b.exchange(ctx, raw)
	if err != nil {
		return messages.Ticket{}, types.EncryptionKey{}, b.kdcFailure("TGS", err, f)
	}
	var rep messages.TGSRep
	if err := rep.Unmarshal(rb); err != nil {
		return messages.Ticket{}, types.EncryptionKey{}, classifyKerberos("TGS", err, f)
	}
	if err := rep.DecryptEncPart(t.key); err != nil {
		return messages.Ticket{}, types.EncryptionKey{}, classifyKerberos("TGS", err, f)
	}
	if ok, err := rep.Verify(b.krb, req); !ok {
		return messages.Ticket{}, types.EncryptionKey{}, classifyKerberos("TGS", err, f)
	}
	return rep.Ticket, rep.DecryptedEncPart.Key, nil
}

// exchange sends one request to the realm's KDCs over TCP, in order, until
// one answers. A KRB_ERROR answer is returned as messages.KRBError; when
// none answers, a *kdcUnreachableError lists why.
func (b *krbClient) exchange(ctx context.Context, req []byte) ([]byte, error) {
	ue := &kdcUnreachableError{kdcs: b.kdcs}
	for _, kdc := range b.kdcs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		rb, err := b.roundTrip(ctx, kdc, req)
		if err != nil {
			ue.errs = append(ue.errs, fmt.Errorf("%s: %w", kdc, err))
			continue
		}
		return krbReply(rb)
	}
	return nil, ue
}

// roundTrip is one request and answer with one KDC: each framed by its
// 4-byte length (RFC 4120 7.2.2), under ctx.
func (b *krbClient) roundTrip(ctx context.Context, kdc string, req []byte) ([]byte, error) {
	conn, err := b.dialer.DialContext(ctx, "tcp", kdc)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	msg := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(req)), uint32(len(req)))
	if _, err := conn.Write(append(msg, req...)); err != nil {
		return nil, err
	}
	var hdr [4]byte
	if _, err := io.ReadFull(conn, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 || n > maxKDCReply {
		return nil, fmt.Errorf("KDC reply of %d bytes", n)
	}
	rb := make([]byte, n)
	if _, err := io.ReadFull(conn, rb); err != nil {
		return nil, err
	}
	return rb, nil
}

// krbReply returns a KDC's answer, or the KRB_ERROR it is.
func krbReply(rb []byte) ([]byte, error) {
	const krbErrorTag = 0x7e // [APPLICATION 30], constructed
	if len(rb) > 0 && rb[0] == krbErrorTag {
		var ke messages.KRBError
		if err := ke.Unmarshal(rb); err != nil {
			return nil, err
		}
		return nil, ke
	}
	return rb, nil
}
