//go:build integration

package ldapx_test

import (
	"encoding/base64"
	"errors"
	"testing"

	"github.com/adwriteback/adwriteback/integration/testdc"
	"github.com/adwriteback/adwriteback/ldapx"
)

// TestFindByImmutableIDAsEntraIssuesIt: Entra's immutable id is an
// account's ms-DS-ConsistencyGuid (newer Entra Connect) or its objectGUID
// (older installations); the Samba DC finds the account by either, once
// when both hold it, and two accounts holding it (one by each attribute)
// are ambiguous.
func TestFindByImmutableIDAsEntraIssuesIt(t *testing.T) {
	info := testdc.Ensure(t)
	cl := newClient(t, info)
	find := func(raw []byte) (*ldapx.User, error) {
		return cl.FindUser(ctxT(t), ldapx.UserRef{Kind: ldapx.RefConsistencyGUID, Value: base64.StdEncoding.EncodeToString(raw)})
	}
	guidOf := func(dn string) []byte {
		g := testdc.ReadAttr(t, info, dn, "objectGUID")
		if len(g) != 16 {
			t.Fatalf("objectGUID of %s: %d bytes", dn, len(g))
		}
		return g
	}

	// No ms-DS-ConsistencyGuid: found by its objectGUID's bytes.
	older := testdc.NewUser(t, info, "")
	if u, err := find(guidOf(older.DN)); err != nil || u.DN != older.DN {
		t.Fatalf("by objectGUID: %v %+v", err, u)
	}
	// ms-DS-ConsistencyGuid filled from objectGUID: matched by both, one
	// account.
	newer := testdc.NewUser(t, info, "")
	testdc.SetConsistencyGUID(t, info, newer.DN, guidOf(newer.DN))
	if u, err := find(guidOf(newer.DN)); err != nil || u.DN != newer.DN {
		t.Fatalf("by both attributes: %v %+v", err, u)
	}
	// ms-DS-ConsistencyGuid set to other bytes (a migrated account): found
	// by them.
	if u, err := find(mustB64(t, testdc.ConsistencyGUIDAlice)); err != nil || u.DN != info.Users["alice"].DN {
		t.Fatalf("by ms-DS-ConsistencyGuid: %v %+v", err, u)
	}
	// B's ms-DS-ConsistencyGuid is A's objectGUID: two accounts.
	a, b := testdc.NewUser(t, info, ""), testdc.NewUser(t, info, "")
	testdc.SetConsistencyGUID(t, info, b.DN, guidOf(a.DN))
	if u, err := find(guidOf(a.DN)); !errors.Is(err, ldapx.ErrAmbiguous) {
		t.Fatalf("A's objectGUID is B's ms-DS-ConsistencyGuid: got %v %+v, want ambiguous", err, u)
	}
}

func mustB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
