//go:build linux

package passive

import (
	"os"

	"golang.org/x/sys/unix"
)

// mapFile maps a regular file read-only so that records are read in place,
// without copying 800 MB through read(2). It returns nil (and the caller
// reads normally) for anything that is not a regular file, or when the
// mapping fails.
func mapFile(f *os.File) (data []byte, unmap func()) {
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() || st.Size() < 24 || st.Size() != int64(int(st.Size())) {
		return nil, func() {}
	}
	b, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return nil, func() {}
	}
	_ = unix.Madvise(b, unix.MADV_SEQUENTIAL)
	return b, func() { _ = unix.Munmap(b) }
}
