package fsroot

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
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
func (r *Root) Open(name string) (*os.File, error) {
	clean, err := CleanPath(name)
	if err != nil {
		return nil, err
	}
	how := unix.OpenHow{
		// O_NONBLOCK so that opening a FIFO does not hang; cleared below.
		Flags:   unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOCTTY | unix.O_NONBLOCK,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS,
	}
	var fd int
	for {
		fd, err = unix.Openat2(int(r.dir.Fd()), clean, &how)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("open %q: %w", clean, openErr(err))
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("open %q: %w", clean, err)
	}
	return os.NewFile(uintptr(fd), clean), nil
}

// Stat describes name beneath the root.
func (r *Root) Stat(name string) (fs.FileInfo, error) {
	f, err := r.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Stat()
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

// rootDest is where a RootDestination or a TreeLanding destination lands: its
// parent directory, opened beneath a Root, and the names in it.
type rootDest struct {
	dir     int    // O_PATH descriptor of the parent directory
	own     bool   // dir is closed with the destination (a TreeLanding shares its directories)
	dev     uint64 // dir's file system's device, when known (0 if not)
	base    string // the final name in dir
	replace bool   // Commit may replace an existing base
	anon    bool   // the file was made with O_TMPFILE: it has no name until Commit links it
}

// RootDestination prepares name, beneath the root, to receive a file. Its
// parent directory is resolved once, in the kernel, as Open resolves
// paths; the bytes go to "<base>.partial" in it (opened with O_NOFOLLOW,
// locked and emptied) and Commit renames that over base through the same
// directory descriptor, so nothing a later symlink swap does can move the
// file outside the root. Parent directories are not created: a missing
// one is ErrNotFound. Without overwrite an existing name is ErrExists,
// checked now and again, atomically, by Commit (RENAME_NOREPLACE).
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
	d := &Destination{Path: clean, partial: at.base + ".partial", at: at}
	if d.f, err = at.openPartial(d.partial); err != nil {
		unix.Close(dir)
		return nil, fmt.Errorf("open %q: %w", clean+".partial", err)
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

// check refuses a base that is a directory, or that exists when it may
// not be replaced.
func (a *rootDest) check(clean string) error {
	var st unix.Stat_t
	err := unix.Fstatat(a.dir, a.base, &st, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case err == unix.ENOENT:
		return nil
	case err != nil:
		return fmt.Errorf("stat %q: %w", clean, openErr(err))
	case st.Mode&unix.S_IFMT == unix.S_IFDIR:
		return fmt.Errorf("%w: %q", ErrIsDir, clean)
	case !a.replace:
		return fmt.Errorf("%w: %q", ErrExists, clean)
	}
	return nil
}

// openPartial opens, locks and empties the partial file. It is truncated
// only once locked, so that it cannot empty another receive's file. The
// checks run on the raw descriptor, and the *os.File is made once it is
// blocking again, so that the os package does not try (and fail) to
// register a regular file with the poller.
func (a *rootDest) openPartial(name string) (*os.File, error) {
	fd, err := unix.Openat(a.dir, name,
		unix.O_CREAT|unix.O_RDWR|unix.O_CLOEXEC|unix.O_NOFOLLOW|unix.O_NOCTTY|unix.O_NONBLOCK, 0o644)
	if err != nil {
		return nil, openErr(err)
	}
	err = lockPartialFd(fd, a.dir, name)
	var st unix.Stat_t
	if err == nil {
		err = unix.Fstat(fd, &st)
	}
	if err == nil && st.Mode&unix.S_IFMT != unix.S_IFREG {
		err = ErrNotRegular
	}
	if err == nil {
		err = unix.Ftruncate(fd, 0)
	}
	if err == nil {
		err = unix.SetNonblock(fd, false)
	}
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), name), nil
}

// commitAt is Commit for a RootDestination: fsync, rename within the
// parent directory (refusing to replace unless allowed), fsync the
// directory.
func (d *Destination) commitAt() error {
	if err := d.f.Sync(); err != nil {
		d.Remove()
		return fmt.Errorf("fsync: %w", err)
	}
	if err := d.place(); err != nil {
		return err
	}
	// An O_PATH descriptor cannot be fsynced: open the directory itself.
	if fd, err := unix.Openat(d.at.dir, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err == nil {
		unix.Fsync(fd)
		unix.Close(fd)
	}
	d.release()
	return nil
}

// place gives a durable file its final name: the partial file is renamed
// (an O_TMPFILE linked) over base, refusing to replace unless allowed. On
// failure the file is removed.
func (d *Destination) place() error {
	if d.at.anon {
		if err := linkAnon(d.f, d.at); err != nil {
			d.Remove()
			return fmt.Errorf("link to %q: %w", d.Path, err)
		}
		d.partial = "" // done: a later Abort does nothing
		return nil
	}
	var flags uint = unix.RENAME_NOREPLACE
	if d.at.replace {
		flags = 0
	}
	if err := unix.Renameat2(d.at.dir, d.partial, d.at.dir, d.at.base, flags); err != nil {
		d.Remove()
		return fmt.Errorf("rename to %q: %w", d.Path, renameErr(err))
	}
	d.partial = "" // done: a later Abort does nothing
	return nil
}

// release closes a placed destination's descriptors.
func (d *Destination) release() {
	d.f.Close() // durable and in place: a close error changes nothing
	if d.at.own {
		unix.Close(d.at.dir)
	}
}

// removeAt is Remove for a RootDestination. An O_TMPFILE file has no name
// to remove: closing it frees it.
func (d *Destination) removeAt() {
	if !d.at.anon {
		unix.Unlinkat(d.at.dir, d.partial, 0) // before the lock goes with the descriptor
	}
	d.partial = ""
	d.release()
}

// renameErr maps renameat2's errno to a sentinel where one fits.
func renameErr(err error) error {
	switch err {
	case unix.EEXIST:
		return ErrExists
	case unix.EISDIR, unix.ENOTEMPTY:
		return ErrIsDir
	}
	return err
}
