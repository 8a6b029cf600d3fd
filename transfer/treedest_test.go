package transfer

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestTreeDestConfined: names that lead through a symlink, out of the
// root or nowhere are refused, and nothing is created outside.
func TestTreeDestConfined(t *testing.T) {
	base := t.TempDir()
	root, outside := filepath.Join(base, "root"), filepath.Join(base, "outside")
	for _, d := range []string{root, outside, filepath.Join(root, "real")} {
		treeMust(t, os.MkdirAll(d, 0o755))
	}
	treeMust(t, os.Symlink(outside, filepath.Join(root, "abs")))
	treeMust(t, os.Symlink("real", filepath.Join(root, "rel")))
	r, err := OpenRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, name := range []string{"abs/x", "rel/x", "../x", "/x", "real/../../x", ".", "real/"} {
		if err := r.Mkdir(name, 0o755, false); err == nil {
			t.Errorf("Mkdir(%q) = nil, want an error", name)
		}
		if err := r.Symlink("t", name, false); err == nil {
			t.Errorf("Symlink(%q) = nil, want an error", name)
		}
	}
	if d, err := r.RootDestination("abs/x", false); !errors.Is(err, ErrEscapes) {
		if d != nil {
			d.Abort()
		}
		t.Errorf("RootDestination(abs/x) = %v, want %v", err, ErrEscapes)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("created %d entries outside the root", len(ents))
	}
	// Existing entries: a directory is kept only when asked; a symlink
	// is replaced only when asked, and never by following it.
	if err := r.Mkdir("real", 0o755, false); !errors.Is(err, ErrExists) {
		t.Errorf("Mkdir(existing) = %v, want %v", err, ErrExists)
	}
	if err := r.Mkdir("real", 0o755, true); err != nil {
		t.Errorf("Mkdir(existing, existing ok) = %v", err)
	}
	if err := r.Mkdir("rel", 0o755, true); !errors.Is(err, ErrExists) {
		t.Errorf("Mkdir(over a symlink to a directory) = %v, want %v", err, ErrExists)
	}
	if err := r.Symlink("new", "abs", false); !errors.Is(err, ErrExists) {
		t.Errorf("Symlink(existing) = %v, want %v", err, ErrExists)
	}
	if err := r.Symlink("new", "abs", true); err != nil {
		t.Errorf("Symlink(existing, replace) = %v", err)
	}
	if got, _ := os.Readlink(filepath.Join(root, "abs")); got != "new" {
		t.Errorf("replaced symlink points to %q, want new", got)
	}
	if err := r.Symlink("new", "real", true); err == nil {
		t.Errorf("Symlink(over a directory, replace) = nil, want an error")
	}
}

// TestCommitAll lands a group of files with their modes and times, and
// refuses to replace an existing one without overwrite.
func TestCommitAll(t *testing.T) {
	dir := t.TempDir()
	r, err := OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	treeMust(t, r.Mkdir("d", 0o700, false))
	when := time.Date(2019, 5, 6, 7, 8, 9, 123456789, time.UTC)
	var ds []*Destination
	for _, name := range []string{"a", "d/b", "d/c"} {
		d, err := r.RootDestination(name, false)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Abort()
		if _, err := d.f.Write([]byte(name)); err != nil {
			t.Fatal(err)
		}
		treeMust(t, d.SetMeta(0o640, when))
		ds = append(ds, d)
	}
	if err := CommitAll(ds); err != nil {
		t.Fatalf("CommitAll() = %v", err)
	}
	for _, name := range []string{"a", "d/b", "d/c"} {
		p := filepath.Join(dir, name)
		b, _ := os.ReadFile(p)
		fi, err := os.Stat(p)
		if err != nil || string(b) != name || fi.Mode() != 0o640 || !fi.ModTime().Equal(when) {
			t.Errorf("%s: %q, %v; want %q, mode 0640, mtime %v", name, b, fi, name, when)
		}
		if _, err := os.Lstat(p + ".partial"); err == nil {
			t.Errorf("%s.partial left behind", name)
		}
	}
	treeMust(t, r.SetDirMeta("d", 0o750, when))
	if fi, err := os.Stat(filepath.Join(dir, "d")); err != nil || fi.Mode().Perm() != 0o750 || !fi.ModTime().Equal(when) {
		t.Errorf("d after SetDirMeta: %v, %v; want mode 0750, mtime %v", fi.Mode(), fi.ModTime(), when)
	}
	// Without overwrite, a name that appeared meanwhile is not replaced.
	d, err := r.RootDestination("new", false)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Abort()
	treeMust(t, os.WriteFile(filepath.Join(dir, "new"), []byte("theirs"), 0o644))
	if err := CommitAll([]*Destination{d}); !errors.Is(err, ErrExists) {
		t.Errorf("CommitAll(onto a file that appeared) = %v, want %v", err, ErrExists)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "new")); string(b) != "theirs" {
		t.Errorf("CommitAll replaced a file without overwrite")
	}
}
