package fsroot

import (
	"fmt"
	"io/fs"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// RemoveAll removes the entry name beneath the root, whatever it is: a
// directory with everything in it. No symlink is followed, on the way to
// name or below it: the parent is opened with RESOLVE_NO_SYMLINKS, a
// symlink is unlinked itself, and a directory is entered only through a
// descriptor opened from its parent's with O_NOFOLLOW, so nothing outside
// the root, or reached through a link, is touched, even if entries are
// swapped for links meanwhile. A name that does not exist is no error.
func (r *Root) RemoveAll(name string) error {
	clean, err := cleanEntry(name)
	if err != nil {
		return err
	}
	dir, base, err := r.parentOf(clean)
	if err != nil {
		return err
	}
	defer dir.Close()
	return removeAt(int(dir.Fd()), base, clean)
}

// removeAt removes base in dirfd (name, in errors), depth first.
func removeAt(dirfd int, base, name string) error {
	err := unix.Unlinkat(dirfd, base, 0)
	switch err {
	case nil, unix.ENOENT:
		return nil
	case unix.EISDIR, unix.EPERM: // a directory (EPERM on some file systems)
	default:
		return fmt.Errorf("remove %q: %w", name, openErr(err))
	}
	fd, err := unix.Openat(dirfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	switch err {
	case nil:
	case unix.ENOENT:
		return nil
	default:
		return fmt.Errorf("open %q: %w", name, openErr(err))
	}
	d := os.NewFile(uintptr(fd), name)
	names, err := d.Readdirnames(-1)
	for _, n := range names {
		if err != nil {
			break
		}
		err = removeAt(fd, n, name+"/"+n)
	}
	d.Close()
	if err != nil {
		return err
	}
	if err := unix.Unlinkat(dirfd, base, unix.AT_REMOVEDIR); err != nil && err != unix.ENOENT {
		return fmt.Errorf("remove %q: %w", name, openErr(err))
	}
	return nil
}

// SetFileMeta gives the open regular file f (from Tree.Open, say) the
// mode, less LandMask and any setuid, setgid or sticky bit, and the
// modification time, as a landed file gets them.
func SetFileMeta(f *os.File, mode fs.FileMode, mtime time.Time) error {
	return setMeta(int(f.Fd()), f.Name(), mode, mtime)
}
