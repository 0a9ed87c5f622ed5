package ldapx

import (
	"encoding/binary"
	"testing"
	"time"
)

// metaVector builds a replPropertyMetaData value with (attid, version) pairs.
func metaVector(pairs ...[2]uint32) []byte {
	b := make([]byte, 16+48*len(pairs))
	binary.LittleEndian.PutUint32(b, 1)
	binary.LittleEndian.PutUint32(b[8:], uint32(len(pairs)))
	for i, p := range pairs {
		e := b[16+48*i:]
		binary.LittleEndian.PutUint32(e, p[0])
		binary.LittleEndian.PutUint32(e[4:], p[1])
	}
	return b
}

func TestPwdVersion(t *testing.T) {
	good := metaVector([2]uint32{0x0, 1}, [2]uint32{0x90060, 4}, [2]uint32{attidUnicodePwd, 7}, [2]uint32{0x90096, 2})
	if v, ok := PwdVersion(good); !ok || v != 7 {
		t.Fatalf("got %d %v, want 7", v, ok)
	}
	lying := metaVector([2]uint32{attidUnicodePwd, 3})
	binary.LittleEndian.PutUint32(lying[8:], 1000) // count beyond the data
	badVersion := metaVector([2]uint32{attidUnicodePwd, 3})
	badVersion[0] = 2
	for name, raw := range map[string][]byte{
		"empty": nil, "short header": good[:10], "count beyond the data": lying,
		"unknown vector version": badVersion, "no unicodePwd entry": metaVector([2]uint32{0x90060, 4}),
	} {
		if v, ok := PwdVersion(raw); ok {
			t.Errorf("%s: read version %d", name, v)
		}
	}
}

func TestPwdMetaTime(t *testing.T) {
	raw := metaVector([2]uint32{0x90060, 4}, [2]uint32{attidUnicodePwd, 9})
	want := time.Date(2026, 11, 25, 17, 30, 5, 0, time.UTC)
	binary.LittleEndian.PutUint64(raw[16+48+8:], uint64(want.Unix()+dsTimeUnixOffset))
	if w, ok := PwdMeta(raw); !ok || w.Version != 9 || !w.At.Equal(want) {
		t.Fatalf("got %+v %v, want version 9 at %v", w, ok, want)
	}
	binary.LittleEndian.PutUint64(raw[16+48+8:], 0)
	if w, ok := PwdMeta(raw); !ok || !w.At.IsZero() {
		t.Fatalf("no time recorded: got %+v %v", w, ok)
	}
}

func FuzzPwdVersion(f *testing.F) {
	f.Add(metaVector([2]uint32{attidUnicodePwd, 7}))
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, raw []byte) {
		w, ok := PwdMeta(raw)
		if !ok && w != (PwdWrite{}) {
			t.Fatalf("%+v without ok", w)
		}
		if !w.At.IsZero() && (w.At.Year() < 1970 || w.At.Year() > 9999) {
			t.Fatalf("time %v out of range", w.At)
		}
	})
}
