package transfer

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
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
