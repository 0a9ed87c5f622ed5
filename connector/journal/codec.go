package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// The on-disk entry is a compact binary record (format 2), not JSON: it is
// written twice per command on the hot path and read on every
// redelivery, and its size is what the journal file and the pages bbolt
// maps are made of.
//
//	byte    format (2)
//	uvarint len, ID
//	[32]    digest
//	byte    state (1 claimed, 2 applying, 3 done)
//	varint  until, created, applying, pwdLastSetBefore, done (Unix ns; 0 = zero time)
//	uvarint pwdVersionBefore
//	uvarint len, UserDN | DC | Code | Result
const entryFormat = 2

// maxField bounds a decoded string or byte field (a signed result is a few
// KB; anything larger is damage).
const maxField = 1 << 20

var errCorrupt = errors.New("journal: damaged entry")

var stateCodes = map[State]byte{StateClaimed: 1, StateApplying: 2, StateDone: 3}
var stateNames = map[byte]State{1: StateClaimed, 2: StateApplying, 3: StateDone}

func encodeEntry(e *Entry) []byte {
	b := make([]byte, 0, 96+len(e.ID)+len(e.UserDN)+len(e.DC)+len(e.Code)+len(e.Result))
	b = append(b, entryFormat)
	b = appendBytes(b, []byte(e.ID))
	b = append(b, e.Digest[:]...)
	b = append(b, stateCodes[e.State])
	for _, t := range []time.Time{e.Until, e.Created, e.Applying, e.PwdLastSetBefore, e.Done} {
		b = binary.AppendVarint(b, unixNano(t))
	}
	b = binary.AppendUvarint(b, uint64(e.PwdVersionBefore))
	for _, s := range []string{e.UserDN, e.DC, e.Code} {
		b = appendBytes(b, []byte(s))
	}
	return appendBytes(b, e.Result)
}

func decodeEntry(b []byte) (*Entry, error) {
	d := decoder{b: b}
	if d.byte() != entryFormat {
		return nil, fmt.Errorf("%w: unknown format", errCorrupt)
	}
	e := &Entry{ID: string(d.bytes())}
	copy(e.Digest[:], d.fixed(32))
	st, ok := stateNames[d.byte()]
	if !ok && d.err == nil {
		d.err = fmt.Errorf("%w: unknown state", errCorrupt)
	}
	e.State = st
	for _, t := range []*time.Time{&e.Until, &e.Created, &e.Applying, &e.PwdLastSetBefore, &e.Done} {
		*t = fromUnixNano(d.varint())
	}
	if v := d.uvarint(); v > 1<<32-1 {
		d.fail("version")
	} else {
		e.PwdVersionBefore = uint32(v)
	}
	for _, s := range []*string{&e.UserDN, &e.DC, &e.Code} {
		*s = string(d.bytes())
	}
	if r := d.bytes(); len(r) > 0 {
		e.Result = append([]byte(nil), r...)
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%w: trailing bytes", errCorrupt)
	}
	if d.err != nil {
		return nil, d.err
	}
	return e, nil
}

// encodeTimes and decodeTimes store a rate-limit record: Unix ns varints.
func encodeTimes(ts []time.Time) []byte {
	b := make([]byte, 0, 9*len(ts))
	for _, t := range ts {
		b = binary.AppendVarint(b, unixNano(t))
	}
	return b
}

func decodeTimes(b []byte) ([]time.Time, error) {
	d := decoder{b: b}
	var ts []time.Time
	for len(d.b) > 0 && d.err == nil {
		ts = append(ts, fromUnixNano(d.varint()))
	}
	return ts, d.err
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func appendBytes(b, s []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decoder reads fields, remembering the first error (later reads return
// zero values).
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: truncated %s", errCorrupt, what)
	}
	d.b = nil
}

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail("byte")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) fixed(n int) []byte {
	if len(d.b) < n {
		d.fail("field")
		return nil
	}
	s := d.b[:n]
	d.b = d.b[n:]
	return s
}

// varint reads binary.AppendVarint's zig-zag encoding.
func (d *decoder) varint() int64 {
	u := d.uvarint()
	return int64(u>>1) ^ -int64(u&1)
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("number")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte {
	l := d.uvarint()
	if l > maxField || l > uint64(len(d.b)) {
		d.fail("string")
		return nil
	}
	s := d.b[:l]
	d.b = d.b[l:]
	return s
}
