package fsroot

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// newRootDest opens a RootDestination for name beneath a new root and
// writes data to it, uncommitted.
func newRootDest(t *testing.T, dir, name string, overwrite bool, data string) *Destination {
	t.Helper()
	r, err := OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	d, err := r.RootDestination(name, overwrite)
	if err != nil {
		t.Fatalf("RootDestination(%q, %v) = %v", name, overwrite, err)
	}
	t.Cleanup(d.Abort)
	if _, err := d.f.WriteString(data); err != nil {
		t.Fatal(err)
	}
	return d
}

func readOr(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return string(b)
}

func TestRootDestinationCommitAbort(t *testing.T) {
	dir := t.TempDir()
	newRootDest(t, dir, "kept", false, "new").Commit()
	if got := readOr(t, filepath.Join(dir, "kept")); got != "new" {
		t.Errorf("after Commit, kept holds %q, want %q", got, "new")
	}
	newRootDest(t, dir, "dropped", false, "new").Abort()
	for _, name := range []string{"dropped", "dropped.partial", "kept.partial"} {
		if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
			t.Errorf("%s exists after Commit/Abort", name)
		}
	}
}

// TestRootDestinationNoReplace: a file that appears at the destination
// while the bytes arrive is not clobbered without overwrite.
func TestRootDestinationNoReplace(t *testing.T) {
	dir := t.TempDir()
	d := newRootDest(t, dir, "f", false, "new")
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("racer"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.Commit(); !errors.Is(err, ErrExists) {
		t.Errorf("Commit() over a file created meanwhile = %v, want ErrExists", err)
	}
	if got := readOr(t, filepath.Join(dir, "f")); got != "racer" {
		t.Errorf("f holds %q, want the racer's file", got)
	}
	if _, err := os.Lstat(filepath.Join(dir, "f.partial")); err == nil {
		t.Errorf("f.partial left behind after a failed Commit")
	}
}

// TestRootDestinationParentSwapped: the parent directory is held by
// descriptor, so replacing it with a symlink to outside the root after
// RootDestination cannot move the file out.
func TestRootDestinationParentSwapped(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	d := newRootDest(t, dir, "d/f", false, "new")
	if err := os.Rename(filepath.Join(dir, "d"), filepath.Join(dir, "moved")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "d")); err != nil {
		t.Fatal(err)
	}
	if err := d.Commit(); err != nil {
		t.Fatalf("Commit() = %v", err)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("Commit wrote %v outside the root", ents)
	}
	if got := readOr(t, filepath.Join(dir, "moved", "f")); got != "new" {
		t.Errorf("moved/f holds %q, want %q", got, "new")
	}
}

// TestRootDestinationLeavesOthersPartial: "<name>.partial" may be anyone's
// file (a user's, another receiver's). A RootDestination neither
// truncates, removes nor renames it, whether its receive fails or lands.
func TestRootDestinationLeavesOthersPartial(t *testing.T) {
	for _, commit := range []bool{false, true} {
		dir := t.TempDir()
		theirs := filepath.Join(dir, "f.partial")
		if err := os.WriteFile(theirs, []byte("someone else's"), 0o600); err != nil {
			t.Fatal(err)
		}
		d := newRootDest(t, dir, "f", false, "new bytes")
		if commit {
			if err := d.Commit(); err != nil {
				t.Fatal(err)
			}
		} else {
			d.Abort()
		}
		if got := readOr(t, theirs); got != "someone else's" {
			t.Errorf("commit %v: f.partial = %q, want it untouched", commit, got)
		}
		if want := map[bool]string{true: "new bytes", false: "<open " + filepath.Join(dir, "f") + ": no such file or directory>"}[commit]; readOr(t, filepath.Join(dir, "f")) != want {
			t.Errorf("commit %v: f = %q, want %q", commit, readOr(t, filepath.Join(dir, "f")), want)
		}
	}
}

// TestCreateDestinationSymlinkedPartial: a symlink planted at DEST.partial
// is refused; the file it points to is neither created nor written.
func TestCreateDestinationSymlinkedPartial(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "elsewhere", "victim")
	if err := os.Mkdir(filepath.Dir(target), 0o755); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(dir, "out")
	if err := os.Symlink(target, dest+".partial"); err != nil {
		t.Fatal(err)
	}
	if d, err := CreateDestination(dest); err == nil {
		d.Abort()
		t.Errorf("CreateDestination with a symlinked %s.partial = nil error, want a refusal", dest)
	}
	if _, err := os.Lstat(target); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the symlink's target: Lstat = %v, want it never created", err)
	}
}
