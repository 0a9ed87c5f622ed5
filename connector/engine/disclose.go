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
	protocol.CodeProtectedAccount: "protected accounts (adminCount=1) are never written",
	protocol.CodeAccountDisabled:  "the account is disabled",
	protocol.CodeAccessDenied:     "the directory refused a read or write the command needs, or the old password was wrong" + seeAudit,
	protocol.CodeExpired:          "the command arrived after its expiry, or was dated in the future",
	protocol.CodeInvalidCommand:   "the command was refused before it ran" + seeAudit,
	protocol.CodeTransient:        "a temporary failure; the same command may be sent again" + seeAudit,
	protocol.CodeInternal:         "an unexpected connector failure" + seeAudit,
}

// checkOnly is the detail of a check that passed.
const checkOnly = "check only: nothing applied"

// disclose is out as the result for c may tell it: its detail replaced
// by the code's fixed phrase, and no DC.
func (e *Engine) disclose(c *command, out outcome) outcome {
	out.detail = disclosedDetail[out.code]
	if out.code == protocol.CodeSucceeded && c.rec.Op == protocol.OpCheck {
		out.detail = checkOnly
	}
	out.dc = ""
	return out
}
