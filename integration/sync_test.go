package integration

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// TestPullSyncRPC drives a directory sync between two nodes with the real
// grpcurl alone, as docs/grpcurl.md shows it: a first Pull with sync
// copies the tree; a second moves no byte; after changes on the peer a
// dry run lists them and changes nothing; the real run with delete makes
// the mirror match.
func TestPullSyncRPC(t *testing.T) {
	grpcurl := toolPath(t, grpcurlTool)
	rootA, rootB := t.TempDir(), t.TempDir()
	files := map[string][]byte{}
	for i := range 20 {
		p := fmt.Sprintf("data/d%d/f%d", i%3, i)
		check(t, os.MkdirAll(filepath.Join(rootA, filepath.Dir(p)), 0o755))
		files[p] = writeRandom(t, rootA, p, 1000*i+1)
	}
	a, b := startFerryd(t, rootA), startFerryd(t, rootB, "--allow-pull")
	pull := func(extra string) []*ferryv1.PullResponse {
		t.Helper()
		body := `{"peer": "` + a.Addr + `", "path": "data", "destination": "mirror", "sync": "SYNC_LEVEL_MTIME"` + extra + `}`
		r := run(t, os.Environ(), grpcurl, "-plaintext", "-d", body, b.Addr, serviceName+"/Pull")
		if r.code != 0 {
			t.Fatalf("grpcurl Pull %s: exit %d\n%s", body, r.code, r.stderr)
		}
		return pullMessages(t, r.stdout)
	}
	last := func(msgs []*ferryv1.PullResponse) *ferryv1.TreeReport {
		t.Helper()
		r := msgs[len(msgs)-1].GetTreeReport()
		if r == nil {
			t.Fatalf("the last message of a directory Pull is not a tree report: %v", msgs[len(msgs)-1])
		}
		return r
	}
	mirror := func() {
		t.Helper()
		var got []string
		filepath.WalkDir(filepath.Join(rootB, "mirror"), func(p string, d os.DirEntry, err error) error {
			check(t, err)
			if d.Type().IsRegular() {
				rel, _ := filepath.Rel(rootB, p)
				got = append(got, rel)
				b, err := os.ReadFile(p)
				check(t, err)
				if want := files["data"+rel[len("mirror"):]]; !bytes.Equal(b, want) {
					t.Errorf("%s: %d bytes, not the peer's %d", rel, len(b), len(want))
				}
			}
			return nil
		})
		if len(got) != len(files) {
			t.Errorf("the mirror holds %d files, the peer %d", len(got), len(files))
		}
	}

	if r := last(pull("")); r.GetFiles() != 20 || r.GetUnchanged() != 0 {
		t.Errorf("first sync: %d files sent, %d unchanged; want 20 and 0", r.GetFiles(), r.GetUnchanged())
	}
	mirror()
	if r := last(pull("")); r.GetFiles() != 0 || r.GetBytes() != 0 || r.GetUnchanged() != 20 || r.GetDataConnections() != 0 {
		t.Errorf("second sync: %d files, %d bytes sent over %d data connections, %d unchanged; want 0, 0, 0 and 20",
			r.GetFiles(), r.GetBytes(), r.GetDataConnections(), r.GetUnchanged())
	}

	check(t, os.Remove(filepath.Join(rootA, "data/d1/f1")))
	delete(files, "data/d1/f1")
	files["data/d2/f2"] = writeRandom(t, rootA, "data/d2/f2", 77)
	files["data/new"] = writeRandom(t, rootA, "data/new", 5)
	before, err := os.ReadFile(filepath.Join(rootB, "mirror/d2/f2"))
	check(t, err)
	msgs := pull(`, "delete": true, "dry_run": true`)
	var changes []string
	for _, m := range msgs {
		if c := m.GetChange(); c != nil {
			changes = append(changes, fmt.Sprintf("%v %s", c.GetAction(), c.GetPath()))
		}
	}
	want := []string{"ACTION_REPLACE d2/f2", "ACTION_SEND new", "ACTION_DELETE d1/f1"}
	if !slices.Equal(changes, want) {
		t.Errorf("dry run's change events: %q, want %q", changes, want)
	}
	if r := last(msgs); !r.GetDryRun() || r.GetFiles() != 2 || r.GetReplaced() != 1 || r.GetDeleted() != 1 || r.GetUnchanged() != 18 {
		t.Errorf("dry run's report: %v", r)
	}
	if now, err := os.ReadFile(filepath.Join(rootB, "mirror/d2/f2")); err != nil || !bytes.Equal(now, before) {
		t.Errorf("the dry run changed mirror/d2/f2 (%v)", err)
	}
	if _, err := os.Stat(filepath.Join(rootB, "mirror/d1/f1")); err != nil {
		t.Errorf("the dry run deleted mirror/d1/f1: %v", err)
	}

	if r := last(pull(`, "delete": true`)); r.GetFiles() != 2 || r.GetReplaced() != 1 || r.GetDeleted() != 1 || r.GetUnchanged() != 18 {
		t.Errorf("sync with delete: %d sent, %d replaced, %d deleted, %d unchanged; want 2, 1, 1, 18",
			r.GetFiles(), r.GetReplaced(), r.GetDeleted(), r.GetUnchanged())
	}
	mirror()

	body := `{"peer": "` + a.Addr + `", "path": "data", "destination": "mirror", "delete": true}`
	r := run(t, os.Environ(), grpcurl, "-plaintext", "-d", body, b.Addr, serviceName+"/Pull")
	if r.code == 0 || !bytes.Contains([]byte(r.stderr), []byte("Code: InvalidArgument")) {
		t.Errorf("grpcurl Pull with delete and no sync: exit %d, stderr %q; want InvalidArgument", r.code, r.stderr)
	}
}

// TestPullSyncCLI runs `ferry pull -r --sync` as a user would: a first
// sync copies the tree, a second moves no byte, --dry-run --delete lists
// the changes and touches nothing, the real run makes DEST match; the
// flags that need --sync or -r without them are usage errors (exit 2).
func TestPullSyncCLI(t *testing.T) {
	root := t.TempDir()
	files := map[string][]byte{}
	for i := range 12 {
		p := fmt.Sprintf("site/d%d/f%d", i%2, i)
		check(t, os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755))
		files[p] = writeRandom(t, root, p, 500*i+3)
	}
	d := startFerryd(t, root)
	dest := filepath.Join(t.TempDir(), "site")

	r := ferryOK(t, "pull", "-r", "--sync", "--server", d.Addr, "site", dest)
	if !strings.Contains(r.stdout, "12 files,") {
		t.Errorf("first sync's summary %q does not say 12 files", r.stdout)
	}
	r = ferryOK(t, "pull", "-r", "site", dest, "--sync", "--json", "--server", d.Addr) // flags after the arguments
	var rep ferryv1.TreeReport
	if err := protojson.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("ferry pull -r --sync --json: %v\n%s", err, r.stdout)
	}
	if rep.GetFiles() != 0 || rep.GetBytes() != 0 || rep.GetUnchanged() != 12 || rep.GetDataConnections() != 0 {
		t.Errorf("second sync: %d files, %d bytes, %d unchanged, %d data connections; want 0, 0, 12, 0",
			rep.GetFiles(), rep.GetBytes(), rep.GetUnchanged(), rep.GetDataConnections())
	}

	files["site/d0/f0"] = writeRandom(t, root, "site/d0/f0", 3) // same size: the checksum level sees it
	check(t, os.Remove(filepath.Join(root, "site/d1/f11")))
	delete(files, "site/d1/f11")
	before, err := os.ReadFile(filepath.Join(dest, "d0/f0"))
	check(t, err)
	r = ferryOK(t, "pull", "-r", "--sync=checksum", "--delete", "--dry-run", "--server", d.Addr, "site", dest)
	if want := "replace d0/f0 (3 B)\ndelete  d1/f11\n"; !strings.HasPrefix(r.stdout, want) || !strings.Contains(r.stdout, "dry run: nothing changed") {
		t.Errorf("ferry pull -r --sync=checksum --delete --dry-run printed %q, want it to start with %q and say it was a dry run", r.stdout, want)
	}
	if now, _ := os.ReadFile(filepath.Join(dest, "d0/f0")); !bytes.Equal(now, before) {
		t.Errorf("the dry run changed d0/f0")
	}
	if _, err := os.Stat(filepath.Join(dest, "d1/f11")); err != nil {
		t.Errorf("the dry run deleted d1/f11: %v", err)
	}
	r = ferryOK(t, "pull", "-r", "--sync=checksum", "--delete", "--server", d.Addr, "site", dest)
	if want := "1 files,"; !strings.Contains(r.stdout, want) || !strings.Contains(r.stdout, "10 unchanged") || !strings.Contains(r.stdout, "1 replaced, 1 deleted") {
		t.Errorf("sync summary %q: want 1 file sent, 10 unchanged, 1 replaced, 1 deleted", r.stdout)
	}
	for p, want := range files {
		got, err := os.ReadFile(filepath.Join(dest, strings.TrimPrefix(p, "site/")))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s after the sync: %d bytes (%v), not the server's %d", p, len(got), err, len(want))
		}
	}
	if _, err := os.Stat(filepath.Join(dest, "d1/f11")); err == nil {
		t.Errorf("--delete kept d1/f11")
	}

	// An exported FERRY_DELETE does not make a sync delete: only the flag does.
	stray := filepath.Join(dest, "stray")
	check(t, os.WriteFile(stray, []byte("mine"), 0o644))
	if r := ferryEnv(t, []string{"FERRY_DELETE=true"}, "pull", "-r", "--sync", "--server", d.Addr, "site", dest); r.code != 0 {
		t.Fatalf("sync with FERRY_DELETE set: exit %d\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat(stray); err != nil {
		t.Errorf("FERRY_DELETE=true made a sync without --delete remove stray: %v", err)
	}

	for _, args := range [][]string{
		{"pull", "-r", "--sync", "site"}, // no DEST: a sync's is named, never derived
		{"pull", "-r", "--delete", "site", dest},
		{"pull", "-r", "--dry-run", "site", dest},
		{"pull", "--sync", "site/d0/f0", filepath.Join(dest, "x")},
		{"pull", "-r", "--sync=sometimes", "site", dest},
	} {
		if r := ferry(t, append(args, "--server", d.Addr)...); r.code != 2 || r.stdout != "" {
			t.Errorf("ferry %q: exit %d, stdout %q; want a usage error (exit 2) and no output", args, r.code, r.stdout)
		}
	}
}

// TestPullSyncReadOnlyDirs syncs, as an unprivileged user (uid 65534), a
// tree whose directories are read-only (0555) on the server, twice: the
// first sync makes the copies read-only too, and the second must still
// land a new file in them (and leave them read-only again). Root ignores
// permission bits, so the test needs root to act as another user.
func TestPullSyncReadOnlyDirs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("running the CLI as uid 65534 needs root")
	}
	const nobody = 65534
	root := t.TempDir()
	check(t, os.MkdirAll(filepath.Join(root, "site/ro"), 0o755))
	writeRandom(t, root, "site/ro/a", 100)
	check(t, os.Chmod(filepath.Join(root, "site/ro"), 0o555))
	check(t, os.Chmod(filepath.Join(root, "site"), 0o555))
	d := startFerryd(t, root)

	// A directory nobody can reach, holding a copy of the CLI and DEST.
	home, err := os.MkdirTemp("", "ferry-nobody-*")
	check(t, err)
	t.Cleanup(func() { os.RemoveAll(home) })
	check(t, os.Chmod(home, 0o755))
	check(t, os.Chown(home, nobody, nobody))
	exe := filepath.Join(home, "ferry")
	b, err := os.ReadFile(bin.ferry)
	check(t, err)
	check(t, os.WriteFile(exe, b, 0o755))
	dest := filepath.Join(home, "site")
	sync := func() {
		t.Helper()
		cmd := exec.Command(exe, "pull", "-r", "--sync", "--server", d.Addr, "site", dest)
		cmd.Env = cleanEnv()
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("ferry pull -r --sync as uid %d: %v\n%s", nobody, err, out)
		}
	}
	sync()
	for _, p := range []string{dest, filepath.Join(dest, "ro")} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o555 {
			t.Fatalf("%s after the first sync: %v, %v; want mode 0555, as on the server", p, fi.Mode(), err)
		}
	}
	check(t, os.WriteFile(filepath.Join(root, "site/ro/b"), []byte("new"), 0o644)) // root writes into 0555
	sync()
	if got, err := os.ReadFile(filepath.Join(dest, "ro/b")); err != nil || string(got) != "new" {
		t.Errorf("the second sync did not land ro/b: %q, %v", got, err)
	}
	if fi, err := os.Stat(filepath.Join(dest, "ro")); err != nil || fi.Mode().Perm() != 0o555 {
		t.Errorf("ro after the second sync: %v, %v; want 0555 again", fi.Mode(), err)
	}
}
