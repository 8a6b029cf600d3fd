package fsroot

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
)

// TestTreeWalk walks a tree with nested directories, a symlink to a
// directory (listed, not entered), a symlink out of the root and a FIFO,
// and checks the order and that Open follows no symlink.
func TestTreeWalk(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "root")
	for _, d := range []string{"root/t/a/b", "root/t/c", "outside"} {
		if err := os.MkdirAll(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"root/t/a/b/f", "root/t/z", "outside/secret"} {
		if err := os.WriteFile(filepath.Join(base, f), []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	treeMust(t, os.Symlink("a", filepath.Join(root, "t/link-a")))
	treeMust(t, os.Symlink("../../outside/secret", filepath.Join(root, "t/c/out")))
	treeMust(t, syscall.Mkfifo(filepath.Join(root, "t/fifo"), 0o644))

	r, err := OpenRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.OpenTree("t/z"); !errors.Is(err, ErrNotDir) {
		t.Errorf("OpenTree(a file) = %v, want %v", err, ErrNotDir)
	}
	if _, err := r.OpenTree("../outside"); !errors.Is(err, ErrInvalidPath) {
		t.Errorf("OpenTree(../outside) = %v, want %v", err, ErrInvalidPath)
	}
	tree, err := r.OpenTree("t")
	if err != nil {
		t.Fatal(err)
	}
	defer tree.Close()
	var got []string
	var targets []string
	err = tree.Walk(func(e DirEntry) error {
		got = append(got, e.Path)
		if e.Target != "" {
			targets = append(targets, e.Path+"->"+e.Target)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Walk() = %v", err)
	}
	want := []string{"a", "a/b", "a/b/f", "c", "c/out", "fifo", "link-a", "z"}
	if !slices.Equal(got, want) {
		t.Errorf("Walk() visited %q, want %q", got, want)
	}
	if want := []string{"c/out->../../outside/secret", "link-a->a"}; !slices.Equal(targets, want) {
		t.Errorf("Walk() symlink targets %q, want %q", targets, want)
	}
	f, err := tree.Open("a/b/f")
	if err != nil {
		t.Fatalf("Open(a/b/f) = %v", err)
	}
	f.Close()
	for name, want := range map[string]error{
		"c/out":      ErrEscapes,
		"link-a/b/f": ErrEscapes,
		"fifo":       ErrNotRegular,
		"a":          ErrNotRegular,
		"../z":       ErrInvalidPath,
	} {
		if f, err := tree.Open(name); !errors.Is(err, want) {
			if f != nil {
				f.Close()
			}
			t.Errorf("Open(%q) = %v, want %v", name, err, want)
		}
	}
}

func treeMust(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
