package engine

import "github.com/adwriteback/adwriteback/relay/protocol"

// What a result discloses. An outcome's detail is the full story for the
// audit record: the DC's error as ldapx formats it (its host, the LDAP
// code, the Windows or Samba extended error), DNs, Go error texts. None
// of it goes upstream: the result is read by the sender, and through it
// possibly by people the connector knows nothing about, while the names
// of DCs, OUs, groups and policies and the DC's own words map the
// directory for whoever reads them. The result carries a fixed phrase
// per code instead (disclosedDetail), and no DC; the audit record, the
// log, the journal and the metrics keep the outcome as it was.
//
// Stages keep writing whatever helps an admin into detail: disclose is
// applied once, when the result is built, and is the only place that
// decides what leaves.

// seeAudit ends the phrase of a code whose cause only the audit record
// names.
const seeAudit = "; the audit record under this command id says more"

// disclosedDetail is the result's detail for each code: a fixed phrase,
// user-safe and useful to an admin, or none where the code, message,
// violations or dcReason already say everything.
var disclosedDetail = map[protocol.ResultCode]string{
	protocol.CodeRejectedByDC:     "refused by the domain controller" + seeAudit,
	protocol.CodeUserNotFound:     "no account matches the user reference",
	protocol.CodeAmbiguousUser:    "more than one account matches the user reference",
	protocol.CodeOutOfScope:       "outside the connector's scope: its OUs, excluded groups or domains" + seeAudit,
	protocol.CodeProtectedAccount: "protected accounts (built-in, tier-0 group members, adminCount=1) are never written",
	protocol.CodeAccountDisabled:  "the account is disabled",
	protocol.CodeAccessDenied:     "the directory refused a read or write the command needs, or the old password was wrong" + seeAudit,
	protocol.CodeExpired:          "the command arrived after its expiry, or was dated in the future",
	protocol.CodeInvalidCommand:   "the command was refused before it ran" + seeAudit,
	protocol.CodeTransient:        "a temporary failure; the same command may be sent again" + seeAudit,
	protocol.CodeInternal:         "an unexpected connector failure" + seeAudit,
	protocol.CodeSuperseded:       "a password was written to the account after the command was issued and before it was queued; nothing was written",
}

// checkOnly is the detail of a check that passed.
const checkOnly = "check only: nothing applied"

// accountCodes are the codes that say why an account cannot be served
// here, and so that it exists (ambiguous_user: that two share an id),
// where it sits or what it is. With Config.UniformAccountCodes they are
// all answered as one (uniformRefusal), so that whoever can have a
// command sent for any name learns from the answer only that this
// connector will not serve it. Every other code either follows an
// account the connector would serve (succeeded, policy_violation,
// rate_limited, ...) or says nothing about the account.
var accountCodes = map[protocol.ResultCode]bool{
	protocol.CodeUserNotFound:     true,
	protocol.CodeAmbiguousUser:    true,
	protocol.CodeOutOfScope:       true,
	protocol.CodeProtectedAccount: true,
	protocol.CodeAccountDisabled:  true,
}

// uniformRefusal is the one answer to every account code in uniform
// mode: user_not_found, its default message, no detail, nothing else.
var uniformRefusal = outcome{code: protocol.CodeUserNotFound, message: protocol.CodeUserNotFound.DefaultMessage()}

// disclose is out as the result for c may tell it: in uniform mode an
// account code is the uniform refusal; otherwise its detail is replaced
// by the code's fixed phrase and its DC removed.
func (e *Engine) disclose(c *command, out outcome) outcome {
	if e.cfg.UniformAccountCodes && accountCodes[out.code] {
		return uniformRefusal
	}
	out.detail = disclosedDetail[out.code]
	succeeded := out.code == protocol.CodeSucceeded
	switch {
	case succeeded && c.rec.Op == protocol.OpCheck:
		out.detail = checkOnly
	case succeeded && c.rec.Op == protocol.OpDescribe:
		out.detail = describeOnly
	}
	if !succeeded || c.rec.Op != protocol.OpDescribe {
		// A policy answers a describe that succeeded, nothing else; it
		// names no PSO, group or DN (WirePolicy).
		out.policy = nil
	}
	out.dc = ""
	return out
}
