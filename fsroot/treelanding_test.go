package fsroot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// names lists dir's entries.
func names(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// landTree lands files (name -> content) through a TreeLanding beneath
// dir, each with mode 0640 and mtime when.
func landTree(t *testing.T, dir string, overwrite bool, files map[string]string, when time.Time) error {
	t.Helper()
	r, err := OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	l := r.TreeLanding(overwrite)
	defer l.Close()
	var ds []*Destination
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range files {
			if !yield(k) {
				return
			}
		}
	}) {
		d, err := l.Destination(name)
		if err != nil {
			return err
		}
		defer d.Abort()
		if _, err := d.f.WriteString(files[name]); err != nil {
			t.Fatal(err)
		}
		treeMust(t, d.SetMeta(0o640, when))
		ds = append(ds, d)
	}
	if err := l.CommitAll(ds); err != nil {
		return err
	}
	return l.Sync()
}

// TestTreeLanding lands files with their modes and times, through each
// way of landing (O_TMPFILE linked by AT_EMPTY_PATH or through
// /proc/self/fd, and the locked partial file where O_TMPFILE is
// missing), leaving nothing but the files.
func TestTreeLanding(t *testing.T) {
	when := time.Date(2020, 1, 2, 3, 4, 5, 6, time.UTC)
	for _, how := range []string{"tmpfile", "proc link", "partial file"} {
		t.Run(how, func(t *testing.T) {
			if how == "proc link" {
				linkFallback.Store(true)
				defer linkFallback.Store(false)
			}
			dir := t.TempDir()
			treeMust(t, os.Mkdir(filepath.Join(dir, "d"), 0o755))
			files := map[string]string{"a": "alpha", "d/b": "beta", "d/c": ""}
			r, _ := OpenRoot(dir)
			l := r.TreeLanding(false)
			if how == "partial file" {
				l.noTmpfile.Store(true)
			}
			var ds []*Destination
			for name, data := range files {
				d, err := l.Destination(name)
				if err != nil {
					t.Fatal(err)
				}
				if d.at.anon == (how == "partial file") {
					t.Fatalf("%s: anon = %v", how, d.at.anon)
				}
				d.f.WriteString(data)
				treeMust(t, d.SetMeta(0o640, when))
				ds = append(ds, d)
			}
			treeMust(t, l.CommitAll(ds))
			treeMust(t, l.Sync())
			l.Close()
			r.Close()
			for name, data := range files {
				p := filepath.Join(dir, name)
				fi, err := os.Stat(p)
				if got := readOr(t, p); err != nil || got != data || fi.Mode() != 0o640 || !fi.ModTime().Equal(when) {
					t.Errorf("%s: %q, %v; want %q, mode 0640, mtime %v", name, got, fi, data, when)
				}
			}
			if got := names(t, dir); !slices.Equal(got, []string{"a", "d"}) {
				t.Errorf("root holds %q, want [a d]", got)
			}
			if got := names(t, filepath.Join(dir, "d")); !slices.Equal(got, []string{"b", "c"}) {
				t.Errorf("d holds %q, want [b c]", got)
			}
		})
	}
}

// TestTreeLandingNothingBeforeCommit: a file being received has no name
// at all, so a crash or an abort before its commit leaves nothing, not
// even a partial file.
func TestTreeLandingNothingBeforeCommit(t *testing.T) {
	dir := t.TempDir()
	r, _ := OpenRoot(dir)
	defer r.Close()
	l := r.TreeLanding(false)
	defer l.Close()
	d, err := l.Destination("f")
	if err != nil {
		t.Fatal(err)
	}
	d.f.WriteString("some of the bytes")
	if got := names(t, dir); len(got) != 0 {
		t.Errorf("while receiving, the directory holds %q, want nothing", got)
	}
	d.Abort()
	if got := names(t, dir); len(got) != 0 {
		t.Errorf("after Abort, the directory holds %q, want nothing", got)
	}
}

// TestTreeLandingReplace: without overwrite an existing name is kept
// (ErrExists); with it, a file is replaced (and no temporary name stays)
// but a directory is refused at once (ErrIsDir).
func TestTreeLandingReplace(t *testing.T) {
	dir := t.TempDir()
	treeMust(t, os.WriteFile(filepath.Join(dir, "f"), []byte("theirs"), 0o644))
	treeMust(t, os.Mkdir(filepath.Join(dir, "sub"), 0o755))
	when := time.Now()
	if err := landTree(t, dir, false, map[string]string{"f": "ours"}, when); !errors.Is(err, ErrExists) {
		t.Errorf("landing onto a file without overwrite = %v, want %v", err, ErrExists)
	}
	if got := readOr(t, filepath.Join(dir, "f")); got != "theirs" {
		t.Errorf("f holds %q after a refused landing, want theirs", got)
	}
	if err := landTree(t, dir, false, map[string]string{"sub": "ours"}, when); !errors.Is(err, ErrIsDir) {
		t.Errorf("landing onto a directory without overwrite = %v, want %v", err, ErrIsDir)
	}
	treeMust(t, landTree(t, dir, true, map[string]string{"f": "ours"}, when))
	if got := readOr(t, filepath.Join(dir, "f")); got != "ours" {
		t.Errorf("f holds %q after an overwriting landing, want ours", got)
	}
	if err := landTree(t, dir, true, map[string]string{"sub": "ours"}, when); !errors.Is(err, ErrIsDir) {
		t.Errorf("landing onto a directory with overwrite = %v, want %v", err, ErrIsDir)
	}
	if got := names(t, dir); !slices.Equal(got, []string{"f", "sub"}) {
		t.Errorf("the directory holds %q, want [f sub]", got)
	}
}

// TestTreeLandingConfined: names that climb out or go through a symlink
// are refused, and nothing lands outside.
func TestTreeLandingConfined(t *testing.T) {
	base := t.TempDir()
	dir, outside := filepath.Join(base, "dest"), filepath.Join(base, "outside")
	treeMust(t, os.Mkdir(dir, 0o755))
	treeMust(t, os.Mkdir(outside, 0o755))
	treeMust(t, os.Symlink("../outside", filepath.Join(dir, "out")))
	treeMust(t, os.Symlink(".", filepath.Join(dir, "self")))
	for name, want := range map[string]error{
		"../x": ErrInvalidPath, "/x": ErrInvalidPath, "a/../x": ErrInvalidPath,
		"out/x": ErrEscapes, "self/x": ErrEscapes,
	} {
		if err := landTree(t, dir, true, map[string]string{name: "evil"}, time.Now()); !errors.Is(err, want) {
			t.Errorf("landing %q = %v, want %v", name, err, want)
		}
	}
	if got := names(t, outside); len(got) != 0 {
		t.Errorf("outside holds %q, want nothing", got)
	}
	// A symlink at the name itself is not followed: without overwrite it
	// is kept, with it it is replaced.
	if err := landTree(t, dir, false, map[string]string{"out": "file"}, time.Now()); !errors.Is(err, ErrExists) {
		t.Errorf("landing onto a symlink = %v, want %v", err, ErrExists)
	}
	treeMust(t, landTree(t, dir, true, map[string]string{"out": "file"}, time.Now()))
	if fi, err := os.Lstat(filepath.Join(dir, "out")); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("out after an overwriting landing: %v, %v; want a regular file", fi, err)
	}
	if got := names(t, outside); len(got) != 0 {
		t.Errorf("outside holds %q, want nothing", got)
	}
}

// TestTreeLandingConcurrent: two landings of one name into one tree at
// once, without overwrite: one lands whole, the other gets ErrExists.
func TestTreeLandingConcurrent(t *testing.T) {
	dir := t.TempDir()
	r, _ := OpenRoot(dir)
	defer r.Close()
	a, b := r.TreeLanding(false), r.TreeLanding(false)
	defer a.Close()
	defer b.Close()
	da, err := a.Destination("f")
	treeMust(t, err)
	db, err := b.Destination("f")
	treeMust(t, err)
	da.f.WriteString("from a")
	db.f.WriteString("from b")
	treeMust(t, a.CommitAll([]*Destination{da}))
	if err := b.CommitAll([]*Destination{db}); !errors.Is(err, ErrExists) {
		t.Errorf("the second landing = %v, want %v", err, ErrExists)
	}
	if got := readOr(t, filepath.Join(dir, "f")); got != "from a" {
		t.Errorf("f holds %q, want \"from a\"", got)
	}
	if got := names(t, dir); !slices.Equal(got, []string{"f"}) {
		t.Errorf("the directory holds %q, want [f]", got)
	}
}

// TestTreeSymlinkReplaceKeepsOthersNames: replacing a file with a symlink
// neither deletes nor uses a name the tree does not name, such as a
// user's "lnk.partial", and refusing a directory leaves nothing behind.
func TestTreeSymlinkReplaceKeepsOthersNames(t *testing.T) {
	dir := t.TempDir()
	treeMust(t, os.WriteFile(filepath.Join(dir, "lnk"), []byte("old"), 0o644))
	treeMust(t, os.WriteFile(filepath.Join(dir, "lnk.partial"), []byte("mine"), 0o644))
	treeMust(t, os.Mkdir(filepath.Join(dir, "sub"), 0o755))
	r, err := OpenRoot(dir)
	treeMust(t, err)
	defer r.Close()
	treeMust(t, r.Symlink("target", "lnk", true))
	if got, err := os.Readlink(filepath.Join(dir, "lnk")); err != nil || got != "target" {
		t.Errorf("lnk -> %q, %v; want a symlink to target", got, err)
	}
	if got := readOr(t, filepath.Join(dir, "lnk.partial")); got != "mine" {
		t.Errorf("the user's lnk.partial holds %q, want mine", got)
	}
	if err := r.Symlink("target", "sub", true); err == nil {
		t.Error("a symlink replaced the directory sub")
	}
	if fi, err := os.Lstat(filepath.Join(dir, "sub")); err != nil || !fi.IsDir() {
		t.Errorf("sub: %v, %v; want the directory kept", fi, err)
	}
	if got := names(t, dir); !slices.Equal(got, []string{"lnk", "lnk.partial", "sub"}) {
		t.Errorf("the directory holds %q, want [lnk lnk.partial sub]", got)
	}
}

// TestTreeSymlinkConcurrentReplace: concurrent overwriting landings of
// one symlink all succeed (none removes another's temporary name), and
// leave only the link.
func TestTreeSymlinkConcurrentReplace(t *testing.T) {
	dir := t.TempDir()
	r, err := OpenRoot(dir)
	treeMust(t, err)
	defer r.Close()
	treeMust(t, r.Symlink("t0", "l", false))
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				if err := r.Symlink(fmt.Sprintf("t%d.%d", g, i), "l", true); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := names(t, dir); !slices.Equal(got, []string{"l"}) {
		t.Errorf("the directory holds %q, want [l]", got)
	}
}

// TestTreeLandingManyDirectories: a tree with more directories than the
// process may open files lands, with the descriptor limit lowered to
// what is open now plus the directory cache and some room.
func TestTreeLandingManyDirectories(t *testing.T) {
	dir := t.TempDir()
	const ndirs = 600
	for i := range ndirs {
		treeMust(t, os.Mkdir(filepath.Join(dir, fmt.Sprintf("d%03d", i)), 0o755))
	}
	r, err := OpenRoot(dir)
	treeMust(t, err)
	defer r.Close()
	l := r.TreeLanding(false)
	defer l.Close()

	var old syscall.Rlimit
	treeMust(t, syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old))
	open := len(names(t, "/proc/self/fd"))
	low := old
	low.Cur = uint64(open + maxTreeDirs + 64)
	if low.Cur >= old.Cur || ndirs <= int(low.Cur)-open {
		t.Fatalf("cannot lower the limit of %d open files below %d", old.Cur, low.Cur)
	}
	treeMust(t, syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low))
	defer syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old)

	land := func(names ...string) {
		t.Helper()
		var ds []*Destination
		for _, name := range names {
			d, err := l.Destination(name)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Abort()
			d.f.WriteString(name)
			ds = append(ds, d)
		}
		treeMust(t, l.CommitAll(ds))
	}
	for i := 0; i < ndirs; i += 10 {
		var group []string
		for j := i; j < i+10; j++ {
			group = append(group, fmt.Sprintf("d%03d/f", j))
		}
		land(group...)
	}
	land("d000/again") // evicted long ago: opened anew
	treeMust(t, l.Sync())
	if n := len(l.dirs); n > maxTreeDirs {
		t.Errorf("%d directories kept open, want at most %d", n, maxTreeDirs)
	}
	syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old)
	for _, name := range []string{"d000/f", "d599/f", "d000/again"} {
		if got := readOr(t, filepath.Join(dir, name)); got != name {
			t.Errorf("%s holds %q", name, got)
		}
	}
}

// TestTreeLandingFallbackOwnNames: without O_TMPFILE, a file's bytes go
// to a name of its own, so a tree holding both "x.partial" and "x" lands
// both, and an overwriting one leaves a user's "y.partial" alone.
func TestTreeLandingFallbackOwnNames(t *testing.T) {
	dir := t.TempDir()
	treeMust(t, os.WriteFile(filepath.Join(dir, "y"), []byte("old y"), 0o644))
	treeMust(t, os.WriteFile(filepath.Join(dir, "y.partial"), []byte("the user's"), 0o644))
	r, err := OpenRoot(dir)
	treeMust(t, err)
	defer r.Close()
	for _, overwrite := range []bool{false, true} {
		l := r.TreeLanding(overwrite)
		l.noTmpfile.Store(true)
		land := func(name, data string) {
			t.Helper()
			d, err := l.Destination(name)
			if err != nil {
				t.Fatal(name, err)
			}
			if d.at.anon {
				t.Fatalf("%s: landed through O_TMPFILE", name)
			}
			d.f.WriteString(data)
			treeMust(t, d.SetMeta(0o644, time.Now()))
			treeMust(t, l.CommitAll([]*Destination{d}))
		}
		if overwrite {
			land("y", "new y")
		} else {
			land("x.partial", "the tree's x.partial")
			land("x", "the tree's x")
		}
		treeMust(t, l.Sync())
		l.Close()
	}
	for name, want := range map[string]string{
		"x.partial": "the tree's x.partial", "x": "the tree's x", "y": "new y", "y.partial": "the user's",
	} {
		if got := readOr(t, filepath.Join(dir, name)); got != want {
			t.Errorf("%s holds %q, want %q", name, got, want)
		}
	}
	if got := names(t, dir); !slices.Equal(got, []string{"x", "x.partial", "y", "y.partial"}) {
		t.Errorf("the directory holds %q, want [x x.partial y y.partial]", got)
	}
}

// TestTreeLandingSyncDescriptor: the descriptor syncfs(2) goes through is
// a directory's (not O_PATH), open before the tree's first file was
// created (so that it sees every later writeback error), and every
// syncfs of the tree, in CommitAll and Sync, goes through it.
func TestTreeLandingSyncDescriptor(t *testing.T) {
	dir := t.TempDir()
	r, err := OpenRoot(dir)
	treeMust(t, err)
	defer r.Close()
	l := r.TreeLanding(false)
	defer l.Close()
	var synced []int
	l.syncfs = func(fd int) error {
		synced = append(synced, fd)
		return unix.Syncfs(fd)
	}
	if len(l.syncFds) != 0 {
		t.Fatalf("sync descriptors %v before any file", l.syncFds)
	}
	d, err := l.Destination("f")
	treeMust(t, err)
	defer d.Abort()
	if len(l.syncFds) != 1 {
		t.Fatalf("sync descriptors %v once the first file exists, want one", l.syncFds)
	}
	var want int
	for _, fd := range l.syncFds {
		want = fd
	}
	flags, err := unix.FcntlInt(uintptr(want), unix.F_GETFL, 0)
	treeMust(t, err)
	var st, fst unix.Stat_t
	treeMust(t, unix.Fstat(want, &st))
	treeMust(t, unix.Fstat(int(d.f.Fd()), &fst))
	if flags&unix.O_PATH != 0 || st.Mode&unix.S_IFMT != unix.S_IFDIR || st.Dev != fst.Dev {
		t.Errorf("sync descriptor: flags %#x, mode %#o, device %d; want a directory, not O_PATH, on the file's device %d",
			flags, st.Mode, st.Dev, fst.Dev)
	}
	d.f.WriteString("bytes")
	treeMust(t, l.CommitAll([]*Destination{d}))
	d2, err := l.Destination("g")
	treeMust(t, err)
	defer d2.Abort()
	treeMust(t, l.CommitAll([]*Destination{d2}))
	treeMust(t, l.Sync())
	if !slices.Equal(synced, []int{want, want, want}) {
		t.Errorf("syncfs went through %v, want [%d %d %d]", synced, want, want, want)
	}
}

// TestTmpfileUnsupported: the errnos of a file system (EOPNOTSUPP) or a
// kernel (EISDIR) without O_TMPFILE select the partial-file fallback;
// other failures are errors of their own.
func TestTmpfileUnsupported(t *testing.T) {
	for err, want := range map[error]bool{
		unix.EOPNOTSUPP: true, unix.EISDIR: true,
		unix.ENOENT: false, unix.EACCES: false, unix.ENOSPC: false, nil: false,
	} {
		if got := tmpfileUnsupported(err); got != want {
			t.Errorf("tmpfileUnsupported(%v) = %v, want %v", err, got, want)
		}
	}
}
