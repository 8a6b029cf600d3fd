package fsroot

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// DirEntry is one entry of a listing beneath a Root.
type DirEntry struct {
	// Path is slash-separated and relative to the root.
	Path string
	// Mode holds the type and permission bits, as fs.FileMode does.
	Mode fs.FileMode
	// Size is a regular file's size in bytes; 0 for anything else.
	Size    int64
	ModTime time.Time
	// Target is a symlink's target as stored, never resolved.
	Target string
}

// List lists the directory name beneath the root: its entries, or with
// recursive the whole tree below it, in lexical order of path, at most
// limit of them, starting after the path after ("" starts at the
// beginning). Symlinks are listed, never followed: the recursion opens
// each subdirectory from its parent's descriptor with RESOLVE_NO_SYMLINKS,
// so a directory swapped for a symlink mid-walk is not entered. name
// itself is resolved as Open resolves it (a symlink that stays beneath the
// root is followed); a name that is not a directory is ErrNotDir.
//
// List keeps no state between calls. Each call reads, names only, every
// directory on the way to after and onward, and stats only the entries it
// returns (and the directories it may enter). A page therefore costs the
// size of those directories in names, and listing a directory of n
// entries page by page costs O(n²/limit) names read in all; memory holds
// the names of one directory per level being walked, never the whole tree.
// Entries that vanish while they are listed are left out; a subdirectory
// that cannot be read fails the call.
func (r *Root) List(name string, recursive bool, after string, limit int) ([]DirEntry, error) {
	clean, err := CleanPath(name)
	if err != nil {
		return nil, err
	}
	dir, err := r.openListed(clean)
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	prefix := ""
	if clean != "." {
		prefix = clean + "/"
	}
	l := &lister{recursive: recursive, after: after, limit: limit}
	err = l.walk(dir, prefix)
	return l.out, err
}

// openListed opens the directory clean beneath the root for reading. It
// is resolved as an O_PATH descriptor first, so that naming a device or a
// FIFO opens nothing, and reopened as a directory only once it is one.
func (r *Root) openListed(clean string) (*os.File, error) {
	how := unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS,
	}
	fd, err := openat2Retry(int(r.dir.Fd()), clean, &how)
	if err != nil {
		return nil, fmt.Errorf("open %q: %w", clean, openErr(err))
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("stat %q: %w", clean, openErr(err))
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil, fmt.Errorf("%w: %q", ErrNotDir, clean)
	}
	d, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %q: %w", clean, openErr(err))
	}
	return os.NewFile(uintptr(d), clean), nil
}

// openat2Retry is unix.Openat2, retried on EINTR, and on EAGAIN a few
// times: with RESOLVE_BENEATH the kernel answers EAGAIN when a rename or
// a mount anywhere on the system raced with its resolution of "..", and
// asks the caller to try again. Past maxOpenRetries the EAGAIN is
// returned.
func openat2Retry(dirfd int, name string, how *unix.OpenHow) (int, error) {
	for again := 0; ; {
		fd, err := unix.Openat2(dirfd, name, how)
		switch {
		case err == unix.EINTR:
		case err == unix.EAGAIN && again < maxOpenRetries:
			again++
		default:
			return fd, err
		}
	}
}

// maxOpenRetries bounds openat2's EAGAIN retries: a system renaming
// without pause could otherwise keep one open from ever resolving.
const maxOpenRetries = 16

// lister gathers one page of a listing.
type lister struct {
	recursive bool
	after     string
	limit     int
	out       []DirEntry
}

// listItem is a name in a directory (sub false) or, for a recursive listing,
// what lies beneath that name (sub true, key name+"/"). Sorting both by
// key puts a directory's contents where the lexical order of full paths
// puts them: "a", "a-1", "a/b", since '-' sorts before '/'.
type listItem struct {
	key, name string
	sub       bool
}

// walk appends the entries of dir, whose paths start with prefix, that
// sort after l.after, until the page is full. It takes the directory's
// items a bounded batch at a time (items): when a batch runs out before
// the page is full (entries vanished after they were read, or empty
// subdirectories), it reads the directory again for the items after the
// last one it took, so that a short page always means the end.
func (l *lister) walk(dir *os.File, prefix string) error {
	if depth := strings.Count(prefix, "/"); depth > MaxListDepth {
		return fmt.Errorf("%w: %q is more than %d levels deep", ErrTooDeep, strings.TrimSuffix(prefix, "/"), MaxListDepth)
	}
	stats := make(map[string]*unix.Stat_t)
	taken := "" // this level's last key taken; "" before the first
	for {
		items, more, err := l.items(dir, prefix, taken)
		if err != nil {
			return err
		}
		if testHookListed != nil {
			testHookListed()
		}
		for _, it := range items {
			if len(l.out) >= l.limit {
				return nil
			}
			taken = it.key
			if err := l.take(dir, prefix, it, stats); err != nil {
				return err
			}
		}
		if !more || len(l.out) >= l.limit {
			return nil
		}
		if _, err := dir.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("read %q: %w", strings.TrimSuffix(prefix, "/"), err)
		}
	}
}

// testHookListed, when set by a test, runs after each batch of a
// directory's names is read and before they are listed.
var testHookListed func()

// take lists one item: a name's entry, or what lies beneath a directory.
func (l *lister) take(dir *os.File, prefix string, it listItem, stats map[string]*unix.Stat_t) error {
	st, err := listStat(dir, it.name, stats)
	if err != nil {
		return nil // gone since it was read
	}
	p := prefix + it.key
	switch {
	case !it.sub:
		l.out = append(l.out, listEntry(dir, p, it.name, st))
	case st.Mode&unix.S_IFMT == unix.S_IFDIR:
		return l.descend(dir, it.name, p)
	}
	return nil
}

// MaxListDepth is the deepest, in levels below the root, that a
// recursive listing reads: each level holds a directory descriptor open
// while the levels beneath it are read. A deeper tree is ErrTooDeep.
const MaxListDepth = 64

// readChunk is how many names one read of a directory takes.
const readChunk = 1024

// items reads dir's names a chunk at a time and returns, in key order,
// the first 2·limit+2 items of this page's walk: those that sort after
// l.after and whose keys sort after taken (this level's items already
// walked). Each name's own item yields one entry and sorts before the
// name's "/" item, so that many usually fill the page; the rest of the
// directory is never held, whatever its size. more reports whether items
// were left out, for walk to read again.
func (l *lister) items(dir *os.File, prefix, taken string) (items []listItem, more bool, err error) {
	keep := 2*l.limit + 2
	add := func(it listItem) {
		p := prefix + it.key
		if !it.sub && p <= l.after || it.sub && p <= l.after && !strings.HasPrefix(l.after, p) {
			return // wholly at or before the page's start
		}
		if taken != "" && it.key <= taken {
			return // walked already
		}
		items = append(items, it)
	}
	trim := func() {
		slices.SortFunc(items, func(a, b listItem) int { return strings.Compare(a.key, b.key) })
		if len(items) > keep {
			items, more = items[:keep], true
		}
	}
	for {
		names, err := dir.Readdirnames(readChunk)
		for _, n := range names {
			add(listItem{key: n, name: n})
			if l.recursive {
				add(listItem{key: n + "/", name: n, sub: true})
			}
		}
		if len(items) > 2*keep+2*readChunk {
			trim()
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, false, fmt.Errorf("read %q: %w", strings.TrimSuffix(prefix, "/"), openErr(err))
		}
	}
	trim()
	return items, more, nil
}

// descend walks the subdirectory name of dir, whose entries' paths start
// with prefix. It is opened without following any symlink, and not
// entered if it was replaced by something that is not a directory.
func (l *lister) descend(dir *os.File, name, prefix string) error {
	how := unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	}
	fd, err := openat2Retry(int(dir.Fd()), name, &how)
	switch err {
	case nil:
	case unix.ENOENT, unix.ENOTDIR, unix.ELOOP, unix.EXDEV:
		return nil // changed since it was read
	default:
		return fmt.Errorf("open %q: %w", strings.TrimSuffix(prefix, "/"), openErr(err))
	}
	sub := os.NewFile(uintptr(fd), name)
	defer sub.Close()
	return l.walk(sub, prefix)
}

// listStat describes name in dir without following a symlink, remembering
// the answer in seen for the name's other item.
func listStat(dir *os.File, name string, seen map[string]*unix.Stat_t) (*unix.Stat_t, error) {
	if st, ok := seen[name]; ok {
		return st, nil
	}
	st := new(unix.Stat_t)
	if err := unix.Fstatat(int(dir.Fd()), name, st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return nil, err
	}
	seen[name] = st
	return st, nil
}

// listEntry builds the entry for name in dir at path p.
func listEntry(dir *os.File, p, name string, st *unix.Stat_t) DirEntry {
	e := DirEntry{Path: p, Mode: listMode(st.Mode), ModTime: time.Unix(st.Mtim.Unix())}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		e.Size = st.Size
	case unix.S_IFLNK:
		e.Target = listReadlink(dir, name, st.Size)
	}
	return e
}

// listReadlink reads the target of the symlink name in dir; "" if it
// vanished.
func listReadlink(dir *os.File, name string, size int64) string {
	buf := make([]byte, max(size+1, 256))
	for {
		n, err := unix.Readlinkat(int(dir.Fd()), name, buf)
		if err != nil {
			return ""
		}
		if n < len(buf) {
			return string(buf[:n])
		}
		buf = make([]byte, 2*len(buf))
	}
}

// listMode converts a stat mode to fs.FileMode, as os.Lstat would.
func listMode(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	switch m & unix.S_IFMT {
	case unix.S_IFDIR:
		mode |= fs.ModeDir
	case unix.S_IFLNK:
		mode |= fs.ModeSymlink
	case unix.S_IFIFO:
		mode |= fs.ModeNamedPipe
	case unix.S_IFSOCK:
		mode |= fs.ModeSocket
	case unix.S_IFBLK:
		mode |= fs.ModeDevice
	case unix.S_IFCHR:
		mode |= fs.ModeDevice | fs.ModeCharDevice
	}
	if m&unix.S_ISUID != 0 {
		mode |= fs.ModeSetuid
	}
	if m&unix.S_ISGID != 0 {
		mode |= fs.ModeSetgid
	}
	if m&unix.S_ISVTX != 0 {
		mode |= fs.ModeSticky
	}
	return mode
}
