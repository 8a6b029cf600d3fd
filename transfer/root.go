package transfer

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
