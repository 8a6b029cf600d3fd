package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/client"
	"github.com/ferrydev/ferry/fsroot"
	"github.com/ferrydev/ferry/service"
)

// snapshot describes every entry below dir: a file by its bytes, mode and
// time, a symlink by its target, a directory by its mode.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			out[rel] = "link " + target
		case fi.IsDir():
			out[rel] = fmt.Sprintf("dir %v", fi.Mode().Perm())
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out[rel] = fmt.Sprintf("file %v %d %x", fi.Mode().Perm(), fi.ModTime().UnixNano(), b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sameTree fails unless dest holds what src holds, mode and time of files
// included.
func sameTree(t *testing.T, src, dest string) {
	t.Helper()
	s, d := snapshot(t, src), snapshot(t, dest)
	for _, k := range slices.Sorted(maps.Keys(s)) {
		if d[k] != s[k] {
			t.Errorf("%s: destination has %.60q, source %.60q", k, d[k], s[k])
		}
	}
	for k := range d {
		if _, ok := s[k]; !ok {
			t.Errorf("%s: in the destination only (%.60q)", k, d[k])
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, p string, b []byte) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(p), 0o755))
	must(t, os.WriteFile(p, b, 0o644))
}

// syncTree syncs the node's "t" into dest at level and checks the counts
// of the receiver's report: sent files, unchanged files, replaced,
// deleted.
func syncTree(t *testing.T, c *client.Client, dest string, opts client.TreeOptions, sent, unchanged, replaced, deleted uint64) *ferryv1.TreeReport {
	t.Helper()
	r, err := c.DownloadTree(testCtx(t), "t", dest, opts)
	if err != nil {
		t.Fatalf("sync at %v (delete %v, dry run %v): %v", opts.Sync, opts.Delete, opts.DryRun, err)
	}
	got := []uint64{r.GetFiles(), r.GetUnchanged(), r.GetReplaced(), r.GetDeleted()}
	if want := []uint64{sent, unchanged, replaced, deleted}; !slices.Equal(got, want) {
		t.Errorf("sync at %v (delete %v, dry run %v): files sent, unchanged, replaced, deleted = %v, want %v",
			opts.Sync, opts.Delete, opts.DryRun, got, want)
	}
	return r
}

// TestSyncTreeLevels syncs a tree, then again unchanged at every level
// (nothing moves), then after changes each level must see, or may not.
func TestSyncTreeLevels(t *testing.T) {
	c, root := startNodeRoot(t, service.Config{}, nil)
	src := filepath.Join(root, "t")
	files := map[string][]byte{
		"a": randomBytes(4 << 10), "b": randomBytes(100 << 10), "sub/c": randomBytes(1 << 20), "sub/deep/d": randomBytes(10),
	}
	var total uint64
	for p, b := range files {
		writeFile(t, filepath.Join(src, p), b)
		total += uint64(len(b))
	}
	must(t, os.Symlink("a", filepath.Join(src, "link")))
	dest := filepath.Join(t.TempDir(), "dest")

	const (
		exists   = ferryv1.SyncLevel_SYNC_LEVEL_EXISTS
		size     = ferryv1.SyncLevel_SYNC_LEVEL_SIZE
		mtime    = ferryv1.SyncLevel_SYNC_LEVEL_MTIME
		checksum = ferryv1.SyncLevel_SYNC_LEVEL_CHECKSUM
	)
	r := syncTree(t, c, dest, client.TreeOptions{Sync: mtime}, 4, 0, 0, 0) // dest does not exist yet
	if r.GetBytes() != total {
		t.Errorf("first sync moved %d bytes, want %d", r.GetBytes(), total)
	}
	sameTree(t, src, dest)

	for _, level := range []ferryv1.SyncLevel{exists, size, mtime, checksum} {
		r := syncTree(t, c, dest, client.TreeOptions{Sync: level}, 0, 4, 0, 0)
		if r.GetBytes() != 0 || r.GetUnchangedBytes() != total || r.GetReceiver().GetBytes() != 0 || r.GetDataConnections() != 0 {
			t.Errorf("unchanged sync at %v: bytes %d, unchanged bytes %d (want 0 and %d), receiver bytes %d, data connections %d (want 0)",
				level, r.GetBytes(), r.GetUnchangedBytes(), total, r.GetReceiver().GetBytes(), r.GetDataConnections())
		}
		sameTree(t, src, dest)
	}

	// New bytes in a, same size and time: only the checksum level sees it.
	a := filepath.Join(src, "a")
	fi, err := os.Stat(a)
	must(t, err)
	writeFile(t, a, randomBytes(4<<10))
	must(t, os.Chtimes(a, fi.ModTime(), fi.ModTime()))
	for _, level := range []ferryv1.SyncLevel{exists, size, mtime} {
		syncTree(t, c, dest, client.TreeOptions{Sync: level}, 0, 4, 0, 0)
	}
	syncTree(t, c, dest, client.TreeOptions{Sync: checksum}, 1, 3, 1, 0)
	sameTree(t, src, dest)

	// Same size, new time: the MTIME level sends it; SIZE gives the
	// destination's copy the new time without moving a byte.
	b := filepath.Join(src, "b")
	later := time.Now().Add(time.Hour).Truncate(time.Second)
	must(t, os.Chtimes(b, later, later))
	syncTree(t, c, dest, client.TreeOptions{Sync: size}, 0, 4, 0, 0)
	sameTree(t, src, dest)
	must(t, os.Chtimes(b, later.Add(time.Second), later.Add(time.Second)))
	syncTree(t, c, dest, client.TreeOptions{Sync: mtime}, 1, 3, 1, 0)
	sameTree(t, src, dest)

	// A new file, a changed size, a file gone from the source: without
	// Delete the destination keeps it; with Delete it goes.
	writeFile(t, filepath.Join(src, "new"), []byte("new"))
	writeFile(t, filepath.Join(src, "sub/c"), randomBytes(5))
	must(t, os.RemoveAll(filepath.Join(src, "sub/deep")))
	syncTree(t, c, dest, client.TreeOptions{Sync: size}, 2, 2, 1, 0)
	if _, err := os.Stat(filepath.Join(dest, "sub/deep/d")); err != nil {
		t.Errorf("a sync without Delete removed sub/deep/d: %v", err)
	}
	syncTree(t, c, dest, client.TreeOptions{Sync: size, Delete: true}, 0, 4, 0, 1) // sub/deep, once
	sameTree(t, src, dest)
}

// TestSyncTreeTypeChanges turns files into directories and symlinks and
// back: each is replaced; a directory gives way to a file or symlink only
// with Delete.
func TestSyncTreeTypeChanges(t *testing.T) {
	c, root := startNodeRoot(t, service.Config{}, nil)
	src := filepath.Join(root, "t")
	writeFile(t, filepath.Join(src, "f2dir"), []byte("file"))
	writeFile(t, filepath.Join(src, "dir2f/x"), []byte("x"))
	writeFile(t, filepath.Join(src, "f2link"), []byte("file"))
	writeFile(t, filepath.Join(src, "dir2link/y"), []byte("y"))
	must(t, os.Symlink("f2dir", filepath.Join(src, "link2f")))
	must(t, os.Symlink("f2dir", filepath.Join(src, "link2link")))
	dest := filepath.Join(t.TempDir(), "dest")
	syncTree(t, c, dest, client.TreeOptions{Sync: ferryv1.SyncLevel_SYNC_LEVEL_MTIME}, 4, 0, 0, 0)
	sameTree(t, src, dest)

	must(t, os.Remove(filepath.Join(src, "f2dir")))
	writeFile(t, filepath.Join(src, "f2dir/inside"), []byte("inside"))
	must(t, os.RemoveAll(filepath.Join(src, "dir2f")))
	writeFile(t, filepath.Join(src, "dir2f"), []byte("now a file"))
	must(t, os.Remove(filepath.Join(src, "f2link")))
	must(t, os.Symlink("dir2f", filepath.Join(src, "f2link")))
	must(t, os.RemoveAll(filepath.Join(src, "dir2link")))
	must(t, os.Symlink("f2dir", filepath.Join(src, "dir2link")))
	must(t, os.Remove(filepath.Join(src, "link2f")))
	writeFile(t, filepath.Join(src, "link2f"), []byte("now a file too"))
	must(t, os.Remove(filepath.Join(src, "link2link")))
	must(t, os.Symlink("dir2f", filepath.Join(src, "link2link")))

	before := snapshot(t, dest)
	_, err := c.DownloadTree(testCtx(t), "t", dest, client.TreeOptions{Sync: ferryv1.SyncLevel_SYNC_LEVEL_MTIME})
	if !errors.Is(err, fsroot.ErrExists) || !strings.Contains(err.Error(), "delete") {
		t.Errorf("sync over a directory the tree has as a file, without Delete: %v, want ErrExists naming delete", err)
	}
	// dir2f comes first in walk order, so the refusal changes nothing.
	if got := snapshot(t, dest); !maps.Equal(got, before) {
		t.Errorf("the refused sync changed the destination:\nbefore %v\nafter  %v", before, got)
	}
	// f2dir (file → dir), dir2f (dir → file), f2link, dir2link, link2f and
	// link2link are replaced; f2dir/inside, dir2f and link2f are files sent.
	syncTree(t, c, dest, client.TreeOptions{Sync: ferryv1.SyncLevel_SYNC_LEVEL_MTIME, Delete: true}, 3, 0, 6, 0)
	sameTree(t, src, dest)
}

// TestSyncTreeDryRun: a dry run changes nothing, moves no byte, and
// lists what the sync then does.
func TestSyncTreeDryRun(t *testing.T) {
	c, root := startNodeRoot(t, service.Config{}, nil)
	src := filepath.Join(root, "t")
	writeFile(t, filepath.Join(src, "keep"), []byte("keep"))
	writeFile(t, filepath.Join(src, "change"), []byte("old"))
	writeFile(t, filepath.Join(src, "d/gone"), []byte("gone"))
	dest := filepath.Join(t.TempDir(), "dest")

	var changes []string
	opts := client.TreeOptions{Sync: ferryv1.SyncLevel_SYNC_LEVEL_CHECKSUM, Delete: true, DryRun: true,
		Changes: func(c *ferryv1.TreeChange) {
			changes = append(changes, fmt.Sprintf("%v %s %d", c.GetAction(), c.GetPath(), c.GetSize()))
		}}
	r := syncTree(t, c, dest, opts, 3, 0, 0, 0)
	if _, err := os.Lstat(dest); !errors.Is(err, fs.ErrNotExist) || !r.GetDryRun() || r.GetSender().GetBytes() != 0 {
		t.Errorf("dry run into a new destination: it exists (%v), dry_run %v, sender bytes %d", err, r.GetDryRun(), r.GetSender().GetBytes())
	}
	want := []string{"ACTION_SEND change 3", "ACTION_SEND d/gone 4", "ACTION_SEND keep 4"}
	if !slices.Equal(changes, want) {
		t.Errorf("dry run changes %q, want %q", changes, want)
	}

	syncTree(t, c, dest, client.TreeOptions{Sync: ferryv1.SyncLevel_SYNC_LEVEL_CHECKSUM}, 3, 0, 0, 0)
	writeFile(t, filepath.Join(src, "change"), []byte("new!"))
	must(t, os.RemoveAll(filepath.Join(src, "d")))
	writeFile(t, filepath.Join(src, "added"), []byte("added"))
	before := snapshot(t, dest)
	changes = nil
	syncTree(t, c, dest, opts, 2, 1, 1, 1)
	if after := snapshot(t, dest); !maps.Equal(before, after) {
		t.Errorf("the dry run changed the destination:\nbefore %v\nafter  %v", before, after)
	}
	want = []string{"ACTION_SEND added 5", "ACTION_REPLACE change 4", "ACTION_DELETE d 0"}
	if !slices.Equal(changes, want) {
		t.Errorf("dry run changes %q, want %q", changes, want)
	}
	opts.DryRun, opts.Changes = false, nil
	syncTree(t, c, dest, opts, 2, 1, 1, 1)
	sameTree(t, src, dest)
}

// TestSyncTreeDeleteStaysInside: a destination's symlinks that lead
// outside are removed themselves, or replaced, and nothing they point to
// is touched.
func TestSyncTreeDeleteStaysInside(t *testing.T) {
	c, root := startNodeRoot(t, service.Config{}, nil)
	src := filepath.Join(root, "t")
	writeFile(t, filepath.Join(src, "f"), []byte("f"))
	writeFile(t, filepath.Join(src, "asdir/x"), []byte("x"))
	base := t.TempDir()
	outside := filepath.Join(base, "outside")
	writeFile(t, filepath.Join(outside, "precious"), []byte("precious"))
	writeFile(t, filepath.Join(outside, "x"), []byte("outside x"))
	dest := filepath.Join(base, "dest")
	must(t, os.MkdirAll(filepath.Join(dest, "d"), 0o755))
	must(t, os.Symlink(outside, filepath.Join(dest, "esc")))      // not in the tree: deleted
	must(t, os.Symlink(outside, filepath.Join(dest, "d/esc")))    // below a directory deleted whole
	must(t, os.Symlink(outside, filepath.Join(dest, "asdir")))    // the tree has a directory here
	must(t, os.Symlink("../outside/x", filepath.Join(dest, "f"))) // the tree has a file here
	before := snapshot(t, outside)
	syncTree(t, c, dest, client.TreeOptions{Sync: ferryv1.SyncLevel_SYNC_LEVEL_SIZE, Delete: true}, 2, 0, 2, 2)
	sameTree(t, src, dest)
	if after := snapshot(t, outside); !maps.Equal(before, after) {
		t.Errorf("the sync changed what the destination's symlinks point to:\nbefore %v\nafter  %v", before, after)
	}
}

// TestSyncTreeInterrupted cancels a sync that replaces every file once
// two have landed: each file is then whole-old or whole-new, and nothing
// else is left.
func TestSyncTreeInterrupted(t *testing.T) {
	c, root := startNodeRoot(t, service.Config{}, nil)
	src := filepath.Join(root, "t")
	const n = 8
	old, new := map[string][]byte{}, map[string][]byte{}
	for i := range n {
		p := fmt.Sprintf("f%d", i)
		old[p] = randomBytes(256 << 10)
		writeFile(t, filepath.Join(src, p), old[p])
	}
	dest := filepath.Join(t.TempDir(), "dest")
	syncTree(t, c, dest, client.TreeOptions{Sync: ferryv1.SyncLevel_SYNC_LEVEL_SIZE}, n, 0, 0, 0)
	for p := range old {
		new[p] = randomBytes(256<<10 + 1)
		writeFile(t, filepath.Join(src, p), new[p])
	}
	ctx, cancel := context.WithCancel(testCtx(t))
	_, err := c.DownloadTree(ctx, "t", dest, client.TreeOptions{
		Sync: ferryv1.SyncLevel_SYNC_LEVEL_SIZE, RateLimit: 2 << 20, Concurrency: 2,
		Progress: func(p *ferryv1.Progress) {
			if p.GetFilesDone() >= 2 {
				cancel()
			}
		},
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted sync: %v, want context.Canceled", err)
	}
	ents, err := os.ReadDir(dest)
	must(t, err)
	var olds, news int
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dest, e.Name()))
		must(t, err)
		switch {
		case bytes.Equal(b, old[e.Name()]):
			olds++
		case bytes.Equal(b, new[e.Name()]):
			news++
		default:
			t.Errorf("%s after the interrupted sync: %d bytes, neither the old file nor the new", e.Name(), len(b))
		}
	}
	if len(ents) != n || news < 2 || olds == 0 {
		t.Errorf("after the interrupted sync: %d entries (want %d), %d new, %d old (want at least 2 new and some old)", len(ents), n, news, olds)
	}
}

// TestSyncTreeFailedTypeChangePutsBack: a sync that fails after it moved
// a directory (or a file) out of the way of the tree's file (or
// directory) puts it back: the destination is as it was.
func TestSyncTreeFailedTypeChangePutsBack(t *testing.T) {
	c, root := startNodeRoot(t, service.Config{}, nil)
	src := filepath.Join(root, "t")
	writeFile(t, filepath.Join(src, "x"), randomBytes(1<<20))     // a directory in DEST
	writeFile(t, filepath.Join(src, "y/big"), randomBytes(1<<20)) // a file in DEST
	dest := filepath.Join(t.TempDir(), "dest")
	writeFile(t, filepath.Join(dest, "x/keep"), []byte("keep"))
	writeFile(t, filepath.Join(dest, "y"), []byte("old y"))
	before := snapshot(t, dest)
	_, err := c.DownloadTree(testCtx(t), "t", dest, client.TreeOptions{
		Sync: ferryv1.SyncLevel_SYNC_LEVEL_SIZE, Delete: true, MaxBytes: 1000,
	})
	if !errors.Is(err, client.ErrTooLarge) {
		t.Fatalf("sync past MaxBytes: %v, want ErrTooLarge", err)
	}
	if after := snapshot(t, dest); !maps.Equal(before, after) {
		t.Errorf("the failed sync changed the destination:\nbefore %v\nafter  %v", before, after)
	}
}

// TestSyncTreeChecksumIdle: at the checksum level the server hashes a
// large unchanged file before it sends the entry; that silence is not
// the idle timeout's.
func TestSyncTreeChecksumIdle(t *testing.T) {
	c, root := startNodeRoot(t, service.Config{}, nil)
	src := filepath.Join(root, "t")
	writeFile(t, filepath.Join(src, "big"), randomBytes(256<<20))
	dest := filepath.Join(t.TempDir(), "dest")
	syncTree(t, c, dest, client.TreeOptions{Sync: ferryv1.SyncLevel_SYNC_LEVEL_SIZE}, 1, 0, 0, 0)
	opts := client.TreeOptions{Sync: ferryv1.SyncLevel_SYNC_LEVEL_CHECKSUM}
	opts.Receive.IdleTimeout = 20 * time.Millisecond
	syncTree(t, c, dest, opts, 0, 1, 0, 0)
}

func (h *hostileTree) SyncTree(stream grpc.BidiStreamingServer[ferryv1.SyncTreeRequest, ferryv1.SyncTreeResponse]) error {
	for {
		if _, err := stream.Recv(); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return err
		}
	}
	if err := stream.Send(&ferryv1.SyncTreeResponse{Entries: h.entries}); err != nil {
		return err
	}
	return stream.Send(&ferryv1.SyncTreeResponse{Report: &ferryv1.TreeReport{Path: "t"}})
}

// TestSyncTreeHostile: a server that names a path twice, names a path
// before its directory, or says a file the destination does not hold is
// unchanged, stops the sync with an error, and nothing is deleted.
func TestSyncTreeHostile(t *testing.T) {
	const dir = ferryv1.FileType_FILE_TYPE_DIRECTORY
	unchanged := &ferryv1.TreeEntry{File: &ferryv1.FileEntry{Path: "u", Type: ferryv1.FileType_FILE_TYPE_REGULAR, Size: 4}, Unchanged: true}
	for _, tt := range []struct {
		name    string
		entries []*ferryv1.TreeEntry
		want    string
	}{
		{"twice", []*ferryv1.TreeEntry{entry("d", dir, ""), inlineFile("d/f"), inlineFile("d")}, "named \"d\" twice"},
		{"orphan", []*ferryv1.TreeEntry{inlineFile("e/f")}, "before its directory"},
		{"unchanged, not held", []*ferryv1.TreeEntry{unchanged}, "held no file there"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := serveHostile(t, tt.entries)
			dest := t.TempDir()
			writeFile(t, filepath.Join(dest, "precious"), []byte("precious"))
			_, err := c.DownloadTree(testCtx(t), "t", dest, client.TreeOptions{Sync: ferryv1.SyncLevel_SYNC_LEVEL_SIZE, Delete: true})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("sync: %v, want an error saying %q", err, tt.want)
			}
			if b, err := os.ReadFile(filepath.Join(dest, "precious")); err != nil || string(b) != "precious" {
				t.Errorf("the failed sync touched precious: %q, %v", b, err)
			}
		})
	}
}
