package fsroot

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// SpaceReserve is the free space CheckSpace leaves on a file system:
// a receive that would take it below this much is refused, so that a
// pull never fills a disk to its last block (other writers, logs and
// the receiver's own fsync still need some).
const SpaceReserve = 16 << 20

// freeSpace is the space an unprivileged writer may still use on fd's
// file system (statfs f_bavail: root's reserved blocks do not count).
func freeSpace(fd int) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Fstatfs(fd, &st); err != nil {
		return 0, fmt.Errorf("statfs: %w", err)
	}
	return int64(min(st.Bavail, uint64(1<<62)/uint64(max(st.Bsize, 1)))) * st.Bsize, nil
}

// FreeSpace is the free space on the file system of the file d writes,
// or -1 when d keeps no file (standard output, /dev/null).
func (d *Destination) FreeSpace() (int64, error) {
	if !d.KeepsFile() {
		return -1, nil
	}
	return freeSpace(int(d.f.Fd()))
}

// FreeSpace is the free space on the file system of the root directory.
func (r *Root) FreeSpace() (int64, error) { return freeSpace(int(r.dir.Fd())) }

// CheckSpace refuses, with an error wrapping ErrNoSpace, need more bytes
// (beyond those already counted) for name on a file system with free
// bytes free (a FreeSpace): they must leave SpaceReserve. A negative
// free (no file) fits anything. The check is made before a byte is
// written; other writers may still take the space meanwhile.
func CheckSpace(name string, need, free int64) error {
	if free < 0 || need <= free-SpaceReserve {
		return nil
	}
	return fmt.Errorf("%w for %s: it needs %d bytes, its file system has %d free (and keeps %d in reserve)",
		ErrNoSpace, name, need, free, int64(SpaceReserve))
}
