package fsroot

import (
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Destination is where received bytes land. A file destination is written
// as "<path>.partial" and renamed over path only after every byte arrived
// and was fsynced (Commit); Abort removes the partial file, unless the
// destination resumes an earlier receive (ResumeDestination). "-" is
// standard output and "/dev/null" discards, both for measuring.
//
// A file destination holds an exclusive flock(2) on its partial file until
// Commit or Abort, so two receives into one path cannot interleave: the
// second fails to open.
type Destination struct {
	Path    string
	f       *os.File  // nil when discarding
	partial string    // "" for standard output and discard
	keep    bool      // Abort keeps a non-empty partial file
	resumed int64     // bytes the partial file held when opened
	at      *rootDest // non-nil for RootDestination: names resolve beneath it
	part    *span     // non-nil for a Part: where its bytes go in the file
	journal bool      // a parts journal may exist beside the partial file

	// Tee, when set on a destination that keeps no file to read back
	// (standard output or a discard), is handed every byte received, so
	// that a checksum can cover them. A file destination ignores it: its
	// bytes are read back from the file.
	Tee hash.Hash
}

// CreateDestination prepares path to receive a file, emptying a partial
// file an earlier receive left.
func CreateDestination(path string) (*Destination, error) {
	switch path {
	case "-":
		return &Destination{Path: path, f: os.Stdout}, nil
	case os.DevNull:
		return &Destination{Path: path}, nil
	}
	d, err := openPartial(path)
	if err != nil {
		return nil, err
	}
	if err := d.f.Truncate(0); err != nil {
		d.Abort()
		return nil, err
	}
	// A journal an earlier receive kept describes the bytes just
	// emptied: left there, it would make a later resume trust holes.
	if err := removeJournal(path); err != nil {
		d.Abort()
		return nil, err
	}
	return d, nil
}

// ResumeDestination prepares path to receive the rest of a file: it opens
// the "<path>.partial" an earlier receive kept (or creates it) and appends
// to it; Resumed says how many bytes it already held. Abort keeps the
// partial file for the next attempt, unless it is empty. Nothing checks
// that those bytes came from the file being received: the caller judges
// that before it asks for the rest.
func ResumeDestination(path string) (*Destination, error) {
	if path == "-" || path == os.DevNull {
		return nil, fmt.Errorf("cannot resume into %s: resuming needs a file", path)
	}
	d, err := openPartial(path)
	if err != nil {
		return nil, err
	}
	fi, err := d.f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%s is not a regular file", d.partial)
	}
	if err == nil {
		_, err = d.f.Seek(fi.Size(), io.SeekStart)
	}
	if err != nil {
		d.Abort()
		return nil, err
	}
	d.keep, d.resumed, d.journal = true, fi.Size(), true
	return d, nil
}

// openPartial opens path's partial file for writing (and for reading
// back, to verify a checksum), creating it, and locks it.
func openPartial(path string) (*Destination, error) {
	partial := path + ".partial"
	// Not O_APPEND: splice(2) refuses to write to such a file. Writes go
	// to the file position, which ResumeDestination puts at the end.
	// O_NOFOLLOW: a symlink planted at the name must not make the
	// receiver create or write the file it points to.
	f, err := os.OpenFile(partial, os.O_RDWR|os.O_CREATE|syscall.O_CLOEXEC|syscall.O_NOFOLLOW|syscall.O_NOCTTY, 0o644)
	if errors.Is(err, syscall.ELOOP) {
		return nil, fmt.Errorf("%s is a symlink; not following it", partial)
	}
	if err != nil {
		return nil, err
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s: %w", partial, ErrNotRegular)
	}
	if err := lockPartial(f, unix.AT_FDCWD, partial); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", partial, err)
	}
	return &Destination{Path: path, f: f, partial: partial}, nil
}

// lockPartial takes the exclusive lock on an open partial file and checks
// that the file is still the one at name (in directory dirfd): another
// receive may have renamed or removed the file between our open and our
// lock, releasing its lock on an inode that is no longer the partial file.
func lockPartial(f *os.File, dirfd int, name string) error {
	return lockPartialFd(int(f.Fd()), dirfd, name)
}

// lockPartialFd is lockPartial on a raw descriptor.
func lockPartialFd(fd, dirfd int, name string) error {
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return fmt.Errorf("another receive is writing it (flock: %w)", err)
	}
	var held, now unix.Stat_t
	if unix.Fstat(fd, &held) != nil || unix.Fstatat(dirfd, name, &now, unix.AT_SYMLINK_NOFOLLOW) != nil ||
		held.Dev != now.Dev || held.Ino != now.Ino {
		return errors.New("another receive is writing it (the file was replaced while we opened it)")
	}
	return nil
}

// Discards reports whether bytes are thrown away.
func (d *Destination) Discards() bool { return d.f == nil }

// File is the open file the bytes go to: the partial (or unnamed) file,
// os.Stdout for "-", nil when discarding. Writes go to the file position;
// a resumed destination's starts at Resumed.
func (d *Destination) File() *os.File { return d.f }

// KeepsFile reports whether d lands a file that can be read back (it is
// neither standard output nor a discard).
func (d *Destination) KeepsFile() bool { return d.partial != "" && d.f != nil }

// Name names what the bytes are being written to, for errors: the
// partial file, or Path.
func (d *Destination) Name() string {
	if d.partial != "" {
		return d.partial
	}
	return d.Path
}

// Resumed reports how many bytes the partial file held when
// ResumeDestination opened it: where this receive continues.
func (d *Destination) Resumed() int64 { return d.resumed }

// Commit makes a received file durable and visible: fsync, rename over
// the final path, fsync the directory. The lock is held until the rename
// is done. On failure the partial file is removed, even when resuming:
// Commit runs only once every byte arrived, so what failed is the file
// system, and its state is not worth resuming from.
func (d *Destination) Commit() error {
	if d.partial == "" || d.part != nil {
		return nil
	}
	if d.at != nil {
		return d.commitAt()
	}
	if err := d.f.Sync(); err != nil {
		d.Remove()
		return fmt.Errorf("fsync: %w", err)
	}
	// The journal goes before the rename: a crash between the two leaves
	// a whole partial file and no journal, which a resume takes as held.
	if err := d.removeJournal(); err != nil {
		d.Remove()
		return err
	}
	if err := os.Rename(d.partial, d.Path); err != nil {
		d.Remove()
		return err
	}
	d.partial = "" // done: a later Abort does nothing
	syncDir(filepath.Dir(d.Path))
	d.f.Close() // fsynced and in place: a close error changes nothing
	return nil
}

// Abort gives up on the receive. It removes the partial file, or, for a
// resumed destination, fsyncs and keeps it if it holds any bytes. It is
// safe after Commit and after Remove (it does nothing). A Part's
// Abort does nothing: the destination it is a part of decides.
func (d *Destination) Abort() {
	if d.partial == "" || d.part != nil {
		return
	}
	if !d.keep {
		d.Remove()
		return
	}
	if fi, err := d.f.Stat(); err == nil && fi.Size() == 0 {
		d.Remove() // nothing to resume from
		return
	}
	d.f.Sync()
	d.f.Close()
	d.partial = ""
}

// Remove discards the partial file even when resuming: for bytes that
// cannot be trusted, such as those of a source that changed while it was
// sent. It is safe at any time, more than once. A Part's Remove does
// nothing: the destination it is a part of decides.
func (d *Destination) Remove() {
	if d.partial == "" || d.part != nil {
		return
	}
	if d.at != nil {
		d.removeAt()
		return
	}
	os.Remove(d.partial) // before the lock goes with the descriptor
	// The journal after the partial file: a crash between the two leaves
	// a journal beside an empty new partial file, which ReadJournal
	// recognises as stale.
	d.removeJournal()
	d.f.Close()
	d.partial = ""
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

// SetMeta sets a received file's mode, less LandMask and any setuid,
// setgid or sticky bit, and its modification time before it is committed
// (the rename keeps both). Call it after the last byte.
func (d *Destination) SetMeta(mode fs.FileMode, mtime time.Time) error {
	if d.f == nil || d.partial == "" || d.part != nil {
		return nil
	}
	return setMeta(int(d.f.Fd()), d.Path, mode, mtime)
}
