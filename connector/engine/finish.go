package engine

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/adwriteback/adwriteback/connector/audit"
	"github.com/adwriteback/adwriteback/connector/logevent"
	"github.com/adwriteback/adwriteback/connector/policy"
	"github.com/adwriteback/adwriteback/relay/protocol"
	"github.com/adwriteback/adwriteback/relay/transport"
)

// finish is the last stage: it answers a decided command. It signs the
// result, hands the outcome to the journal (when the command was claimed),
// reports the result, waits until the outcome is durable, and tells the
// source to complete the message; the audit record is written once the
// source has settled it.
//
// The outcome goes to the journal's next shared transaction before the
// result is sent, and the message is settled only once it is durable. A
// crash in between makes the command come back: the outcome is then on
// file (answered from the journal) or not (a refusal is decided again; a
// write is settled from AD by the durable mark made before it), so at
// most a duplicate result goes out, which the protocol allows.
func (e *Engine) finish(ctx context.Context, c *command, out outcome, journaled bool) transport.Disposition {
	now := e.cfg.Clock.Now()
	res := e.result(c, out, now)
	signed, err := protocol.SignResult(res, c.keys.Signer)
	if err != nil {
		e.cfg.Logger.Error("cannot sign result", "id", c.rec.ID, "err", err)
		return transport.Abandon()
	}
	var durable func(context.Context) error
	if journaled {
		durable = e.cfg.Journal.FinishAsync(ctx, c.rec.ID, string(out.code), out.dc, signed)
		e.crashPoint("after_journal")
	}
	e.cfg.Metrics.Command(string(c.rec.Op), string(out.code), now.Sub(c.start))
	err = e.cfg.Reporter.Report(ctx, c.d, c.rec.ID, signed)
	e.cfg.Deliveries.Delivered(string(out.code), err)
	if err != nil {
		if durable != nil && !e.awaitDurable(ctx, c, out, signed, durable) {
			return e.audited(transport.Abandon(), c, out)
		}
		disp, detail := e.undelivered(ctx, c.d, c.rec.ID, err)
		if detail != "" {
			out.detail = detail
		}
		return e.audited(disp, c, out)
	}
	e.crashPoint("after_report")
	if durable != nil && !e.awaitDurable(ctx, c, out, signed, durable) {
		return e.audited(transport.Abandon(), c, out)
	}
	e.crashPoint("before_settle")
	return e.audited(transport.Complete(), c, out)
}

// ReasonUndeliverable is the dead-letter reason of a command whose
// result could not be delivered by its last attempt (PROTOCOL.md §9.4).
const ReasonUndeliverable = "result_undeliverable"

// undelivered settles a delivery whose result could not be delivered:
// abandoned, so that it comes back and is answered again (from the
// journal when the outcome is on file), until its delivery count reaches
// MaxAttempts; then dead-lettered ReasonUndeliverable, so that a reply
// queue gone or a send right revoked ends the same way every time
// instead of looping until the queue's own MaxDeliveryCount. The signed
// result of a claimed command stays in the journal. detail, when not
// empty, is what the audit record says of it.
func (e *Engine) undelivered(ctx context.Context, d *transport.Delivery, id string, err error) (disp transport.Disposition, detail string) {
	if ctx.Err() != nil || d.DeliveryCount < e.cfg.MaxAttempts {
		e.cfg.Logger.Warn("result not delivered; the command will come back and be answered again", logevent.Attr(logevent.ResultsUndeliverable), "id", id,
			"delivery", d.DeliveryCount, "err", err)
		return transport.Abandon(), ""
	}
	e.cfg.Metrics.Rejected(ReasonUndeliverable)
	e.cfg.Logger.Error("result not delivered by the last attempt; dead-lettering the command", logevent.Attr(logevent.ResultsUndeliverable), "id", id,
		"delivery", d.DeliveryCount, "err", err)
	detail = fmt.Sprintf("result undeliverable after %d deliveries: %v", d.DeliveryCount, err)
	return transport.DeadLetter(ReasonUndeliverable, fmt.Sprintf("the signed result could not be delivered after %d deliveries", d.DeliveryCount)), detail
}

// result is the wire result for an outcome completed at now, in the
// command's protocol version (answerVersion).
func (e *Engine) result(c *command, out outcome, now time.Time) *protocol.Result {
	out = e.disclose(c, out)
	v := answerVersion(c.rec.VerifiedCommand)
	if code := out.code.For(v); code != out.code {
		// A code v does not have: v's nearest code, with the message that
		// says what happened (superseded's, for expired).
		out.code, out.message = code, out.code.DefaultMessage()
	}
	res := &protocol.Result{
		V: v, CommandID: c.rec.ID, Code: out.code, Message: out.message,
		DC: dcHost(out.dc), Detail: clip(out.detail, 1000), ReceivedAt: protocol.At(c.start), CompletedAt: protocol.At(now),
	}
	if v >= 2 {
		res.CommandDigest = protocol.DigestString(c.rec.Digest)
	}
	if res.Message == "" {
		res.Message = out.code.DefaultMessage()
	}
	if out.code == protocol.CodeRejectedByDC {
		res.DCReason = out.dcReason
		if res.DCReason == "" {
			res.DCReason = protocol.DCReasonOther
		}
	}
	if out.retryAfter > 0 && out.code.Retryable() {
		res.RetryAfter = int((out.retryAfter + time.Second - 1) / time.Second)
	}
	if v >= 2 && out.code == protocol.CodeSucceeded {
		res.Policy = out.policy
	}
	for _, v := range out.violations {
		res.Violations = append(res.Violations, wireViolation(v))
		e.cfg.Metrics.Violation(string(v.Rule))
	}
	return res
}

// answerVersion is the protocol version a command is answered in: its
// own (a v1 sender reads v1 results only). A command that did not decode
// far enough to know (refused with only its id) is answered in v1, which
// every sender reads; a v2 sender then checks the id alone.
func answerVersion(vc *protocol.VerifiedCommand) int {
	if vc == nil || vc.V == 0 {
		return protocol.MinVersion
	}
	return vc.V
}

// awaitDurable waits until the journal holds the outcome. While the
// journal's storage fails the message is held (its lock renewed): the
// outcome in AD is final and must not be lost. It reports false when
// shutting down first (the message is then abandoned and comes back).
func (e *Engine) awaitDurable(ctx context.Context, c *command, out outcome, signed []byte, durable func(context.Context) error) bool {
	for {
		err := durable(ctx)
		if err == nil {
			return true
		}
		if e.holdForJournal(ctx, c.rec.ID, "the outcome", err) {
			durable = e.cfg.Journal.FinishAsync(ctx, c.rec.ID, string(out.code), out.dc, signed)
			continue
		}
		if ctx.Err() != nil {
			return false
		}
		// Not the storage: the entry itself (its claim expired with the
		// replay window, say). Nothing to record it against; the result
		// went out.
		e.cfg.Logger.Warn("outcome not journaled", "id", c.rec.ID, "err", err)
		return true
	}
}

// audited returns disp with the command's audit record attached: it is
// written once the source has settled the message.
func (e *Engine) audited(disp transport.Disposition, c *command, out outcome) transport.Disposition {
	r := audit.Record{
		CommandID: c.rec.ID, Op: string(c.rec.Op), Domain: out.domain, UserDN: out.userDN,
		ActorKind: string(c.rec.Actor.Kind), ActorID: c.rec.Actor.ID, Outcome: string(out.code),
		DCReason: string(out.dcReason), DC: out.dc, Detail: clip(out.detail, 1000), Applied: out.applied,
		DeliveryCount: c.d.DeliveryCount, LatencyMS: ms(e.cfg.Clock.Since(c.start)),
	}
	if kind, value := c.rec.User.Kind(); kind != "" {
		r.UserRefKind = kind
		if out.code == protocol.CodeUserNotFound || out.code == protocol.CodeAmbiguousUser {
			// Who was not found: the reference as sent (never a secret),
			// in the audit record only; the result stays as disclosed.
			r.UserRef, r.UserRefDomain = value, c.rec.User.Domain
		}
	}
	for _, v := range out.violations {
		r.Rules = append(r.Rules, string(v.Rule))
	}
	return e.auditOnSettle(disp, r)
}

// auditOnSettle makes the source's settlement write r: its Settlement is
// what the source did (completed, abandoned, dead_lettered, lock_lost,
// settle_failed) and its Time when it did it. LatencyMS stays the
// handling's.
func (e *Engine) auditOnSettle(disp transport.Disposition, r audit.Record) transport.Disposition {
	disp.Settled = func(s transport.Settlement) {
		r.Time, r.Settlement = e.cfg.Clock.Now(), s.String()
		if err := e.cfg.Audit.Write(r); err != nil {
			e.cfg.Logger.Error("audit write failed", "id", r.CommandID, "err", err)
		}
	}
	return disp
}

// dcHost turns a DC URL (ldaps://dc1.example.com:636) into the host name
// the result carries; "" when it has none.
func dcHost(dc string) string {
	if dc == "" {
		return ""
	}
	u, err := url.Parse(dc)
	if err != nil || u.Hostname() == "" || strings.Contains(u.Hostname(), ":") {
		return ""
	}
	return u.Hostname()
}

// maxWireFieldBytes is the protocol's bound on a violation's string field.
const maxWireFieldBytes = 256

func wireViolation(v policy.Violation) protocol.Violation {
	f := map[string]any{}
	switch v.Rule {
	case policy.RuleMinLength, policy.RuleMaxLength:
		f["required"], f["actual"] = v.Required, v.Got
	case policy.RuleComplexity:
		f["required"], f["actual"] = v.Required, v.Got
		f["found"], f["missing"] = joinCats(v.Found), joinCats(v.Missing)
	case policy.RuleContainsAccountName, policy.RuleContainsDisplayName:
		f["token"] = v.Token
	case policy.RuleBanned:
		// A field holds at most 256 bytes: the terms that do not fit are
		// counted in terms_more, with those the violation did not name
		// (a lower bound: strict mode stops looking past the named ones).
		var terms, hows []string
		n, more := 0, v.MoreMatches
		for _, m := range v.Matches {
			if n+len(m.Term)+1 > maxWireFieldBytes {
				more++
				continue
			}
			n += len(m.Term) + 1
			terms, hows = append(terms, m.Term), append(hows, string(m.How))
		}
		f["terms"], f["matched_by"] = strings.Join(terms, ","), strings.Join(hows, ",")
		if more > 0 {
			f["terms_more"] = more
		}
		if v.Mode != "" {
			f["banned_mode"] = string(v.Mode)
		}
		if v.Mode == policy.BannedEntra {
			f["score"], f["score_needed"] = v.Score, v.ScoreNeeded
		}
	case policy.RuleMinAge:
		if !v.NotBefore.IsZero() {
			f["not_before"] = v.NotBefore.UTC().Format(time.RFC3339)
		}
	}
	if len(f) == 0 {
		f = nil
	}
	return protocol.Violation{Rule: string(v.Rule), Message: v.Message, Fields: f}
}

func joinCats(cs []policy.Category) string {
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = string(c)
	}
	return strings.Join(s, ",")
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// sanitizeID keeps an unverified message id printable and short for logs.
func sanitizeID(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
	return clip(strings.ToValidUTF8(s, ""), 128)
}
