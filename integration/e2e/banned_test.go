//go:build integration

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/adwriteback/adwriteback/integration/stack"
	"github.com/adwriteback/adwriteback/integration/testdc"
	"github.com/adwriteback/adwriteback/relay/protocol"
	"github.com/adwriteback/adwriteback/relay/sender"
)

// TestBannedListForReal runs resets through the real queue against the
// Samba DC with a banned list configured, in both banned modes (issue 18):
// a policy_violation names every matched term and how it matched, and in
// entra mode a long password with one banned term is accepted.
func TestBannedListForReal(t *testing.T) {
	banned := filepath.Join(t.TempDir(), "banned.txt")
	if err := os.WriteFile(banned, []byte("contoso\nblank\nwidget\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"strict", "entra"} {
		t.Run(mode, func(t *testing.T) {
			s := newEnv(t)
			s.Start("a", stack.Configure(func(c *stack.ConfigSpec) {
				c.PerUser, c.BannedWordsFile, c.BannedMode = 20, banned, mode
			}))
			c := s.Sender()
			u := testdc.NewUser(t, s.DC, "")
			pw := "C0ntos0-Blamk-Wx12"
			if mode == "entra" {
				pw = "C0ntos0Blank12"
			}
			res := c.Do(sender.Request{Op: protocol.OpReset, User: sam(u), NewPassword: s.Secret(pw)})
			if res.Code != protocol.CodePolicyViolation {
				t.Fatalf("result %+v", res.Result)
			}
			var v *protocol.Violation
			for i := range res.Violations {
				if res.Violations[i].Rule == "banned" {
					v = &res.Violations[i]
				}
			}
			if v == nil {
				t.Fatalf("no banned violation: %+v", res.Violations)
			}
			wantBy := "normalized,one_edit"
			if mode == "entra" {
				wantBy = "normalized,exact"
			}
			if v.Fields["terms"] != "contoso,blank" || v.Fields["matched_by"] != wantBy || v.Fields["banned_mode"] != mode {
				t.Errorf("fields %+v", v.Fields)
			}
			if mode == "entra" {
				if fmt.Sprint(v.Fields["score"]) != "4" || fmt.Sprint(v.Fields["score_needed"]) != "5" {
					t.Errorf("score %v, want 4 (%+v)", v.Fields["score"], v.Fields)
				}
				if v.Message != "banned: contains 'contoso' and 'blank'; add 1 more character" {
					t.Errorf("message %q", v.Message)
				}
			}
			if strings.Contains(v.Message, pw) || strings.Contains(strings.Join(s.AuditLines(res.CommandID), "\n"), pw) {
				t.Error("the password is in the result or the audit log")
			}
			if mode != "entra" {
				return
			}
			long := "Widget-harbour-lights-27"
			res = c.Do(sender.Request{Op: protocol.OpReset, User: sam(u), NewPassword: s.Secret(long)})
			if res.Code != protocol.CodeSucceeded {
				t.Fatalf("long password with one banned term: %+v", res.Result)
			}
			if err := bindErr(t, s.DC, u.DN, long); err != nil {
				t.Fatalf("bind with the new password: %v", err)
			}
		})
	}
}
