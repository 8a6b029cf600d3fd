package fsroot

import (
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"strings"
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
// name is checked as a walked path (walkedPath), not as a client's: a
// name the destination's own walk found may be any bytes.
func (r *Root) RemoveAll(name string) error {
	return r.inParent(name, func(dir int, base, clean string) error {
		return removeAt(dir, base, clean)
	})
}

// inParent checks name as a walked path, opens its parent through no
// symlink, and runs f with the parent's descriptor, name's last element
// and the cleaned name.
func (r *Root) inParent(name string, f func(dir int, base, clean string) error) error {
	clean, err := walkedPath(name)
	if err != nil {
		return err
	}
	dir, base, err := r.parentOf(clean)
	if err != nil {
		return err
	}
	defer dir.Close()
	return f(int(dir.Fd()), base, clean)
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

// walkedPath checks a path a walk of this host's own tree produced (its
// names are whatever the directories hold: any bytes but NUL and "/"):
// relative, lexically clean, below the root, not the root itself. Unlike
// CleanPath it takes invalid UTF-8, which a client may never send but a
// directory may hold.
func walkedPath(name string) (string, error) {
	switch {
	case name == "", name == ".", strings.IndexByte(name, 0) >= 0, path.IsAbs(name),
		path.Clean(name) != name, name == "..", strings.HasPrefix(name, "../"):
		return "", fmt.Errorf("%w: %q is not a clean path below the root", ErrInvalidPath, name)
	}
	return name, nil
}

// MoveAside renames the entry name beneath the root, whatever it is, to a
// new name beside it ("<name>.<16 hex digits>.ferry-old", never one that
// exists) and returns that name, so that something else can take its
// place while it can still be put back (PutBack) or removed (RemoveAll)
// once that is settled. No symlink is followed on the way to name, and a
// symlink at name is moved itself.
func (r *Root) MoveAside(name string) (aside string, err error) {
	err = r.inParent(name, func(dir int, base, clean string) error {
		err := error(unix.EEXIST)
		for range 4 {
			a := fmt.Sprintf("%s.%016x.ferry-old", base, rand.Uint64())
			if err = unix.Renameat2(dir, base, dir, a, unix.RENAME_NOREPLACE); err == nil {
				aside = path.Join(path.Dir(clean), a)
				return nil
			}
			if err != unix.EEXIST {
				break
			}
		}
		return fmt.Errorf("move %q aside: %w", clean, openErr(err))
	})
	return aside, err
}

// PutBack renames aside (from MoveAside) back to name, after removing
// whatever took name's place meanwhile (RemoveAll).
func (r *Root) PutBack(aside, name string) error {
	if err := r.RemoveAll(name); err != nil {
		return err
	}
	return r.inParent(name, func(dir int, base, clean string) error {
		if path.Dir(aside) != path.Dir(clean) {
			return fmt.Errorf("%w: %q is not beside %q", ErrInvalidPath, aside, clean)
		}
		if err := unix.Renameat2(dir, path.Base(aside), dir, base, unix.RENAME_NOREPLACE); err != nil {
			return fmt.Errorf("put %q back: %w", clean, openErr(err))
		}
		return nil
	})
}
