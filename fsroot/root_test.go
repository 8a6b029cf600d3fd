package fsroot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestCleanPath(t *testing.T) {
	long := strings.Repeat("a/", maxPathLen/2) + "a"
	tests := []struct {
		name string
		want string
		err  error
	}{
		{"a", "a", nil},
		{"a/b", "a/b", nil},
		{"./a", "a", nil},
		{"a/", "a", nil},
		{"a//b", "a/b", nil},
		{"a/b/../c", "a/c", nil},
		{"a/..", ".", nil},
		{".", ".", nil},
		{"..foo", "..foo", nil}, // a name, not a climb
		{"a/..b", "a/..b", nil},
		{"ünïcødé", "ünïcødé", nil},
		{strings.Repeat("a", maxPathLen), strings.Repeat("a", maxPathLen), nil},
		{"", "", ErrInvalidPath},
		{"..", "", ErrInvalidPath},
		{"../x", "", ErrInvalidPath},
		{"a/../../x", "", ErrInvalidPath},
		{"a/b/../../..", "", ErrInvalidPath},
		{"/etc/passwd", "", ErrInvalidPath},
		{"/", "", ErrInvalidPath},
		{"/proc/self/root/etc/passwd", "", ErrInvalidPath},
		{"a\x00b", "", ErrInvalidPath},
		{"\x00", "", ErrInvalidPath},
		{"a\xffb", "", ErrInvalidPath},
		{"\xc3", "", ErrInvalidPath},
		{long, "", ErrInvalidPath},
	}
	for _, tt := range tests {
		got, err := CleanPath(tt.name)
		if got != tt.want || !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
			t.Errorf("CleanPath(%.40q) = %q, %v; want %q, %v", tt.name, got, err, tt.want, tt.err)
		}
	}
}

// TestRootOpen opens names beneath a root laid out as:
//
//	secret                  (outside the root)
//	root/file
//	root/dir/nested
//	root/fifo
//	root/link-in         -> file
//	root/dir/link-up     -> ../file
//	root/dir/link-abs-in -> <root>/file      (absolute, so refused)
//	root/link-abs-out    -> /etc/passwd
//	root/link-rel-out    -> ../secret
//	root/link-far-out    -> ../../../../../../../../etc/passwd
//	root/link-proc       -> /proc/self/root/etc/passwd
//	root/link-dir-out    -> ..
//	root/loop            -> loop
func TestRootOpen(t *testing.T) {
	top := t.TempDir()
	dir := filepath.Join(top, "root")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "dir"), 0o755))
	must(os.WriteFile(filepath.Join(top, "secret"), []byte("secret"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "file"), []byte("file"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "dir", "nested"), []byte("nested"), 0o644))
	must(syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644))
	links := map[string]string{
		"link-in":         "file",
		"dir/link-up":     "../file",
		"dir/link-abs-in": filepath.Join(dir, "file"),
		"link-abs-out":    "/etc/passwd",
		"link-rel-out":    "../secret",
		"link-far-out":    "../../../../../../../../etc/passwd",
		"link-proc":       "/proc/self/root/etc/passwd",
		"link-dir-out":    "..",
		"loop":            "loop",
	}
	for name, target := range links {
		must(os.Symlink(target, filepath.Join(dir, name)))
	}
	root, err := OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()

	tests := []struct {
		name string
		want string // content; "<dir>" for a directory, "<fifo>" for a FIFO
		err  error
	}{
		{"file", "file", nil},
		{"./file", "file", nil},
		{"dir/nested", "nested", nil},
		{"dir/../file", "file", nil},
		{"link-in", "file", nil},
		{"dir/link-up", "file", nil},
		{"dir", "<dir>", nil},
		{".", "<dir>", nil},
		{"fifo", "", ErrNotRegular}, // refused before it is opened
		{"missing", "", ErrNotFound},
		{"dir/missing", "", ErrNotFound},
		{"file/x", "", ErrNotFound},
		{"../secret", "", ErrInvalidPath},
		{"a/../../secret", "", ErrInvalidPath},
		{"/etc/passwd", "", ErrInvalidPath},
		{"/proc/self/root/etc/passwd", "", ErrInvalidPath},
		{"", "", ErrInvalidPath},
		{"a\x00b", "", ErrInvalidPath},
		{"\xff", "", ErrInvalidPath},
		{strings.Repeat("n", 300), "", ErrInvalidPath},
		{"dir/link-abs-in", "", ErrEscapes},
		{"link-abs-out", "", ErrEscapes},
		{"link-rel-out", "", ErrEscapes},
		{"link-far-out", "", ErrEscapes},
		{"link-proc", "", ErrEscapes},
		{"link-dir-out/secret", "", ErrEscapes},
		{"link-dir-out/root/file", "", ErrEscapes},
		{"loop", "", ErrEscapes}, // ELOOP, which magic links give too
	}
	for _, tt := range tests {
		f, err := root.Open(tt.name)
		if tt.err != nil {
			if !errors.Is(err, tt.err) {
				t.Errorf("Open(%.40q) = %v, %v; want %v", tt.name, f, err, tt.err)
			}
			if err != nil && (strings.Contains(err.Error(), top) || strings.Contains(err.Error(), "/tmp")) {
				t.Errorf("Open(%.40q) error %q names the host path %q", tt.name, err, top)
			}
			if f != nil {
				f.Close()
			}
			continue
		}
		if err != nil {
			t.Errorf("Open(%q) = %v, want %s", tt.name, err, tt.want)
			continue
		}
		fi, err := f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		got := "<dir>"
		switch {
		case fi.Mode()&os.ModeNamedPipe != 0:
			got = "<fifo>"
		case !fi.IsDir():
			buf := make([]byte, 64)
			n, _ := f.Read(buf)
			got = string(buf[:n])
		}
		if got != tt.want {
			t.Errorf("Open(%q) opened %q, want %q", tt.name, got, tt.want)
		}
		if strings.Contains(f.Name(), top) {
			t.Errorf("Open(%q).Name() = %q names the host path", tt.name, f.Name())
		}
		f.Close()
	}

	// Root.Stat follows the same rules.
	if fi, err := root.Stat("link-in"); err != nil || fi.Size() != 4 {
		t.Errorf("Stat(%q) = %v, %v; want a 4-byte file", "link-in", fi, err)
	}
	if _, err := root.Stat("link-abs-out"); !errors.Is(err, ErrEscapes) {
		t.Errorf("Stat(%q) = %v, want %v", "link-abs-out", err, ErrEscapes)
	}
}

// TestRootMagicLinks serves /proc/self, whose entries "root", "cwd" and
// "fd/N" are magic links out of any root.
func TestRootMagicLinks(t *testing.T) {
	root, err := OpenRoot("/proc/self")
	if err != nil {
		t.Skip(err)
	}
	defer root.Close()
	for _, name := range []string{"root/etc/passwd", "cwd", "exe", "fd/0"} {
		if f, err := root.Open(name); !errors.Is(err, ErrEscapes) {
			t.Errorf("Open(%q) beneath /proc/self = %v, %v; want %v", name, f, err, ErrEscapes)
			if f != nil {
				f.Close()
			}
		}
	}
	f, err := root.Open("status")
	if err != nil {
		t.Errorf("Open(%q) beneath /proc/self = %v, want a file", "status", err)
	} else {
		f.Close()
	}
}

func TestOpenRootErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{filepath.Join(dir, "missing"), file} {
		if r, err := OpenRoot(name); err == nil {
			r.Close()
			t.Errorf("OpenRoot(%q) = nil error, want one", name)
		}
	}
}

// TestOpenLeavesFIFOAlone: Open and Stat of a FIFO that a writer is
// blocked on refuse it without opening it, so the writer stays blocked
// (opening the FIFO for reading would let its open(2) return). The
// writer is a goroutine in a blocking open; the wait for it is bounded
// and checks that nothing happened, then the test opens the FIFO itself
// to release it, which shows the check could see a release.
func TestOpenLeavesFIFOAlone(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	root, err := OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	released := make(chan int, 1)
	go func() {
		fd, _ := unix.Open(fifo, unix.O_WRONLY|unix.O_CLOEXEC, 0) // blocks until a reader opens
		released <- fd
	}()
	if f, err := root.Open("fifo"); !errors.Is(err, ErrNotRegular) {
		t.Errorf("Open(fifo) = %v, %v; want %v", f, err, ErrNotRegular)
	}
	if fi, err := root.Stat("fifo"); !errors.Is(err, ErrNotRegular) {
		t.Errorf("Stat(fifo) = %v, %v; want %v", fi, err, ErrNotRegular)
	}
	select {
	case fd := <-released:
		unix.Close(fd)
		t.Fatal("the FIFO's blocked writer was released: something opened it for reading")
	case <-time.After(200 * time.Millisecond):
	}
	r, err := unix.Open(fifo, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(r)
	unix.Close(<-released)
}

// TestListTooDeep: a recursive listing stops at MaxListDepth levels
// below the root with ErrTooDeep, rather than hold a directory descriptor
// for every level of an arbitrarily deep tree; a listing of the deep
// directory's own level still works.
func TestListTooDeep(t *testing.T) {
	dir := t.TempDir()
	deep := dir
	for range MaxListDepth + 2 {
		deep = filepath.Join(deep, "d")
	}
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	root, err := OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if got, err := root.List(".", true, "", 1000); !errors.Is(err, ErrTooDeep) {
		t.Errorf("List(., recursive) of %d levels = %d entries, %v; want %v", MaxListDepth+2, len(got), err, ErrTooDeep)
	}
	if got, err := root.List("d", false, "", 10); err != nil || len(got) != 1 {
		t.Errorf("List(d) = %v, %v; want its one entry", got, err)
	}
}

// TestListShortPageMeansEnd: entries that vanish between the directory's
// read and their stat leave the bounded batch of names short; the page
// must then read on, not come back short (a short page is the end of
// the listing to its caller).
func TestListShortPageMeansEnd(t *testing.T) {
	dir := t.TempDir()
	for i := range 100 {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%03d", i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	root, err := OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	defer func() { testHookListed = nil }()
	for _, recursive := range []bool{false, true} {
		testHookListed = func() {
			testHookListed = nil
			for i := range 30 { // more than a 10-entry page's batch holds
				os.Remove(filepath.Join(dir, fmt.Sprintf("f%03d", i)))
			}
		}
		got, err := root.List(".", recursive, "", 10)
		if err != nil || len(got) != 10 || got[0].Path <= "f029" {
			t.Errorf("List(recursive %v, 10) with entries vanishing mid-page = %d entries from %v, %v; want 10 from f030 on",
				recursive, len(got), got, err)
		}
		for i := range 30 { // back for the next round
			os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%03d", i)), nil, 0o644)
		}
	}
}

// TestReopenIsTheCheckedFile: Open checks a name's type on an O_PATH
// descriptor and then opens that very file for reading, not the name
// again: a FIFO renamed over the name in between is not what it opens.
func TestReopenIsTheCheckedFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	root, err := OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	pfd, err := root.openPath("f")
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pfd)
	if err := unix.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "fifo"), filepath.Join(dir, "f")); err != nil {
		t.Fatal(err)
	}
	fd, same, err := root.reopen(pfd, "f")
	if err != nil || !same {
		t.Fatalf("reopen() = %v, same %v; want the very file, through /proc", err, same)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		t.Errorf("reopen after a FIFO replaced the name opened mode %o, %v; want the regular file that was checked", st.Mode, err)
	}
}
