package fsroot

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"unicode/utf8"
)

// The seed corpora of these targets live in testdata/fuzz/<target>/ as
// well as in the f.Add calls; integration.TestFuzz runs each target for a
// bounded time.

// hostileSeeds are names worth starting from, for CleanPath and Open.
var hostileSeeds = []string{
	"file", "dir/nested", "./file", "dir/../file", "file/", ".", "",
	"..", "../x", "a/../../x", "/etc/passwd", "//etc/passwd", "fi\x00le", "\xff",
	"abs-out", "dir/rel-out", "chain-a", "dir-out/secret", "proc-root/etc/passwd",
	"proc-fd", "loop", "hardlink", "fifo", "null", "sock", "nodev-chr", `..\x`, "%2e%2e/x", "~",
}

func FuzzCleanPath(f *testing.F) {
	for _, s := range hostileSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		clean, err := CleanPath(name)
		if err != nil {
			if !errors.Is(err, ErrInvalidPath) || clean != "" {
				t.Fatalf("CleanPath(%q) = %q, %v; want \"\", %v", name, clean, err, ErrInvalidPath)
			}
			return
		}
		checkClean(t, name, clean)
		if again, err := CleanPath(clean); again != clean || err != nil {
			t.Fatalf("CleanPath(%q) = %q, %v; want it unchanged (from %q)", clean, again, err, name)
		}
	})
}

// checkClean fails unless clean, what CleanPath made of name, is a
// relative, clean, valid UTF-8 path without NUL that stays beneath the
// root lexically.
func checkClean(t *testing.T, name, clean string) {
	t.Helper()
	switch {
	case path.IsAbs(clean), path.Clean(clean) != clean, !utf8.ValidString(clean),
		strings.IndexByte(clean, 0) >= 0, len(clean) > maxPathLen, !fs.ValidPath(clean):
		t.Fatalf("CleanPath(%q) = %q, want a clean relative path", name, clean)
	}
	for _, elem := range strings.Split(clean, "/") {
		if elem == ".." {
			t.Fatalf("CleanPath(%q) = %q, which has a \"..\" element", name, clean)
		}
	}
}

// inodeKey identifies a file.
type inodeKey struct{ dev, ino uint64 }

func keyOf(fi fs.FileInfo) inodeKey {
	st := fi.Sys().(*syscall.Stat_t)
	return inodeKey{uint64(st.Dev), st.Ino}
}

// inodesBeneath collects every file and directory in dir, the root
// included, walking without following symlinks. A successful Open follows
// symlinks to their end, so whatever it opens must be one of these: a
// symlink that leads anywhere else leads out of the root. A hardlink's
// inode is here by definition.
func inodesBeneath(t testing.TB, dir string) map[inodeKey]string {
	t.Helper()
	inodes := make(map[inodeKey]string)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink != 0 {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		inodes[keyOf(fi)] = p
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return inodes
}

func FuzzRootOpen(f *testing.F) {
	for _, s := range hostileSeeds {
		f.Add(s)
	}
	top, dir := hostileTree(f)
	root, err := OpenRoot(dir)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { root.Close() })
	inodes := inodesBeneath(f, dir)
	if fi, err := os.Stat(filepath.Join(top, "outside/secret")); err != nil {
		f.Fatal(err)
	} else if _, ok := inodes[keyOf(fi)]; ok {
		f.Fatal("the secret outside the root counts as beneath it")
	}
	f.Fuzz(func(t *testing.T, name string) {
		clean, cerr := CleanPath(name)
		file, err := root.Open(name)
		if err != nil {
			if cerr != nil && err.Error() != cerr.Error() {
				t.Fatalf("Open(%q) = %v, want CleanPath's %v", name, err, cerr)
			}
			if !isSentinel(err) {
				t.Fatalf("Open(%q) = %v, want one of the package's sentinels", name, err)
			}
			if strings.Contains(err.Error(), top) && !strings.Contains(name, top) {
				t.Fatalf("Open(%q) error %q names the host path %q", name, err, top)
			}
			return
		}
		defer file.Close()
		if cerr != nil {
			t.Fatalf("Open(%q) opened a file, but CleanPath(%[1]q) = %v", name, cerr)
		}
		checkClean(t, name, clean)
		fi, err := file.Stat()
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := inodes[keyOf(fi)]; !ok {
			t.Fatalf("Open(%q) opened %v, which is not beneath the root", name, keyOf(fi))
		}
	})
}

// isSentinel reports whether err wraps one of the errors Open may return.
func isSentinel(err error) bool {
	for _, s := range []error{ErrInvalidPath, ErrEscapes, ErrNotFound, ErrPermission, ErrNotRegular} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}
