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
func (b *kerberosBinder) login(ctx context.Context) (*tgt, error) {
	f := b.facts("")
	req, err := messages.NewASReqForTGT(b.realm, b.krb, b.name)
	if err != nil {
		return nil, classifyKerberos("AS", err, f)
	}
	rb, err := b.sendAS(ctx, &req)
	var ke messages.KRBError
	if errors.As(err, &ke) && ke.ErrorCode == errorcode.KDC_ERR_PREAUTH_REQUIRED {
		if err := b.preauth(&req, ke); err != nil {
			return nil, err
		}
		rb, err = b.sendAS(ctx, &req)
	}
	if err != nil {
		return nil, b.kdcFailure("AS", err, f)
	}
	return b.acceptASRep(rb, req, f)
}

func (b *kerberosBinder) sendAS(ctx context.Context, req *messages.ASReq) ([]byte, error) {
	raw, err := req.Marshal()
	if err != nil {
		return nil, err
	}
	return b.exchange(ctx, raw)
}

// kdcFailure classifies a failed exchange: no KDC answered, or one sent a
// KRB_ERROR (or something else went wrong).
func (b *kerberosBinder) kdcFailure(stage string, err error, f krbFacts) error {
	var ue *kdcUnreachableError
	if errors.As(err, &ue) {
		return unreachable(stage, ue)
	}
	return classifyKerberos(stage, err, f)
}

// preauth adds PA-ENC-TIMESTAMP to req: this host's time (Config.Clock)
// encrypted with the keytab's key of the type the KDC names first.
func (b *kerberosBinder) preauth(req *messages.ASReq, ke messages.KRBError) error {
	etype, err := preauthEtype(ke)
	if err != nil {
		return classifyKerberos("AS", err, b.facts(""))
	}
	key, kvno, err := b.kt.GetEncryptionKey(b.name, b.realm, 0, etype)
	if err != nil {
		return &KerberosError{Reason: KerberosEncryptionType, Stage: "AS", Err: err,
			Fix: fmt.Sprintf("the KDC wants a key of type %s, and the keytab holds %s for %s@%s: export the keytab with that type",
				etypeName(etype), strings.Join(keytabEtypes(b.kt, b.name, b.realm), ", "), b.name.PrincipalNameString(), b.realm)}
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

// preauthEtype is the encryption type the KDC asks for in its
// PREAUTH_REQUIRED error (ETYPE-INFO2, else ETYPE-INFO; RFC 4120 5.2.7.5).
func preauthEtype(ke messages.KRBError) (int32, error) {
	var pas types.PADataSequence
	if err := pas.Unmarshal(ke.EData); err != nil {
		return 0, fmt.Errorf("KDC's pre-authentication hints: %w", err)
	}
	var fallback int32
	for _, pa := range pas {
		switch pa.PADataType {
		case patype.PA_ETYPE_INFO2:
			if info, err := pa.GetETypeInfo2(); err == nil && len(info) > 0 {
				return info[0].EType, nil
			}
		case patype.PA_ETYPE_INFO:
			if info, err := pa.GetETypeInfo(); err == nil && len(info) > 0 {
				fallback = info[0].EType
			}
		}
	}
	if fallback == 0 {
		return 0, errors.New("the KDC named no encryption type for pre-authentication")
	}
	return fallback, nil
}

// acceptASRep decrypts and checks the KDC's answer: a key the keytab does
// not have (another version) is a key mismatch; a KDC whose time differs
// from this host's by more than the allowed skew is a clock problem.
func (b *kerberosBinder) acceptASRep(rb []byte, req messages.ASReq, f krbFacts) (*tgt, error) {
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
	return &tgt{ticket: rep.Ticket, key: p.Key, start: start, end: p.EndTime,
		renewAt: start.Add(p.EndTime.Sub(start) * 5 / 6), kvno: rep.EncPart.KVNO}, nil
}

// serviceTicket is the TGS exchange: a ticket for spn (ldap/<DC host>)
// and its session key.
func (b *kerberosBinder) serviceTicket(ctx context.Context, t *tgt, spn string) (messages.Ticket, types.EncryptionKey, error) {
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
		var ke messages.KRBError
		if errors.As(err, &ke) && ke.ErrorCode == errorcode.KRB_AP_ERR_TKT_EXPIRED {
			b.tgt = nil // the KDC says the TGT is over (a clock jump): log in at the next bind
		}
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
func (b *kerberosBinder) exchange(ctx context.Context, req []byte) ([]byte, error) {
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
func (b *kerberosBinder) roundTrip(ctx context.Context, kdc string, req []byte) ([]byte, error) {
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
