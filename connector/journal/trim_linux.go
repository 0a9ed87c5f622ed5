package journal

import (
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// trimResident drops the journal file's pages from the process's memory
// map (MADV_DONTNEED on bbolt's read-only shared mapping): they stay in
// the page cache and are faulted in again when read. Without it every
// page a transaction ever read (each leaf once, with the kernel's
// fault-around its neighbours too) stays resident, so RSS grows with the
// file over the retention period although the connector only ever works
// on the log's tail. It runs inside a read transaction, which keeps bbolt
// from remapping meanwhile; the map covers at least the pages the
// transaction sees (tx.Size, bbolt's high-water mark), and no page past
// them is ever read.
func trimResident(db *bolt.DB) error {
	return db.View(func(tx *bolt.Tx) error {
		addr, size := db.Info().Data, tx.Size()
		if size <= 0 {
			return nil
		}
		_, _, errno := unix.Syscall(unix.SYS_MADVISE, addr, uintptr(size), unix.MADV_DONTNEED)
		if errno != 0 {
			return errno
		}
		return nil
	})
}
