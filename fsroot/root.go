package fsroot

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// maxPathLen bounds a requested path (PATH_MAX on Linux).
const maxPathLen = 4096

// Root is a directory that files are opened beneath. Resolution happens in
// the kernel with openat2(RESOLVE_BENEATH|RESOLVE_NO_MAGICLINKS): "..",
// absolute symlinks and magic links such as /proc/self/root cannot leave
// it, even when the tree changes between checks. A hardlink is no link to
// resolve: a file hardlinked into the tree is beneath the root and is
// served, so operators must not hardlink private files into it.
type Root struct {
	dir *os.File
}

// OpenRoot opens dir as a Root.
func OpenRoot(dir string) (*Root, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open root %s: %w", dir, err)
	}
	return &Root{dir: os.NewFile(uintptr(fd), dir)}, nil
}

// Close releases the root's descriptor.
func (r *Root) Close() error { return r.dir.Close() }

// CleanPath checks a client-supplied path lexically and returns it
// cleaned. It refuses the empty path, absolute paths, ".." that climbs
// out, NUL bytes, invalid UTF-8 and over-long names with ErrInvalidPath.
// "." names the root itself.
func CleanPath(name string) (string, error) {
	switch {
	case name == "":
		return "", fmt.Errorf("%w: empty path", ErrInvalidPath)
	case len(name) > maxPathLen:
		return "", fmt.Errorf("%w: longer than %d bytes", ErrInvalidPath, maxPathLen)
	case strings.IndexByte(name, 0) >= 0:
		return "", fmt.Errorf("%w: contains a NUL byte", ErrInvalidPath)
	case !utf8.ValidString(name):
		return "", fmt.Errorf("%w: not valid UTF-8", ErrInvalidPath)
	case strings.HasPrefix(name, "/"):
		return "", fmt.Errorf("%w: %q is absolute; paths are relative to the served root", ErrInvalidPath, name)
	}
	clean := path.Clean(name)
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return "", fmt.Errorf("%w: %q climbs out of the served root", ErrInvalidPath, name)
	}
	return clean, nil
}

// Open opens name beneath the root for reading. Errors wrap the package's
// sentinels and name only the relative path, never the host path.
//
// The type is checked first, on an O_PATH descriptor, which opens nothing
// for I/O: a FIFO, socket or device node is ErrNotRegular without ever
// being opened (opening a FIFO for reading releases a writer blocked on
// it; opening a device node runs its driver). A regular file or a
// directory is then opened for reading through the same resolution, and
// checked again, so that a name swapped for a FIFO in between is refused
// too (O_NONBLOCK keeps that open from hanging).
func (r *Root) Open(name string) (*os.File, error) {
	clean, err := CleanPath(name)
	if err != nil {
		return nil, err
	}
	pfd, err := r.openPath(clean)
	if err != nil {
		return nil, fmt.Errorf("open %q: %w", clean, err)
	}
	defer unix.Close(pfd)
	var st unix.Stat_t
	if err := unix.Fstat(pfd, &st); err != nil {
		return nil, fmt.Errorf("open %q: %w", clean, openErr(err))
	}
	if !openable(st.Mode) {
		return nil, fmt.Errorf("%w: %q", ErrNotRegular, clean)
	}
	fd, same, err := r.reopen(pfd, clean)
	if err != nil {
		return nil, fmt.Errorf("open %q: %w", clean, openErr(err))
	}
	if same { // the inode whose type was checked: nothing else to check
		return os.NewFile(uintptr(fd), clean), nil
	}
	if err := unix.Fstat(fd, &st); err != nil || !openable(st.Mode) {
		unix.Close(fd)
		return nil, fmt.Errorf("%w: %q", ErrNotRegular, clean)
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("open %q: %w", clean, err)
	}
	return os.NewFile(uintptr(fd), clean), nil
}

// openPath opens clean beneath the root as an O_PATH descriptor, which
// opens nothing for I/O.
func (r *Root) openPath(clean string) (int, error) {
	fd, err := openat2Retry(int(r.dir.Fd()), clean, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return -1, openErr(err)
	}
	return fd, nil
}

// reopen opens for reading the very file the O_PATH descriptor pfd
// refers to, through /proc/self/fd, so that no name is resolved again
// (a name swapped for a device node in between cannot be opened): same
// is then true, and the file is the inode whose type Open checked, so it
// is opened blocking and not checked again. Where /proc is not mounted
// it resolves clean again, without blocking (a FIFO put there since
// must not hold the call), and Open checks what it got.
func (r *Root) reopen(pfd int, clean string) (fd int, same bool, err error) {
	const flags = unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOCTTY
	fd, err = unix.Open("/proc/self/fd/"+strconv.Itoa(pfd), flags, 0)
	if err == nil || err != unix.ENOENT {
		return fd, err == nil, err
	}
	fd, err = openat2Retry(int(r.dir.Fd()), clean, &unix.OpenHow{
		Flags: flags | unix.O_NONBLOCK, Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS,
	})
	return fd, false, err
}

// openable reports whether a file of mode may be opened for reading: a
// regular file or a directory.
func openable(mode uint32) bool {
	t := mode & unix.S_IFMT
	return t == unix.S_IFREG || t == unix.S_IFDIR
}

// Stat describes name beneath the root, opening it for no I/O. Like
// Open, it refuses a FIFO, socket or device node with ErrNotRegular.
func (r *Root) Stat(name string) (fs.FileInfo, error) {
	clean, err := CleanPath(name)
	if err != nil {
		return nil, err
	}
	fd, err := r.openPath(clean)
	if err != nil {
		return nil, fmt.Errorf("open %q: %w", clean, err)
	}
	f := os.NewFile(uintptr(fd), clean)
	defer f.Close()
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() && !fi.IsDir() {
		return nil, fmt.Errorf("%w: %q", ErrNotRegular, clean)
	}
	return fi, err
}

// openErr maps openat2's errno to a sentinel.
func openErr(err error) error {
	var e unix.Errno
	if !errors.As(err, &e) {
		return err
	}
	switch e {
	case unix.EXDEV, unix.ELOOP:
		return ErrEscapes
	case unix.ENOENT, unix.ENOTDIR:
		return ErrNotFound
	case unix.EACCES, unix.EPERM:
		return ErrPermission
	case unix.ENAMETOOLONG:
		return ErrInvalidPath
	case unix.ENXIO, unix.ENODEV:
		// A socket, or a device node with no driver behind it.
		return ErrNotRegular
	}
	return err
}

// RootDestination prepares name, beneath the root, to receive a file. Its
// parent directory is resolved once, in the kernel, as Open resolves
// paths; the bytes go to a file of the destination's own in it, unnamed
// (O_TMPFILE) or, where the file system has none, under a random name
// created O_EXCL|O_NOFOLLOW, never "<base>.partial", which may be
// someone else's; Commit links or renames it to base through the same
// directory descriptor, so nothing a later symlink swap does can move the
// file outside the root. Parent directories are not created: a missing
// one is ErrNotFound. Without overwrite an existing name is ErrExists,
// checked now and again, atomically, by Commit.
func (r *Root) RootDestination(name string, overwrite bool) (*Destination, error) {
	clean, err := CleanPath(name)
	if err != nil {
		return nil, err
	}
	if clean == "." {
		return nil, fmt.Errorf("%w: the root itself cannot be a destination", ErrInvalidPath)
	}
	dir, err := r.openDir(path.Dir(clean))
	if err != nil {
		return nil, fmt.Errorf("open %q: %w", path.Dir(clean), err)
	}
	at := &rootDest{dir: dir, own: true, base: path.Base(clean), replace: overwrite}
	if err := at.check(clean); err != nil {
		unix.Close(dir)
		return nil, err
	}
	d := &Destination{Path: clean, at: at}
	if d.f, d.partial, err = at.createAside(clean, nil); err != nil {
		unix.Close(dir)
		return nil, err
	}
	return d, nil
}

// openDir opens the directory name beneath the root as an O_PATH
// descriptor.
func (r *Root) openDir(name string) (int, error) {
	how := unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS,
	}
	fd, err := openat2Retry(int(r.dir.Fd()), name, &how)
	if err != nil {
		return -1, openErr(err)
	}
	return fd, nil
}

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

// Mkdir creates the directory name beneath the root with perm less
// LandMask (and the owner's rwx, so that it can be filled; SetDirMeta
// sets the final mode).
// An existing directory is ErrExists unless existing is true (it then
// gets the owner's rwx if it lacked any); anything else in its place, a
// symlink included, is ErrExists.
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
	err = unix.Mkdirat(int(dir.Fd()), base, uint32(perm.Perm()&^LandMask|0o700))
	if err == unix.EEXIST && existing {
		var st unix.Stat_t
		if unix.Fstatat(int(dir.Fd()), base, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
			return ownerRWX(int(dir.Fd()), base, clean, st.Mode)
		}
	}
	if err != nil {
		return fmt.Errorf("mkdir %q: %w", clean, mkErr(err))
	}
	return nil
}

// ownerRWX gives the existing directory base in dirfd (name, in errors;
// mode, its mode) the owner's rwx if it lacks any, as a new one has them
// until SetDirMeta sets its final mode: a directory an earlier copy left
// read-only (0555) can be filled again. The directory is opened O_PATH
// through no symlink and changed through /proc/self/fd, so a name
// swapped for a link meanwhile changes nothing outside.
func ownerRWX(dirfd int, base, name string, mode uint32) error {
	if mode&0o700 == 0o700 {
		return nil
	}
	fd, err := unix.Openat(dirfd, base, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %q: %w", name, openErr(err))
	}
	defer unix.Close(fd)
	return chmodRWX(fd, name, mode)
}

// chmodRWX adds the owner's rwx to mode on the file fd refers to (an
// O_PATH descriptor will do), through /proc/self/fd.
func chmodRWX(fd int, name string, mode uint32) error {
	if err := unix.Chmod("/proc/self/fd/"+strconv.Itoa(fd), mode&0o7777|0o700); err != nil {
		return fmt.Errorf("chmod %q: %w", name, openErr(err))
	}
	return nil
}

// MakeWritable gives the root's own directory the owner's rwx if it lacks
// any (see Mkdir), so that a tree can land in a destination an earlier
// copy left read-only.
func (r *Root) MakeWritable() error {
	var st unix.Stat_t
	if err := unix.Fstat(int(r.dir.Fd()), &st); err != nil {
		return fmt.Errorf("stat: %w", openErr(err))
	}
	if st.Mode&0o700 == 0o700 {
		return nil
	}
	return chmodRWX(int(r.dir.Fd()), ".", st.Mode)
}

// Symlink creates name beneath the root as a symlink to target. The
// caller judges the target (the link is never followed here). An
// existing name is ErrExists unless replace is true, when a non-directory
// in its place is replaced atomically: the link is made under a random
// temporary name (never one it did not create: a user's file or another
// receiver's link may hold any fixed one) and renamed over it.
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
		err = replaceWith(dfd, base, func(tmp string) error { return unix.Symlinkat(target, dfd, tmp) })
	}
	if err != nil {
		return fmt.Errorf("symlink %q: %w", clean, mkErr(err))
	}
	return nil
}

// tempName is a name beside base that no other receiver uses: base, 16
// random hex digits, ".partial".
func tempName(base string) string {
	return fmt.Sprintf("%s.%016x.partial", base, rand.Uint64())
}

// replaceWith has create make an entry under a fresh temporary name in dir
// (retrying on EEXIST, so that it never takes over a name it did not
// create), then renames it over base. rename(2) refuses to put a
// non-directory over a directory (EISDIR). On failure only the temporary
// name is removed.
func replaceWith(dir int, base string, create func(tmp string) error) error {
	err := error(unix.EEXIST)
	for range 4 {
		tmp := tempName(base)
		if err = create(tmp); err == unix.EEXIST {
			continue
		}
		if err == nil {
			if err = unix.Renameat(dir, tmp, dir, base); err != nil {
				unix.Unlinkat(dir, tmp, 0)
			}
		}
		break
	}
	return err
}

// SetDirMeta sets the mode, less LandMask and any setuid, setgid or
// sticky bit, and the modification time of the directory name beneath
// the root (the access time too, to mtime).
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
