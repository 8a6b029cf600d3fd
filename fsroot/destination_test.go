package fsroot

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestDestination checks the .partial, Commit and Abort life cycle.
func TestDestination(t *testing.T) {
	dir := t.TempDir()
	final := filepath.Join(dir, "out")
	partial := final + ".partial"
	exists := func(p string) bool {
		_, err := os.Lstat(p)
		return err == nil
	}

	d, err := CreateDestination(final)
	if err != nil {
		t.Fatal(err)
	}
	if d.Discards() || !exists(partial) || exists(final) {
		t.Fatalf("after CreateDestination(%q): Discards() = %v, partial exists %v, final exists %v; want false, true, false",
			"out", d.Discards(), exists(partial), exists(final))
	}
	if err := d.Commit(); err != nil {
		t.Fatalf("Commit() = %v", err)
	}
	if exists(partial) || !exists(final) {
		t.Errorf("after Commit(): partial exists %v, final exists %v; want false, true", exists(partial), exists(final))
	}
	// A second receive into the same path has begun; the first
	// destination's Abort, documented as a no-op after Commit, must not
	// touch it.
	d2, err := CreateDestination(final)
	if err != nil {
		t.Fatal(err)
	}
	d.Abort()
	if !exists(partial) || !exists(final) {
		t.Errorf("Abort() after Commit() removed something: partial exists %v, final exists %v; want both", exists(partial), exists(final))
	}
	if err := d.Commit(); err != nil {
		t.Errorf("second Commit() = %v, want nil", err)
	}
	d2.Abort()
	d2.Abort()
	if exists(partial) {
		t.Errorf("after Abort(): partial still exists")
	}
	if !exists(final) {
		t.Errorf("Abort() removed the committed file")
	}

	for _, p := range []string{"-", os.DevNull} {
		d, err := CreateDestination(p)
		if err != nil {
			t.Fatalf("CreateDestination(%q) = %v", p, err)
		}
		if got, want := d.Discards(), p == os.DevNull; got != want {
			t.Errorf("CreateDestination(%q).Discards() = %v, want %v", p, got, want)
		}
		if err := d.Commit(); err != nil {
			t.Errorf("CreateDestination(%q).Commit() = %v, want nil", p, err)
		}
		d.Abort()
	}
	if _, err := os.Stat(os.DevNull); err != nil {
		t.Errorf("/dev/null is gone: %v", err)
	}
	if _, err := CreateDestination(filepath.Join(dir, "missing", "x")); err == nil {
		t.Errorf("CreateDestination in a missing directory = nil error, want one")
	}
}

// TestLockPartialReplaced: a receive that opened the partial file just
// before another one renamed it into place (and so released its lock)
// must not take the lock on that inode, now the landed file.
func TestLockPartialReplaced(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "f.partial")
	if err := os.WriteFile(name, []byte("landed"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(name, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := os.Rename(name, filepath.Join(dir, "f")); err != nil { // the other receive commits
		t.Fatal(err)
	}
	if err := lockPartial(f, unix.AT_FDCWD, name); err == nil {
		t.Error("lockPartial on a renamed-away inode = nil, want an error")
	}
	if err := os.WriteFile(name, nil, 0o644); err != nil { // a new partial appears
		t.Fatal(err)
	}
	if err := lockPartial(f, unix.AT_FDCWD, name); err == nil {
		t.Error("lockPartial on an inode no longer at the name = nil, want an error")
	}
	g, err := os.OpenFile(name, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if err := lockPartial(g, unix.AT_FDCWD, name); err != nil {
		t.Errorf("lockPartial on the file at the name = %v, want nil", err)
	}
}
