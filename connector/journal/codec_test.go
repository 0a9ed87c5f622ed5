package journal

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

func sampleEntry() *Entry {
	at := time.Date(2026, 11, 25, 12, 0, 0, 123, time.UTC)
	return &Entry{ID: "0b7c-id", Digest: [32]byte{1, 2, 3}, State: StateDone, Until: at.Add(time.Hour), Created: at,
		Applying: at.Add(time.Second), UserDN: "CN=Ünïcode,OU=Managed,DC=adw,DC=test", PwdLastSetBefore: at.Add(-48 * time.Hour), PwdVersionBefore: 300,
		DC: "ldaps://dc1.adw.test:636", Code: "succeeded", Result: []byte(`{"signed":"result"}`), Done: at.Add(2 * time.Second)}
}

func TestEntryRoundTrip(t *testing.T) {
	for _, e := range []*Entry{sampleEntry(), {ID: "claimed-only", State: StateClaimed, Created: time.Unix(1, 0).UTC()}} {
		got, err := decodeEntry(encodeEntry(e))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, e) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, e)
		}
	}
}

func TestDecodeEntryRejectsDamage(t *testing.T) {
	good := encodeEntry(sampleEntry())
	cases := map[string][]byte{
		"empty":          nil,
		"unknown format": append([]byte{9}, good[1:]...),
		"truncated":      good[:len(good)-3],
		"trailing bytes": append(append([]byte(nil), good...), 0),
		"huge length":    {entryFormat, 0xff, 0xff, 0xff, 0xff, 0x0f},
	}
	bad := append([]byte(nil), good...)
	bad[1+1+len("0b7c-id")+32] = 7 // the state byte
	small := encodeEntry(&Entry{ID: "x", State: StateDone})
	const at = 1 + 2 + 32 + 1 + 5 // format, id, digest, state, five zero times
	if small[at] != 0 {
		t.Fatal("layout changed: fix the offset")
	}
	cases["version beyond 32 bits"] = append(append(append([]byte(nil), small[:at]...), 0x80, 0x80, 0x80, 0x80, 0x10), small[at+1:]...)
	cases["unknown state"] = bad
	for name, b := range cases {
		if _, err := decodeEntry(b); !errors.Is(err, errCorrupt) {
			t.Errorf("%s: %v, want errCorrupt", name, err)
		}
	}
}

func TestTimesRoundTrip(t *testing.T) {
	ts := []time.Time{time.Unix(100, 5).UTC(), time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)}
	got, err := decodeTimes(encodeTimes(ts))
	if err != nil || !reflect.DeepEqual(got, ts) {
		t.Fatalf("%v %v", got, err)
	}
	if _, err := decodeTimes([]byte{0x80}); !errors.Is(err, errCorrupt) {
		t.Fatalf("truncated varint: %v", err)
	}
}

// FuzzDecodeEntry: any bytes decode to an entry or errCorrupt, never a
// panic, and what decodes re-encodes to something that decodes the same.
func FuzzDecodeEntry(f *testing.F) {
	f.Add(encodeEntry(sampleEntry()))
	f.Add(encodeEntry(&Entry{ID: "x", State: StateApplying}))
	f.Add([]byte{entryFormat})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeEntry(b)
		if err != nil {
			if !errors.Is(err, errCorrupt) {
				t.Fatalf("error not classified: %v", err)
			}
			return
		}
		again, err := decodeEntry(encodeEntry(e))
		if err != nil || !reflect.DeepEqual(again, e) {
			t.Fatalf("re-encode differs: %+v vs %+v (%v)", again, e, err)
		}
		if _, err := decodeTimes(b); err != nil && !errors.Is(err, errCorrupt) {
			t.Fatalf("times: error not classified: %v", err)
		}
	})
}
