package fsroot

import (
	"fmt"
	"os"
	"path"
	"slices"

	"golang.org/x/sys/unix"
)

// Tree is a directory beneath a Root, opened to be copied whole: Walk
// lists everything below it and Open opens the regular files the walk
// found. Both resolve names beneath the tree's own descriptor with
// RESOLVE_NO_SYMLINKS, so no symlink is ever followed, not even one
// swapped in for a directory while the tree is copied.
type Tree struct {
	dir *os.File
	// Path is the tree's cleaned path relative to the root.
	Path string
}

// OpenTree opens the directory name beneath the root as a Tree. name is
// resolved as Open resolves it (a symlink that stays beneath the root is
// followed); one that is not a directory is ErrNotDir.
func (r *Root) OpenTree(name string) (*Tree, error) {
	if name == "" {
		name = "."
	}
	clean, err := CleanPath(name)
	if err != nil {
		return nil, err
	}
	dir, err := r.openListed(clean)
	if err != nil {
		return nil, err
	}
	return &Tree{dir: dir, Path: clean}, nil
}

// Close releases the tree's descriptor.
func (t *Tree) Close() error { return t.dir.Close() }

// Info describes the tree's top directory.
func (t *Tree) Info() (DirEntry, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(t.dir.Fd()), &st); err != nil {
		return DirEntry{}, fmt.Errorf("stat %q: %w", t.Path, openErr(err))
	}
	return listEntry(t.dir, ".", ".", &st), nil
}

// treeHow resolves a path found by the walk: beneath the tree, through
// no symlink at all.
func treeHow(flags uint64) *unix.OpenHow {
	return &unix.OpenHow{
		Flags:   flags | unix.O_CLOEXEC | unix.O_NOFOLLOW,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	}
}

// Walk calls fn for every entry below the tree, depth first: a directory
// comes before its entries, and the names in a directory in lexical
// order. Paths are slash-separated and relative to the tree. Symlinks are
// reported with their target, never followed. Entries that vanish while
// they are walked are left out; a directory that cannot be read, or an
// error from fn, ends the walk with that error. It holds two descriptors
// at most, however deep the tree.
func (t *Tree) Walk(fn func(DirEntry) error) error {
	return t.walk(".", fn)
}

func (t *Tree) walk(rel string, fn func(DirEntry) error) error {
	entries, err := t.readDir(rel)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := fn(e); err != nil {
			return err
		}
		if e.Mode.IsDir() {
			if err := t.walk(e.Path, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// readDir describes the entries of the directory rel, sorted by name,
// and closes it before the walk goes deeper. A directory that vanished
// or was replaced by a symlink has no entries; so has an entry that
// vanished. An entry that cannot be described otherwise (EACCES, EIO)
// is an error.
func (t *Tree) readDir(rel string) ([]DirEntry, error) {
	fd, err := openat2Retry(int(t.dir.Fd()), rel, treeHow(unix.O_RDONLY|unix.O_DIRECTORY))
	switch err {
	case nil:
	case unix.ENOENT, unix.ENOTDIR, unix.ELOOP, unix.EXDEV:
		return nil, nil
	default:
		return nil, fmt.Errorf("open %q: %w", rel, openErr(err))
	}
	d := os.NewFile(uintptr(fd), rel)
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("read %q: %w", rel, openErr(err))
	}
	slices.Sort(names)
	entries := make([]DirEntry, 0, len(names))
	for _, name := range names {
		var st unix.Stat_t
		if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err == unix.ENOENT {
			continue // vanished since the listing
		} else if err != nil {
			// Not left out: a copy or sync would take a missing entry
			// for one the tree does not have (and a sync delete it).
			return nil, fmt.Errorf("stat %q: %w", path.Join(rel, name), openErr(err))
		}
		p := name
		if rel != "." {
			p = rel + "/" + name
		}
		entries = append(entries, listEntry(d, p, name, &st))
	}
	return entries, nil
}

// Open opens the regular file rel, a path the walk reported, for
// reading. A name that is now a symlink, or leads through one, is
// ErrEscapes; one that is no longer a regular file is ErrNotRegular.
func (t *Tree) Open(rel string) (*os.File, error) {
	clean, err := CleanPath(rel)
	if err != nil {
		return nil, err
	}
	// The type first, on a descriptor open for no I/O (see Root.Open).
	pfd, err := openat2Retry(int(t.dir.Fd()), clean, treeHow(unix.O_PATH))
	if err != nil {
		return nil, fmt.Errorf("open %q: %w", clean, openErr(err))
	}
	var pst unix.Stat_t
	err = unix.Fstat(pfd, &pst)
	unix.Close(pfd)
	switch {
	case err == nil && pst.Mode&unix.S_IFMT == unix.S_IFLNK: // O_PATH|O_NOFOLLOW opens the link itself
		return nil, fmt.Errorf("open %q: %w", clean, openErr(unix.ELOOP))
	case err != nil || pst.Mode&unix.S_IFMT != unix.S_IFREG:
		return nil, fmt.Errorf("%w: %q", ErrNotRegular, clean)
	}
	fd, err := openat2Retry(int(t.dir.Fd()), clean, treeHow(unix.O_RDONLY|unix.O_NOCTTY|unix.O_NONBLOCK))
	if err != nil {
		return nil, fmt.Errorf("open %q: %w", clean, openErr(err))
	}
	f := os.NewFile(uintptr(fd), path.Join(t.Path, clean))
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		f.Close()
		return nil, fmt.Errorf("%w: %q", ErrNotRegular, clean)
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		f.Close()
		return nil, fmt.Errorf("open %q: %w", clean, err)
	}
	return f, nil
}
