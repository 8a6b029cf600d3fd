package transfer

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Building a received tree beneath a Root. Every name is resolved in the
// kernel beneath the root, and the directories on the way through no
// symlink at all (RESOLVE_NO_SYMLINKS): a tree's sender names paths, and
// a hostile one must not be able to write outside the root, not even
// through a symlink it had the receiver create first.

// Sub opens the directory name beneath the root as a Root of its own.
// name is resolved as Open resolves it; one that is not a directory is
// ErrNotDir.
func (r *Root) Sub(name string) (*Root, error) {
	clean, err := CleanPath(name)
	if err != nil {
		return nil, err
	}
	d, err := r.openListed(clean)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	fd, err := unix.Openat(int(d.Fd()), ".", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %q: %w", clean, openErr(err))
	}
	return &Root{dir: os.NewFile(uintptr(fd), clean)}, nil
}

// parentOf opens the directory holding name (a cleaned path other than
// ".") through no symlink, and returns it with name's last element.
func (r *Root) parentOf(clean string) (*os.File, string, error) {
	dir, base := path.Split(clean)
	if dir == "" {
		dir = "."
	}
	how := &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	}
	fd, err := openat2Retry(int(r.dir.Fd()), dir, how)
	if err != nil {
		return nil, "", fmt.Errorf("open %q: %w", path.Clean(dir), openErr(err))
	}
	return os.NewFile(uintptr(fd), dir), base, nil
}

// cleanEntry checks a path a tree's sender named: lexically clean,
// relative, and not the root itself.
func cleanEntry(name string) (string, error) {
	clean, err := CleanPath(name)
	if err != nil {
		return "", err
	}
	if clean == "." || clean != name {
		return "", fmt.Errorf("%w: %q is not a clean path below the tree", ErrInvalidPath, name)
	}
	return clean, nil
}

// Mkdir creates the directory name beneath the root with perm (and the
// owner's rwx, so that it can be filled; SetMeta sets the final mode).
// An existing directory is ErrExists unless existing is true; anything
// else in its place, a symlink included, is ErrExists.
func (r *Root) Mkdir(name string, perm fs.FileMode, existing bool) error {
	clean, err := cleanEntry(name)
	if err != nil {
		return err
	}
	dir, base, err := r.parentOf(clean)
	if err != nil {
		return err
	}
	defer dir.Close()
	err = unix.Mkdirat(int(dir.Fd()), base, uint32(perm.Perm()|0o700))
	if err == unix.EEXIST && existing {
		var st unix.Stat_t
		if unix.Fstatat(int(dir.Fd()), base, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("mkdir %q: %w", clean, mkErr(err))
	}
	return nil
}

// Symlink creates name beneath the root as a symlink to target. The
// caller judges the target (the link is never followed here). An
// existing name is ErrExists unless replace is true, when a non-directory
// in its place is replaced atomically.
func (r *Root) Symlink(target, name string, replace bool) error {
	clean, err := cleanEntry(name)
	if err != nil {
		return err
	}
	dir, base, err := r.parentOf(clean)
	if err != nil {
		return err
	}
	defer dir.Close()
	dfd := int(dir.Fd())
	err = unix.Symlinkat(target, dfd, base)
	if err == unix.EEXIST && replace {
		tmp := base + ".partial"
		unix.Unlinkat(dfd, tmp, 0)
		if err = unix.Symlinkat(target, dfd, tmp); err == nil {
			var st unix.Stat_t
			if unix.Fstatat(dfd, base, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
				err = unix.EISDIR
			} else {
				err = unix.Renameat(dfd, tmp, dfd, base)
			}
			if err != nil {
				unix.Unlinkat(dfd, tmp, 0)
			}
		}
	}
	if err != nil {
		return fmt.Errorf("symlink %q: %w", clean, mkErr(err))
	}
	return nil
}

// SetDirMeta sets the mode and modification time of the directory name
// beneath the root (the access time too, to mtime).
func (r *Root) SetDirMeta(name string, mode fs.FileMode, mtime time.Time) error {
	clean, err := CleanPath(name)
	if err != nil {
		return err
	}
	how := &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	}
	fd, err := openat2Retry(int(r.dir.Fd()), clean, how)
	if err != nil {
		return fmt.Errorf("open %q: %w", clean, openErr(err))
	}
	defer unix.Close(fd)
	return setMeta(fd, clean, mode, mtime)
}

// SetMeta sets a received file's mode and modification time before it is
// committed (the rename keeps both). Call it after the last byte.
func (d *Destination) SetMeta(mode fs.FileMode, mtime time.Time) error {
	if d.f == nil || d.partial == "" {
		return nil
	}
	return setMeta(int(d.f.Fd()), d.Path, mode, mtime)
}

func setMeta(fd int, name string, mode fs.FileMode, mtime time.Time) error {
	if err := unix.Fchmod(fd, uint32(mode.Perm())); err != nil {
		return fmt.Errorf("chmod %q: %w", name, err)
	}
	ts := unix.NsecToTimespec(mtime.UnixNano())
	times := [2]unix.Timespec{ts, ts}
	// futimens(3): utimensat with a NULL path sets the descriptor's file.
	if _, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&times[0])), 0, 0, 0); e != 0 {
		return fmt.Errorf("set times of %q: %w", name, e)
	}
	return nil
}

// mkErr maps mkdirat and symlinkat errnos to sentinels.
func mkErr(err error) error {
	if err == unix.EEXIST {
		return ErrExists
	}
	return openErr(err)
}

// CommitAll commits destinations made by RootDestination as one group:
// a single syncfs(2) makes all their bytes durable (where Commit makes
// one fsync per file), then each is renamed into place, then each
// distinct directory is fsynced once. It stops at the first failure: that
// destination's partial file is removed, the rest are left for the
// caller's Abort. Other destinations are committed one by one.
func CommitAll(ds []*Destination) error {
	synced := false
	for _, d := range ds {
		if d.at == nil || d.partial == "" {
			continue
		}
		if !synced {
			if err := unix.Syncfs(int(d.f.Fd())); err != nil {
				d.Remove()
				return fmt.Errorf("syncfs: %w", err)
			}
			synced = true
		}
	}
	type dirKey struct{ dev, ino uint64 }
	dirs := make(map[dirKey]int)
	defer func() {
		for _, fd := range dirs {
			unix.Fsync(fd)
			unix.Close(fd)
		}
	}()
	for _, d := range ds {
		if d.partial == "" {
			continue
		}
		if d.at == nil {
			if err := d.Commit(); err != nil {
				return err
			}
			continue
		}
		var flags uint = unix.RENAME_NOREPLACE
		if d.at.replace {
			flags = 0
		}
		dirfd := int(d.at.dir.Fd())
		if err := unix.Renameat2(dirfd, d.partial, dirfd, d.at.base, flags); err != nil {
			d.Remove()
			return fmt.Errorf("rename to %q: %w", d.Path, renameErr(err))
		}
		d.partial = ""
		var st unix.Stat_t
		if unix.Fstat(dirfd, &st) == nil {
			k := dirKey{st.Dev, st.Ino}
			if _, ok := dirs[k]; !ok {
				if fd, err := unix.Openat(dirfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err == nil {
					dirs[k] = fd
				}
			}
		}
		d.f.Close()
		d.at.dir.Close()
	}
	return nil
}
