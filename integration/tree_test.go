package integration

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// makeTree builds dir/tree for the directory-pull tests: nested
// directories, an empty one, 300 small files and an empty one, a symlink
// inside the tree, one out of it and a FIFO, with distinct times. It
// returns the number of regular files.
func makeTree(t *testing.T, dir string) int {
	t.Helper()
	top := filepath.Join(dir, "tree")
	for _, d := range []string{"a/b", "empty", "many"} {
		if err := os.MkdirAll(filepath.Join(top, d), 0o750); err != nil {
			t.Fatal(err)
		}
	}
	writeRandom(t, top, "top.bin", 1<<20+3)
	writeRandom(t, filepath.Join(top, "a/b"), "zero", 0)
	for i := range 300 {
		writeRandom(t, filepath.Join(top, "many"), fmt.Sprintf("f%03d", i), 1+i*13)
	}
	os.Chmod(filepath.Join(top, "top.bin"), 0o600)
	if err := os.Symlink("../top.bin", filepath.Join(top, "a/in")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../etc", filepath.Join(top, "a/out")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(top, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	when := time.Date(2021, 6, 7, 8, 9, 10, 0, time.UTC)
	for _, d := range []string{"many", "a/b", "a", "empty", "."} {
		when = when.Add(time.Hour)
		os.Chtimes(filepath.Join(top, d), when, when)
	}
	return 302
}

// sameTree fails the test unless got holds want's regular files (bytes,
// mode, mtime), directories (mode, mtime) and its symlink a/in, and
// nothing else.
func sameTree(t *testing.T, want, got string) {
	t.Helper()
	n := 0
	filepath.WalkDir(want, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(want, p)
		wi, _ := os.Lstat(p)
		gi, err := os.Lstat(filepath.Join(got, rel))
		kept := wi.Mode().IsRegular() || wi.IsDir() || rel == "a/in"
		if !kept {
			if err == nil {
				t.Errorf("%s (%v) was copied", rel, wi.Mode().Type())
			}
			return nil
		}
		n++
		if err != nil {
			t.Errorf("%s missing from the copy: %v", rel, err)
			return nil
		}
		if gi.Mode() != wi.Mode() || (wi.Mode().Type() != fs.ModeSymlink && !gi.ModTime().Equal(wi.ModTime())) {
			t.Errorf("%s: mode %v, mtime %v; want %v, %v", rel, gi.Mode(), gi.ModTime(), wi.Mode(), wi.ModTime())
		}
		if wi.Mode().IsRegular() {
			wb, _ := os.ReadFile(p)
			gb, _ := os.ReadFile(filepath.Join(got, rel))
			if !bytes.Equal(wb, gb) {
				t.Errorf("%s: %d bytes differ from the source's %d", rel, len(gb), len(wb))
			}
		}
		return nil
	})
	m := 0
	filepath.WalkDir(got, func(string, fs.DirEntry, error) error { m++; return nil })
	if m != n {
		t.Errorf("the copy holds %d entries, want %d", m, n)
	}
}

// TestPullTreeCLI runs the built `ferry pull -r` against a real ferryd:
// the tree lands byte for byte with modes and times, the --json report
// counts it, and the files shared at most --concurrency data connections.
func TestPullTreeCLI(t *testing.T) {
	root, out := t.TempDir(), t.TempDir()
	files := makeTree(t, root)
	d := startFerryd(t, root)
	dest := filepath.Join(out, "copy")
	r := ferryOK(t, "pull", "-r", "--json", "--concurrency", "3", "--server", d.Addr, "tree", dest)
	var rep ferryv1.TreeReport
	if err := protojson.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("ferry pull -r --json printed no TreeReport: %v\n%s", err, r.stdout)
	}
	sameTree(t, filepath.Join(root, "tree"), dest)
	if rep.Files != uint64(files) || rep.Directories != 5 || rep.Symlinks != 1 || rep.Skipped != 2 {
		t.Errorf("report: %d files, %d directories, %d symlinks, %d skipped; want %d, 5, 1, 2",
			rep.Files, rep.Directories, rep.Symlinks, rep.Skipped, files)
	}
	if rep.DataConnections > 3 || rep.Sender.GetBytes() != rep.Receiver.GetBytes() || rep.Bytes != rep.Receiver.GetBytes() {
		t.Errorf("report: %d data connections (want at most 3), sender %d bytes, receiver %d, bytes %d",
			rep.DataConnections, rep.Sender.GetBytes(), rep.Receiver.GetBytes(), rep.Bytes)
	}
	again := ferry(t, "pull", "-r", "--server", d.Addr, "tree", dest)
	if want := "ferry: " + dest + ": destination exists (use --overwrite to merge into it)\n"; again.code != 1 || again.stderr != want {
		t.Errorf("ferry pull -r onto an existing directory: exit %d, stderr %q; want exit 1, stderr %q", again.code, again.stderr, want)
	}
	human := ferryOK(t, "pull", "-r", "--overwrite", "--server", d.Addr, "tree", dest)
	if want := fmt.Sprintf("%d files, 5 directories, 1 symlinks, 2 skipped", files); !strings.Contains(human.stdout, want) {
		t.Errorf("ferry pull -r summary = %q, want it to say %q", human.stdout, want)
	}
	sameTree(t, filepath.Join(root, "tree"), dest)
}

// TestPullTreeRPC asks ferryd B, with the real grpcurl, to pull a
// directory from ferryd A: progress counts files, the last message is the
// tree_report, and the tree lands beneath B's root.
func TestPullTreeRPC(t *testing.T) {
	grpcurl := toolPath(t, grpcurlTool)
	rootA, rootB := t.TempDir(), t.TempDir()
	files := makeTree(t, rootA)
	a, b := startFerryd(t, rootA), startFerryd(t, rootB, "--allow-pull")
	body := `{"peer": "` + a.Addr + `", "path": "tree", "destination": "copy", "concurrency": 2}`
	r := run(t, os.Environ(), grpcurl, "-plaintext", "-d", body, b.Addr, serviceName+"/Pull")
	if r.code != 0 {
		t.Fatalf("grpcurl Pull (directory): exit %d\n%s", r.code, r.stderr)
	}
	msgs := pullMessages(t, r.stdout)
	rep := msgs[len(msgs)-1].GetTreeReport()
	if rep == nil {
		t.Fatalf("grpcurl Pull (directory): last message is not a tree_report:\n%s", r.stdout)
	}
	if rep.Files != uint64(files) || rep.DataConnections < 1 || rep.DataConnections > 2 {
		t.Errorf("tree_report: %d files over %d data connections; want %d over 1 or 2", rep.Files, rep.DataConnections, files)
	}
	sameTree(t, filepath.Join(rootA, "tree"), filepath.Join(rootB, "copy"))
	again := run(t, os.Environ(), grpcurl, "-plaintext", "-d", body, b.Addr, serviceName+"/Pull")
	if again.code == 0 || !strings.Contains(again.stderr, "Code: AlreadyExists") {
		t.Errorf("grpcurl Pull onto an existing directory: exit %d, stderr %q; want Code: AlreadyExists", again.code, again.stderr)
	}
}
