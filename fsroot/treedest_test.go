package fsroot

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
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
