// Package breach owns the offline breached-password list: an index file built
// from a list in the Have I Been Pwned published format ("HASH:COUNT" lines of
// SHA-1 or NT hashes in hex) and queried from disk without loading it: the
// index is the sorted, de-duplicated hashes at a fixed width behind a
// 65,536-entry fan-out table on the first two bytes (512 KiB, the only part
// held in memory). A lookup reads the hash's bucket with ReadAt: a binary
// search over the file while the bucket is large, one read of at most
// readRange records at the end.
//
// *Index implements policy.BreachChecker. Neither the password nor its hash
// appears in any error.
package breach

import (
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"unicode/utf16"

	"golang.org/x/crypto/md4" //nolint:staticcheck // NT hash = MD4(UTF-16LE), what HIBP's NTLM list holds
)

// Kind is the hash a list holds.
type Kind uint8

const (
	// SHA1 is SHA-1 of the password's UTF-8 bytes (HIBP's default list).
	SHA1 Kind = 1
	// NT is the NT hash, MD4 of the password in UTF-16LE (HIBP's NTLM list).
	NT Kind = 2
)

func (k Kind) String() string {
	switch k {
	case SHA1:
		return "sha1"
	case NT:
		return "nt"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Width is the hash size in bytes, 0 for an unknown kind.
func (k Kind) Width() int {
	switch k {
	case SHA1:
		return sha1.Size
	case NT:
		return md4.Size
	}
	return 0
}

// Hash returns the hash of password for this kind.
func (k Kind) Hash(password string) []byte {
	switch k {
	case SHA1:
		h := sha1.Sum([]byte(password))
		return h[:]
	case NT:
		u := utf16.Encode([]rune(password))
		b := make([]byte, 2*len(u))
		for i, c := range u {
			binary.LittleEndian.PutUint16(b[2*i:], c)
		}
		h := md4.New()
		h.Write(b)
		return h.Sum(nil)
	}
	return nil
}

// File layout, all integers little-endian:
//
//	0   magic "ADWBRCH1"
//	8   kind (1 byte), hash width (1 byte), 6 zero bytes
//	16  record count (uint64)
//	24  8 zero bytes
//	32  fan-out: 65,537 uint64; bucket b (first two hash bytes) holds
//	    records [fan[b], fan[b+1])
//	... records: count hashes of width bytes, sorted, unique
const (
	magic      = "ADWBRCH1"
	headerSize = 32
	fanEntries = 1<<16 + 1
	dataOffset = headerSize + fanEntries*8
	readRange  = 256 // buckets this small are read whole
)

// ErrFormat is returned for a file that is not a valid index.
var ErrFormat = errors.New("breach: not a valid breached-password index")

// Index is an open index file. It is safe for concurrent use.
type Index struct {
	f     io.ReaderAt
	close func() error
	kind  Kind
	width int
	count uint64
	fan   []uint64
}

// Open opens an index file built by Build.
func Open(path string) (*Index, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("breach: open index: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("breach: open index: %w", err)
	}
	ix, err := NewIndex(f, st.Size())
	if err != nil {
		f.Close()
		return nil, err
	}
	ix.close = f.Close
	return ix, nil
}

// NewIndex reads an index from r, of the given size.
func NewIndex(r io.ReaderAt, size int64) (*Index, error) {
	if size < dataOffset {
		return nil, fmt.Errorf("%w: %d bytes, too short", ErrFormat, size)
	}
	head := make([]byte, dataOffset)
	if _, err := r.ReadAt(head, 0); err != nil {
		return nil, fmt.Errorf("breach: read index header: %w", err)
	}
	if string(head[:8]) != magic {
		return nil, fmt.Errorf("%w: bad magic", ErrFormat)
	}
	kind := Kind(head[8])
	width := kind.Width()
	if width == 0 || int(head[9]) != width {
		return nil, fmt.Errorf("%w: unknown hash kind %d", ErrFormat, head[8])
	}
	count := binary.LittleEndian.Uint64(head[16:])
	if uint64(size-dataOffset) != count*uint64(width) || count > uint64(size) {
		return nil, fmt.Errorf("%w: size %d does not match %d records", ErrFormat, size, count)
	}
	fan := make([]uint64, fanEntries)
	for i := range fan {
		fan[i] = binary.LittleEndian.Uint64(head[headerSize+8*i:])
		if (i == 0 && fan[i] != 0) || (i > 0 && fan[i] < fan[i-1]) {
			return nil, fmt.Errorf("%w: fan-out table not increasing", ErrFormat)
		}
	}
	if fan[fanEntries-1] != count {
		return nil, fmt.Errorf("%w: fan-out table does not end at the record count", ErrFormat)
	}
	return &Index{f: r, kind: kind, width: width, count: count, fan: fan}, nil
}

// Close closes the file (when opened by Open).
func (ix *Index) Close() error {
	if ix.close == nil {
		return nil
	}
	return ix.close()
}

// Kind is the hash the index holds.
func (ix *Index) Kind() Kind { return ix.kind }

// Len is the number of hashes in the index.
func (ix *Index) Len() uint64 { return ix.count }

// Breached reports whether password's hash is in the index.
func (ix *Index) Breached(password string) (bool, error) {
	return ix.ContainsHash(ix.kind.Hash(password))
}

// ContainsHash reports whether hash (of the index's kind) is in the index.
func (ix *Index) ContainsHash(hash []byte) (bool, error) {
	if len(hash) != ix.width {
		return false, fmt.Errorf("breach: hash of %d bytes, index holds %d", len(hash), ix.width)
	}
	b := int(hash[0])<<8 | int(hash[1])
	lo, hi := ix.fan[b], ix.fan[b+1]
	rec := make([]byte, ix.width)
	for hi-lo > readRange {
		mid := lo + (hi-lo)/2
		if err := ix.read(rec, mid); err != nil {
			return false, err
		}
		switch c := bytes.Compare(rec, hash); {
		case c == 0:
			return true, nil
		case c < 0:
			lo = mid + 1
		default:
			hi = mid
		}
	}
	if hi == lo {
		return false, nil
	}
	buf := make([]byte, int(hi-lo)*ix.width)
	if err := ix.read(buf, lo); err != nil {
		return false, err
	}
	n := int(hi - lo)
	i := sort.Search(n, func(i int) bool { return bytes.Compare(buf[i*ix.width:(i+1)*ix.width], hash) >= 0 })
	return i < n && bytes.Equal(buf[i*ix.width:(i+1)*ix.width], hash), nil
}

func (ix *Index) read(p []byte, record uint64) error {
	if _, err := ix.f.ReadAt(p, dataOffset+int64(record)*int64(ix.width)); err != nil {
		return fmt.Errorf("breach: read index: %w", err)
	}
	return nil
}
