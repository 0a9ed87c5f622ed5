package ldapx

import (
	"encoding/base64"
	"testing"
)

// TestImmutableIDFilter: an immutable id matches ms-DS-ConsistencyGuid or
// objectGUID (as Entra Connect anchors, newer or older), every byte
// escaped, and only user objects.
func TestImmutableIDFilter(t *testing.T) {
	raw := []byte{0x2a, 0x28, 0x29, 0x5c, 0x00, 0xff, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80, 0x90, 0xa0}
	f, err := UserRef{Kind: RefConsistencyGUID, Value: base64.StdEncoding.EncodeToString(raw)}.filter()
	if err != nil {
		t.Fatal(err)
	}
	const esc = `\2a\28\29\5c\00\ff\10\20\30\40\50\60\70\80\90\a0`
	want := `(&(objectClass=user)(|(mS-DS-ConsistencyGuid=` + esc + `)(objectGUID=` + esc + `)))`
	if f != want {
		t.Fatalf("filter\n got %s\nwant %s", f, want)
	}
	// The objectGUID reference is still objectGUID alone.
	g, err := UserRef{Kind: RefObjectGUID, Value: GUIDString(raw)}.filter()
	if err != nil {
		t.Fatal(err)
	}
	if want := `(&(objectClass=user)(objectGUID=` + esc + `))`; g != want {
		t.Fatalf("objectGUID filter %s", g)
	}
}
