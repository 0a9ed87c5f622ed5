package ldapx

import "encoding/binary"

// attidUnicodePwd is unicodePwd's attribute id in replPropertyMetaData.
const attidUnicodePwd = 0x9005a

// PwdVersion reads unicodePwd's version from a replPropertyMetaData value
// (REPL_PROPERTY_META_DATA_VECTOR, MS-DRSR 5.158: a 16-byte header with the
// entry count at offset 8, then 48-byte entries of attribute id, version,
// time, originating DSA, originating USN and local USN). Every write of the
// password raises the version by one, whoever writes it and whatever it
// does to pwdLastSet, so it proves whether a write landed. ok is false when
// the value is malformed or has no unicodePwd entry.
func PwdVersion(raw []byte) (version uint32, ok bool) {
	const header, entry = 16, 48
	if len(raw) < header || binary.LittleEndian.Uint32(raw) != 1 {
		return 0, false
	}
	n := binary.LittleEndian.Uint32(raw[8:])
	if uint64(n) > uint64(len(raw)-header)/entry {
		return 0, false
	}
	for i := range int(n) {
		e := raw[header+entry*i:]
		if binary.LittleEndian.Uint32(e) == attidUnicodePwd {
			return binary.LittleEndian.Uint32(e[4:]), true
		}
	}
	return 0, false
}
