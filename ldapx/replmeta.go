package ldapx

import (
	"encoding/binary"
	"time"
)

// attidUnicodePwd is unicodePwd's attribute id in replPropertyMetaData.
const attidUnicodePwd = 0x9005a

// PwdWrite is what replPropertyMetaData records of the last password write.
type PwdWrite struct {
	// Version is unicodePwd's replication version: every write of the
	// password raises it by one, whoever writes it and whatever it does to
	// pwdLastSet, so it proves whether a write landed.
	Version uint32
	// At is the write's originating time (the writing DC's clock, whole
	// seconds); zero when not recorded.
	At time.Time
}

// dsTimeUnixOffset is the seconds from 1601-01-01 (DSTIME's epoch) to 1970.
const dsTimeUnixOffset = 11644473600

// PwdMeta reads unicodePwd's entry from a replPropertyMetaData value
// (REPL_PROPERTY_META_DATA_VECTOR, MS-DRSR 5.158: a 16-byte header with the
// entry count at offset 8, then 48-byte entries of attribute id, version,
// originating time (DSTIME: seconds since 1601), originating DSA,
// originating USN and local USN). ok is false when the value is malformed
// or has no unicodePwd entry.
func PwdMeta(raw []byte) (w PwdWrite, ok bool) {
	const header, entry = 16, 48
	if len(raw) < header || binary.LittleEndian.Uint32(raw) != 1 {
		return PwdWrite{}, false
	}
	n := binary.LittleEndian.Uint32(raw[8:])
	if uint64(n) > uint64(len(raw)-header)/entry {
		return PwdWrite{}, false
	}
	for i := range int(n) {
		e := raw[header+entry*i:]
		if binary.LittleEndian.Uint32(e) != attidUnicodePwd {
			continue
		}
		w.Version = binary.LittleEndian.Uint32(e[4:])
		// Times before 1970 or past year 9999 are not real writes.
		if s := binary.LittleEndian.Uint64(e[8:]); s > dsTimeUnixOffset && s < dsTimeUnixOffset+253402300800 {
			w.At = time.Unix(int64(s-dsTimeUnixOffset), 0).UTC()
		}
		return w, true
	}
	return PwdWrite{}, false
}

// PwdVersion is PwdMeta's version alone.
func PwdVersion(raw []byte) (version uint32, ok bool) {
	w, ok := PwdMeta(raw)
	return w.Version, ok
}
