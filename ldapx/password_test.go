package ldapx

import (
	"testing"

	ber "github.com/go-asn1-ber/asn1-ber"
)

func TestPolicyHintsControlEncoding(t *testing.T) {
	p := policyHintsControl(OIDPolicyHints).Encode()
	pkt, err := ber.DecodePacketErr(p.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if len(pkt.Children) != 2 {
		t.Fatalf("control has %d fields, want OID and value (criticality FALSE is omitted)", len(pkt.Children))
	}
	if oid := pkt.Children[0].Value; oid != OIDPolicyHints {
		t.Fatalf("OID %v", oid)
	}
	val, err := ber.DecodePacketErr(pkt.Children[1].Data.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if val.Tag != ber.TagSequence || len(val.Children) != 1 || val.Children[0].Value != int64(1) {
		t.Fatalf("value is not SEQUENCE { INTEGER 1 }: %#v", val)
	}
}

func TestRootDSEPolicyHintsPreference(t *testing.T) {
	for _, tc := range []struct {
		controls []string
		want     string
	}{
		{nil, ""},
		{[]string{"1.2.3"}, ""},
		{[]string{OIDPolicyHintsDeprecated}, OIDPolicyHintsDeprecated},
		{[]string{OIDPolicyHintsDeprecated, OIDPolicyHints}, OIDPolicyHints},
	} {
		r := &RootDSE{SupportedControls: tc.controls}
		if got := r.PolicyHintsOID(); got != tc.want {
			t.Errorf("%v: %q, want %q", tc.controls, got, tc.want)
		}
	}
}
