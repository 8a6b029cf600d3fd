package fsroot

import (
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// LandMask is what a landed file or directory's mode loses (SetMeta,
// SetDirMeta): write permission for group and others, as the usual
// umask 022 takes it. The setuid, setgid and sticky bits are never
// applied at all (only the permission bits are). A mode comes from the
// sender, who may be hostile: a world-writable directory or a setuid
// file is not something a copy should make. It is a fixed mask, not the
// process umask, so that what lands does not depend on how the receiver
// was started.
const LandMask fs.FileMode = 0o022

// setMeta gives the open file fd (name, in errors) its mode, without the
// bits LandMask and fs.FileMode.Perm drop, and modification time.
func setMeta(fd int, name string, mode fs.FileMode, mtime time.Time) error {
	if err := unix.Fchmod(fd, uint32(mode.Perm()&^LandMask)); err != nil {
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

// syncGroup makes the bytes of every uncommitted root or tree
// destination in ds durable with one syncfs(2) per file system they are
// on (a tree merged into an existing one may cross a mount point), made
// through syncFd(dev, d) (for a TreeLanding, its descriptor for that
// file system; see TreeLanding). On failure that destination is removed
// and the rest are left to the caller.
func syncGroup(ds []*Destination, syncFd func(dev uint64, d *Destination) (int, error), syncfs func(int) error) error {
	var synced []uint64
	for _, d := range ds {
		if d.at == nil || d.partial == "" {
			continue
		}
		dev := d.at.dev
		if dev == 0 {
			var st unix.Stat_t
			if unix.Fstat(int(d.f.Fd()), &st) == nil {
				dev = st.Dev
			}
		}
		if dev != 0 && slices.Contains(synced, dev) {
			continue
		}
		fd, err := syncFd(dev, d)
		if err == nil {
			err = syncfs(fd)
		}
		if err != nil {
			d.Remove()
			return fmt.Errorf("syncfs: %w", err)
		}
		synced = append(synced, dev)
	}
	return nil
}

// TreeLanding lands the files of one received tree beneath a Root. Per
// file it does what RootDestination and Commit do, with fewer steps:
//
//   - Each directory a file lands in is resolved once, beneath the root
//     with no symlink on the way (RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS),
//     and its O_PATH descriptor is kept for the tree's later files (for
//     the 256 directories used last: a tree may have more directories
//     than the process may open files). A received tree never renames or
//     replaces a directory, so the sender cannot move one after it was
//     resolved; a local process with write access to the destination
//     could, as it could move landed files.
//   - A file's bytes go to an unnamed file, O_TMPFILE in its directory:
//     no other receiver can open, lock, truncate or rename it, so it
//     needs no lock, no check that it is still the file at its name and
//     no truncation, and a crash or a failure leaves nothing behind (the
//     kernel frees an unlinked inode; but see CommitAll with overwrite).
//     Its mode and times are set on the descriptor.
//   - CommitAll makes a group's bytes durable with one syncfs(2) (one per
//     file system, should the tree cross a mount point, each through a
//     descriptor opened before the first file on it: see syncFds), then
//     links each file to its name with linkat(2), which never replaces an
//     existing name: without overwrite that is ErrExists; with it the
//     file is linked under a unique temporary name and renamed over the
//     old one (never over a directory), so a crash between the two leaves
//     a complete "<name>.<16 hex digits>.partial". A file appears at its
//     name only once all its bytes are durable.
//   - Sync ends the tree with one more syncfs(2) per file system, which
//     makes the names (and the directories' modes and times) durable: one
//     call instead of an fsync per directory and group.
//
// Keeping the named partial file and dropping only its lock in a tree this
// receiver created would not be safe: a new tree is not private to its
// receiver, since an overwriting tree pull or a single-file pull may name
// the same paths, and their take-over of a partial file an earlier receive
// left (open, flock, truncate) would empty an unlocked one under us. An
// unnamed file cannot be taken over.
//
// On a file system without O_TMPFILE, files go to a
// "<name>.<16 hex digits>.partial" created with O_EXCL, a name of their
// own (neither the tree's "<name>.partial" nor a user's), renamed into
// place at commit. A TreeLanding is safe for use by concurrent goroutines.
type TreeLanding struct {
	root      *Root
	overwrite bool
	noTmpfile atomic.Bool // O_TMPFILE is not supported here: use partial files

	mu   sync.Mutex
	dirs map[string]*treeDir // directories files landed in, at most maxDirs
	use  uint64              // a clock for dirs' last use
	// maxDirs bounds dirs: a tree may hold more directories than the
	// process may open files. The sender walks in lexical order, so the
	// directories used last are the ones used next.
	maxDirs int
	// syncFds holds, per file system, a directory descriptor opened
	// before the first file on it was created, that syncfs(2) goes
	// through. syncfs reports a writeback error only if it happened
	// after the descriptor it is given was opened (the file's errseq
	// sample), so syncing through a group's first file could miss an
	// earlier file's failed writeback and link that file without its
	// data. O_PATH descriptors cannot be synced, hence a second one.
	syncFds map[uint64]int
	syncfs  func(fd int) error // unix.Syncfs; tests count the calls
}

// treeDir is a directory a TreeLanding keeps open.
type treeDir struct {
	fd   int    // O_PATH descriptor
	dev  uint64 // its file system's device
	used uint64 // TreeLanding.use when last used
}

// maxTreeDirs is how many directories a TreeLanding keeps open.
const maxTreeDirs = 256

// TreeLanding prepares to land a received tree's files beneath the root. Without
// overwrite, no file may replace an existing name. Close releases it.
func (r *Root) TreeLanding(overwrite bool) *TreeLanding {
	return &TreeLanding{root: r, overwrite: overwrite, dirs: make(map[string]*treeDir),
		maxDirs: maxTreeDirs, syncFds: make(map[uint64]int), syncfs: unix.Syncfs}
}

// Close releases the directories' descriptors. Destinations must be
// committed or aborted first.
func (t *TreeLanding) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for name, d := range t.dirs {
		unix.Close(d.fd)
		delete(t.dirs, name)
	}
	for dev, fd := range t.syncFds {
		unix.Close(fd)
		delete(t.syncFds, dev)
	}
	return nil
}

// dir returns a descriptor of the directory name (a cleaned path) beneath
// the root, of the caller's own (close it), with its device. The
// directory is resolved once while it stays among the recently used
// ones, and a file system's sync descriptor is opened the first time it
// is seen, before any file on it is created.
func (t *TreeLanding) dir(name string) (int, uint64, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.use++
	d, ok := t.dirs[name]
	if !ok {
		how := &unix.OpenHow{
			Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
		}
		fd, err := openat2Retry(int(t.root.dir.Fd()), name, how)
		if err != nil {
			return -1, 0, fmt.Errorf("open %q: %w", name, openErr(err))
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return -1, 0, fmt.Errorf("stat %q: %w", name, err)
		}
		if err := t.syncFdOf(st.Dev, fd); err != nil {
			unix.Close(fd)
			return -1, 0, fmt.Errorf("open %q: %w", name, err)
		}
		if len(t.dirs) >= t.maxDirs {
			t.evict()
		}
		d = &treeDir{fd: fd, dev: st.Dev}
		t.dirs[name] = d
	}
	d.used = t.use
	// A destination gets a duplicate, closed with it, so that an evicted
	// directory can be closed while its files are still being received.
	fd, err := unix.FcntlInt(uintptr(d.fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return -1, 0, fmt.Errorf("open %q: %w", name, err)
	}
	return fd, d.dev, nil
}

// evict closes the least recently used directory. t.mu is held.
func (t *TreeLanding) evict() {
	var old string
	var oldest *treeDir
	for name, d := range t.dirs {
		if oldest == nil || d.used < oldest.used {
			old, oldest = name, d
		}
	}
	if oldest != nil {
		unix.Close(oldest.fd)
		delete(t.dirs, old)
	}
}

// syncFdOf opens the sync descriptor of the file system dev through the
// directory dir, unless it is open already. t.mu is held.
func (t *TreeLanding) syncFdOf(dev uint64, dir int) error {
	if _, ok := t.syncFds[dev]; ok {
		return nil
	}
	fd, err := unix.Openat(dir, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return openErr(err)
	}
	t.syncFds[dev] = fd
	return nil
}

// syncFd is the descriptor syncGroup syncs the file system dev through.
func (t *TreeLanding) syncFd(dev uint64, _ *Destination) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fd, ok := t.syncFds[dev]
	if !ok {
		// Every destination's directory opened one first.
		return -1, fmt.Errorf("no sync descriptor for device %d", dev)
	}
	return fd, nil
}

// tmpfileUnsupported reports whether openat(O_TMPFILE) failed because the
// file system (EOPNOTSUPP) or the kernel (EISDIR: one before Linux 3.11
// sees a plain O_DIRECTORY open for writing) has no O_TMPFILE.
func tmpfileUnsupported(err error) bool {
	return err == unix.EOPNOTSUPP || err == unix.EISDIR
}

// Destination prepares name, a clean path below the tree whose directory
// exists, to receive a file. With overwrite, a directory at name is
// ErrIsDir at once; without, an existing name is ErrExists at commit.
func (t *TreeLanding) Destination(name string) (*Destination, error) {
	clean, err := cleanEntry(name)
	if err != nil {
		return nil, err
	}
	dir, base := path.Split(clean)
	dir = strings.TrimSuffix(dir, "/")
	if dir == "" {
		dir = "."
	}
	dfd, dev, err := t.dir(dir)
	if err != nil {
		return nil, err
	}
	at := &rootDest{dir: dfd, own: true, dev: dev, base: base, replace: t.overwrite}
	if t.overwrite {
		if err := at.check(clean); err != nil {
			unix.Close(dfd)
			return nil, err
		}
	}
	d := &Destination{Path: clean, at: at}
	if d.f, d.partial, err = at.createAside(clean, &t.noTmpfile); err != nil {
		unix.Close(dfd)
		return nil, err
	}
	return d, nil
}

// createAside makes the file a destination's bytes go to before Commit
// names it: unnamed, O_TMPFILE in the directory, so that no other
// receiver can open, lock, truncate or rename it and a failure leaves
// nothing behind; or, on a file system without O_TMPFILE (noTmpfile, if
// set, remembers that), under a name of its own, "<base>.<16 hex
// digits>.partial" created O_EXCL|O_NOFOLLOW, which no other receiver
// knows and which cannot be a user's "<base>.partial". partial is that
// name, or "<base>.partial" for an unnamed file (for messages only).
// Without replace, an existing base is ErrExists.
func (at *rootDest) createAside(clean string, noTmpfile *atomic.Bool) (f *os.File, partial string, err error) {
	if noTmpfile == nil || !noTmpfile.Load() {
		fd, err := unix.Openat(at.dir, ".", unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o644)
		switch {
		case err == nil:
			at.anon = true
			return os.NewFile(uintptr(fd), clean), at.base + ".partial", nil
		case tmpfileUnsupported(err):
			if noTmpfile != nil {
				noTmpfile.Store(true)
			}
		default:
			return nil, "", fmt.Errorf("create in %q: %w", path.Dir(clean), openErr(err))
		}
	}
	if !at.replace {
		if err := at.check(clean); err != nil {
			return nil, "", err
		}
	}
	for range 4 {
		partial = tempName(at.base)
		var fd int
		fd, err = unix.Openat(at.dir, partial, unix.O_CREAT|unix.O_EXCL|unix.O_RDWR|unix.O_CLOEXEC|unix.O_NOFOLLOW|unix.O_NOCTTY, 0o644)
		if err == nil {
			return os.NewFile(uintptr(fd), clean), partial, nil
		}
		if err != unix.EEXIST {
			break
		}
	}
	return nil, "", fmt.Errorf("create in %q: %w", path.Dir(clean), openErr(err))
}

// CommitAll lands a group of the tree's destinations: one syncfs(2) for
// their bytes (per file system), then each is linked (or renamed) to its name. Names are
// made durable by Sync. It stops at the first failure: that destination
// is removed, the rest are left for the caller's Abort.
func (t *TreeLanding) CommitAll(ds []*Destination) error {
	if err := syncGroup(ds, t.syncFd, t.syncfs); err != nil {
		return err
	}
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
		if err := d.place(); err != nil {
			return err
		}
		d.release()
	}
	return nil
}

// Sync makes everything landed so far durable, names and directory
// metadata included, with one syncfs(2) per file system the tree is on.
func (t *TreeLanding) Sync() error {
	t.mu.Lock()
	var st unix.Stat_t
	err := unix.Fstat(int(t.root.dir.Fd()), &st)
	if err == nil {
		err = t.syncFdOf(st.Dev, int(t.root.dir.Fd()))
	}
	fds := slices.Collect(maps.Values(t.syncFds))
	t.mu.Unlock()
	if err != nil {
		return fmt.Errorf("open the tree: %w", err)
	}
	for _, fd := range fds {
		if err := t.syncfs(fd); err != nil {
			return fmt.Errorf("syncfs: %w", err)
		}
	}
	return nil
}

// linkFallback is set once linkat(AT_EMPTY_PATH) was refused (it needs
// CAP_DAC_READ_SEARCH before Linux 6.10): links then go through
// /proc/self/fd.
var linkFallback atomic.Bool

// linkAnon gives the O_TMPFILE file f its name at.base in at.dir, never
// replacing an existing name unless at.replace, and never a directory.
func linkAnon(f *os.File, at *rootDest) error {
	fd := int(f.Fd())
	err := linkFd(fd, at.dir, at.base)
	if err == unix.EEXIST && at.replace {
		// linkat cannot replace: link under a name no other receiver
		// uses, then rename that over the old file.
		err = replaceWith(at.dir, at.base, func(tmp string) error { return linkFd(fd, at.dir, tmp) })
	}
	if err == unix.EEXIST {
		var st unix.Stat_t
		if unix.Fstatat(at.dir, at.base, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
			return ErrIsDir
		}
	}
	return renameErr(err)
}

// linkFd links the open file fd as name in dir.
func linkFd(fd, dir int, name string) error {
	if !linkFallback.Load() {
		err := unix.Linkat(fd, "", dir, name, unix.AT_EMPTY_PATH)
		if err != unix.ENOENT && err != unix.EPERM {
			return err
		}
		linkFallback.Store(true)
	}
	return unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(fd), dir, name, unix.AT_SYMLINK_FOLLOW)
}
