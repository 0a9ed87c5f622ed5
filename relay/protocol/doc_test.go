package protocol_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/adwriteback/adwriteback/relay/keys"
	"github.com/adwriteback/adwriteback/relay/protocol"
)

var docBlock = regexp.MustCompile("(?s)```json ([a-z-]+)\n(.*?)\n```")

// TestProtocolDocExamples decodes every labelled JSON example in
// PROTOCOL.md with the test keys, so the document cannot drift from the
// code, and checks that the document lists exactly the result codes.
func TestProtocolDocExamples(t *testing.T) {
	f := loadFixture(t)
	doc, err := os.ReadFile("PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := docBlock.FindAllSubmatch(doc, -1)
	counts := map[string]int{}
	for i, b := range blocks {
		label, body := string(b[1]), b[2]
		counts[label]++
		switch label {
		case "command-envelope":
			// Accepted whole (signature, times, secret) at the documented instant.
			got, err := receive(f.receiver(testNow, f.connA), body)
			if err != nil {
				t.Errorf("example %d (%s): %v", i, label, err)
				continue
			}
			got.Secrets.Zero()
		case "command-payload":
			c, err := protocol.ParseCommand(body)
			if err != nil {
				t.Errorf("example %d (%s): %v", i, label, err)
				continue
			}
			if c.Secret != nil {
				s, err := c.Open(protocol.OpenKeys{f.connA.KID: f.connA.HPKE})
				if err != nil {
					t.Errorf("example %d: open: %v", i, err)
					continue
				}
				if string(s.New.Bytes()) != pwNew || !strings.Contains(string(doc), pwNew) {
					t.Errorf("example %d: opens to a password other than the one documented", i)
				}
				s.Zero()
			}
		case "invalid-command-payload":
			if _, err := protocol.ParseCommand(body); err == nil {
				t.Errorf("example %d: documented as rejected, but decodes", i)
			}
		case "result-envelope":
			if _, err := protocol.VerifyResult(body, f.connectorResultKeys()); err != nil {
				t.Errorf("example %d (%s): %v", i, label, err)
			}
		case "result-payload":
			if _, err := protocol.ParseResult(body); err != nil {
				t.Errorf("example %d (%s): %v", i, label, err)
			}
		case "sender-public-key":
			p, err := keys.ParseSenderPublic(body)
			if err != nil || p.KID != f.sender.KID {
				t.Errorf("example %d (%s): %v", i, label, err)
			}
		default:
			t.Errorf("example %d: unknown label %q", i, label)
		}
	}
	for _, label := range []string{"command-envelope", "command-payload", "invalid-command-payload", "result-envelope", "result-payload", "sender-public-key"} {
		if counts[label] == 0 {
			t.Errorf("no %q example in PROTOCOL.md", label)
		}
	}

	// The result code table lists exactly the codes of the package.
	codeRow := regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\| ")
	sec := string(doc)
	start := strings.Index(sec, "### 7.1 Result codes")
	end := strings.Index(sec, "### 7.2")
	if start < 0 || end < start {
		t.Fatal("no result code section")
	}
	var documented []string
	for _, m := range codeRow.FindAllStringSubmatch(sec[start:end], -1) {
		documented = append(documented, m[1])
	}
	var want []string
	for _, c := range protocol.ResultCodes() {
		want = append(want, string(c))
	}
	if strings.Join(documented, ",") != strings.Join(want, ",") {
		t.Errorf("PROTOCOL.md result codes %v, package has %v", documented, want)
	}
	// And every error kind of the package is in the failure table.
	for _, kind := range []string{"ErrTooLarge", "ErrMalformed", "ErrUnknownField", "ErrUnsupportedVersion", "ErrInvalidField",
		"ErrUnsigned", "ErrUnknownSigner", "ErrBadSignature", "ErrExpired", "ErrNotYetValid", "ErrUnknownRecipient",
		"ErrDecrypt", "ErrBadSecret", "ErrReplayed", "ErrIDConflict", "ErrReplayCache", "ErrMessageID"} {
		if !strings.Contains(sec, "`"+kind+"`") {
			t.Errorf("PROTOCOL.md does not document %s", kind)
		}
	}
}
