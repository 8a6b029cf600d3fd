package fsroot

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// secret is the content of the file outside the root that no name may
// reach.
const secret = "TOP SECRET: outside the served root"

// hostileTree lays out a root and its surroundings:
//
//	outside/secret                      (the secret; never served)
//	outside/linked                      (hardlinked into the root)
//	root/file, root/dir/nested
//	root/..\x                           (a literal name on Linux)
//	root/fifo, root/sock (a socket inode, no listener)
//	root/null (char device 1:3), root/nodev-chr, root/nodev-blk (0:0, no
//	driver), when mknod of devices is allowed
//	root/hardlink                       (same inode as outside/linked)
//	root/dot          -> .
//	root/dir/up       -> ../file
//	root/abs-out      -> <top>/outside/secret
//	root/abs-etc      -> /etc/passwd
//	root/abs-root     -> <top>/root       (absolute, so refused too)
//	root/dir/rel-out  -> ../../outside/secret
//	root/chain-a      -> chain-b -> dir/chain-c -> ../../outside/secret
//	root/dir-out      -> ../outside
//	root/dir-out-abs  -> <top>/outside
//	root/proc-root    -> /proc/self/root
//	root/proc-fd      -> /proc/self/fd/<an open fd of outside/secret>
//	root/proc-fd-rel  -> ../../../../../../../../proc/self/fd/<same fd>
//	root/loop         -> loop
//	root/loop-a       -> loop-b -> loop-a
//
// It returns top and the root's path. The fd behind proc-fd stays open
// until the test ends.
func hostileTree(t testing.TB) (top, dir string) {
	t.Helper()
	top = t.TempDir()
	dir = filepath.Join(top, "root")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"outside", "root/dir"} {
		must(os.MkdirAll(filepath.Join(top, d), 0o755))
	}
	files := map[string]string{
		"outside/secret":  secret,
		"outside/linked":  "linked",
		"root/file":       "file",
		"root/dir/nested": "nested",
		`root/..\x`:       "backslash",
	}
	for name, content := range files {
		must(os.WriteFile(filepath.Join(top, name), []byte(content), 0o644))
	}
	must(os.Link(filepath.Join(top, "outside/linked"), filepath.Join(dir, "hardlink")))
	must(syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644))
	must(unix.Mknod(filepath.Join(dir, "sock"), unix.S_IFSOCK|0o644, 0))
	nodes := map[string]uint32{"null": unix.S_IFCHR, "nodev-chr": unix.S_IFCHR, "nodev-blk": unix.S_IFBLK}
	for name, kind := range nodes {
		dev := unix.Mkdev(0, 0) // no driver: open fails with ENXIO
		if name == "null" {
			dev = unix.Mkdev(1, 3)
		}
		if err := unix.Mknod(filepath.Join(dir, name), kind|0o666, int(dev)); err != nil {
			t.Logf("no device nodes in the tree: %v", err)
			break
		}
	}
	sf, err := os.Open(filepath.Join(top, "outside/secret"))
	must(err)
	t.Cleanup(func() { sf.Close() })
	fd := strconv.Itoa(int(sf.Fd()))
	links := map[string]string{
		"dot":         ".",
		"dir/up":      "../file",
		"abs-out":     filepath.Join(top, "outside/secret"),
		"abs-etc":     "/etc/passwd",
		"abs-root":    dir,
		"dir/rel-out": "../../outside/secret",
		"chain-a":     "chain-b",
		"chain-b":     "dir/chain-c",
		"dir/chain-c": "../../outside/secret",
		"dir-out":     "../outside",
		"dir-out-abs": filepath.Join(top, "outside"),
		"proc-root":   "/proc/self/root",
		"proc-fd":     "/proc/self/fd/" + fd,
		"proc-fd-rel": strings.Repeat("../", 8) + "proc/self/fd/" + fd,
		"loop":        "loop",
		"loop-a":      "loop-b",
		"loop-b":      "loop-a",
	}
	for name, target := range links {
		must(os.Symlink(target, filepath.Join(dir, name)))
	}
	return top, dir
}

// TestRootHostileNames opens hostile names beneath hostileTree's root.
// Lexical tricks are ErrInvalidPath before any syscall; names that
// resolve out of the root through symlinks or magic links are ErrEscapes;
// names that only look hostile ("%2e%2e", "..\x", "~") are literal names
// and ErrNotFound or, when they exist, the file of that name.
//
// Hardlinks cannot be told from any other name of a file inside the
// root: root/hardlink is served, and operators must not hardlink secrets
// into a served tree.
func TestRootHostileNames(t *testing.T) {
	top, dir := hostileTree(t)
	root, err := OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	secretFI, err := os.Stat(filepath.Join(top, "outside/secret"))
	if err != nil {
		t.Fatal(err)
	}
	linkedFI, err := os.Stat(filepath.Join(top, "outside/linked"))
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		want string // content; "<dir>", "<fifo>" or "<device>" for the others
		err  error
	}{
		// Lexical: refused before the kernel sees them.
		{"..", "", ErrInvalidPath},
		{"../x", "", ErrInvalidPath},
		{"../outside/secret", "", ErrInvalidPath},
		{"a/../../x", "", ErrInvalidPath},
		{"./../x", "", ErrInvalidPath},
		{"a/./../../x", "", ErrInvalidPath},
		{"dir/../../outside/secret", "", ErrInvalidPath},
		{"a/b/c/../../../../x", "", ErrInvalidPath},
		{"/etc/passwd", "", ErrInvalidPath},
		{"//etc/passwd", "", ErrInvalidPath},
		{"/proc/self/root/etc/passwd", "", ErrInvalidPath},
		{filepath.Join(top, "outside/secret"), "", ErrInvalidPath},
		{filepath.Join(dir, "file"), "", ErrInvalidPath},
		{"file\x00", "", ErrInvalidPath},
		{"fi\x00le", "", ErrInvalidPath},
		{"\x00../outside/secret", "", ErrInvalidPath},
		{"file\x00/../../outside/secret", "", ErrInvalidPath},
		{"\xff", "", ErrInvalidPath},
		{"fil\xe9", "", ErrInvalidPath},
		{"\xc0\xae\xc0\xae/outside/secret", "", ErrInvalidPath}, // overlong "..", not UTF-8
		{"\xed\xa0\x80", "", ErrInvalidPath},                    // a UTF-16 surrogate
		{strings.Repeat("a", maxPathLen+1), "", ErrInvalidPath},
		{strings.Repeat("a/", maxPathLen/2) + "file", "", ErrInvalidPath},
		{strings.Repeat("./", maxPathLen) + "file", "", ErrInvalidPath},
		{strings.Repeat("n", 256), "", ErrInvalidPath}, // ENAMETOOLONG
		{"dir/" + strings.Repeat("n", 1000), "", ErrInvalidPath},
		{"", "", ErrInvalidPath},

		// Symlinks and magic links: refused by the kernel.
		{"abs-out", "", ErrEscapes},
		{"abs-etc", "", ErrEscapes},
		{"abs-root/file", "", ErrEscapes},
		{"dir/rel-out", "", ErrEscapes},
		{"chain-a", "", ErrEscapes},
		{"chain-b", "", ErrEscapes},
		{"dir-out", "", ErrEscapes},
		{"dir-out/secret", "", ErrEscapes},
		{"dir-out-abs/secret", "", ErrEscapes},
		{"dot/dir-out/secret", "", ErrEscapes},
		{"proc-root/etc/passwd", "", ErrEscapes},
		{"proc-root" + filepath.Join(top, "outside/secret"), "", ErrEscapes},
		{"proc-fd", "", ErrEscapes},
		{"proc-fd-rel", "", ErrEscapes},
		{"loop", "", ErrEscapes}, // ELOOP: a loop cannot be told from a magic link
		{"loop-a", "", ErrEscapes},
		{"loop/x", "", ErrEscapes},

		// Literal names that only look hostile.
		{"%2e%2e/outside/secret", "", ErrNotFound},
		{"%2e%2e%2foutside%2fsecret", "", ErrNotFound},
		{`..\outside\secret`, "", ErrNotFound},
		{"~", "", ErrNotFound},
		{"~/secret", "", ErrNotFound},
		{".../outside/secret", "", ErrNotFound},
		{" ../outside/secret", "", ErrNotFound},
		{"\u2025/outside/secret", "", ErrNotFound},       // two dot leader
		{"\uff0e\uff0e/outside/secret", "", ErrNotFound}, // fullwidth full stops
		{`fi\x00le`, "", ErrNotFound},
		{strings.Repeat("n", 255), "", ErrNotFound},
		{"dir-out/../root/file", "", ErrNotFound}, // cleaned lexically to "root/file"
		{"file/x", "", ErrNotFound},               // ENOTDIR
		{"fifo/x", "", ErrNotFound},

		// Neither files nor openable: a socket, devices without a driver.
		{"sock", "", ErrNotRegular},
		{"nodev-chr", "", ErrNotRegular},
		{"nodev-blk", "", ErrNotRegular},

		// Allowed: names inside the root, however they are spelt.
		{`..\x`, "backslash", nil},
		{"file", "file", nil},
		{"./file", "file", nil},
		{"dir/../file", "file", nil},
		{"file/", "file", nil}, // cleaned lexically to "file"
		{"dir/up", "file", nil},
		{"dot/dot/file", "file", nil},
		{".", "<dir>", nil},
		{"dir/", "<dir>", nil},
		{"hardlink", "linked", nil},
		{"fifo", "", ErrNotRegular}, // refused before it is opened: see TestOpenLeavesFIFOAlone
		{"null", "", ErrNotRegular}, // a device is never opened
	}
	devices := map[string]bool{"null": true, "nodev-chr": true, "nodev-blk": true}
	for _, tt := range tests {
		if _, err := os.Lstat(filepath.Join(dir, tt.name)); err != nil && devices[tt.name] {
			continue // mknod was refused
		}
		f, err := root.Open(tt.name)
		// The error may echo the name, and only the name.
		if err != nil && strings.Contains(err.Error(), top) && !strings.Contains(tt.name, top) {
			t.Errorf("Open(%.60q) error %q names the host path %q", tt.name, err, top)
		}
		if _, serr := root.Stat(tt.name); !errors.Is(serr, tt.err) || (serr == nil) != (tt.err == nil) {
			t.Errorf("Stat(%.60q) = %v, want %v", tt.name, serr, tt.err)
		}
		if tt.err != nil {
			if !errors.Is(err, tt.err) {
				t.Errorf("Open(%.60q) = %v, want %v", tt.name, err, tt.err)
			}
			if f != nil {
				f.Close()
			}
			continue
		}
		if err != nil {
			t.Errorf("Open(%.60q) = %v, want %s", tt.name, err, tt.want)
			continue
		}
		fi, err := f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		if os.SameFile(fi, secretFI) {
			t.Errorf("Open(%.60q) opened the secret outside the root", tt.name)
		}
		if tt.name == "hardlink" && !os.SameFile(fi, linkedFI) {
			t.Errorf("Open(%q) opened %v, want the hardlinked outside file", tt.name, fi)
		}
		if got := describe(t, f, fi); got != tt.want {
			t.Errorf("Open(%.60q) opened %q, want %q", tt.name, got, tt.want)
		}
		if strings.Contains(f.Name(), top) {
			t.Errorf("Open(%.60q).Name() = %q names the host path", tt.name, f.Name())
		}
		f.Close()
	}
}

// describe returns a regular file's content (checking it is not the
// secret) or what kind of file f is.
func describe(t *testing.T, f *os.File, fi os.FileInfo) string {
	t.Helper()
	switch m := fi.Mode(); {
	case m.IsDir():
		return "<dir>"
	case m&os.ModeNamedPipe != 0:
		return "<fifo>"
	case m&os.ModeDevice != 0:
		return "<device>"
	case !m.IsRegular():
		return "<" + m.String() + ">"
	}
	b, err := io.ReadAll(io.LimitReader(f, 1<<10))
	if err != nil {
		t.Fatalf("reading %s: %v", f.Name(), err)
	}
	if strings.Contains(string(b), secret) {
		t.Errorf("%s returned the secret", f.Name())
	}
	return string(b)
}

// TestRootMagicLinkViaSymlink serves /proc, where "self" and
// "thread-self" are ordinary symlinks inside the root and "root", "cwd",
// "exe" and "fd/N" below them are magic links out of it.
func TestRootMagicLinkViaSymlink(t *testing.T) {
	root, err := OpenRoot("/proc")
	if err != nil {
		t.Skip(err)
	}
	defer root.Close()
	sf, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	defer sf.Close()
	fd := strconv.Itoa(int(sf.Fd()))
	for _, name := range []string{
		"self/root/etc/passwd", "self/root", "self/cwd", "self/exe",
		"self/fd/" + fd, "self/fd/" + fd + "/", "thread-self/root/etc/passwd",
		strconv.Itoa(os.Getpid()) + "/root/etc/passwd",
	} {
		if f, err := root.Open(name); !errors.Is(err, ErrEscapes) {
			t.Errorf("Open(%q) beneath /proc = %v, %v; want %v", name, f, err, ErrEscapes)
			if f != nil {
				f.Close()
			}
		}
	}
	f, err := root.Open("self/status")
	if err != nil {
		t.Fatalf("Open(%q) beneath /proc = %v, want a file", "self/status", err)
	}
	f.Close()
}
