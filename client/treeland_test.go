package client_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/client"
	"github.com/ferrydev/ferry/fsroot"
	"github.com/ferrydev/ferry/transfer"
)

// fileWith is an inline tree file of the given content.
func fileWith(p, data string) *ferryv1.TreeEntry {
	return &ferryv1.TreeEntry{
		File: &ferryv1.FileEntry{Path: p, Type: ferryv1.FileType_FILE_TYPE_REGULAR, Size: uint64(len(data)), Mode: 0o640},
		Offer: &ferryv1.Offer{Inline: true, Data: []byte(data), Length: uint64(len(data)),
			Strategy: ferryv1.Strategy_STRATEGY_READ_WRITE},
	}
}

// landedFiles maps every non-directory below dir to its content.
func landedFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		got[rel] = string(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestDownloadTreeFailureLeavesWholeFiles is the crash-equivalent of a
// tree pull: a tree that fails part-way (a file whose offer is short)
// leaves only whole files at their names, and nothing else: no partial
// file, no temporary name, no file with some of its bytes.
func TestDownloadTreeFailureLeavesWholeFiles(t *testing.T) {
	want := map[string]string{}
	entries := []*ferryv1.TreeEntry{entry("d", ferryv1.FileType_FILE_TYPE_DIRECTORY, "")}
	for i := range 200 {
		p := fmt.Sprintf("d/f%03d", i)
		want[p] = fmt.Sprintf("all of file %d", i)
		entries = append(entries, fileWith(p, want[p]))
		if i == 100 {
			bad := fileWith("d/bad", "four")
			bad.Offer.Data = bad.Offer.Data[:3]
			entries = append(entries, bad)
		}
	}
	c := serveHostile(t, entries)
	dest := filepath.Join(t.TempDir(), "dest")
	_, err := c.DownloadTree(t.Context(), "t", dest, client.TreeOptions{Concurrency: 3})
	if !errors.Is(err, transfer.ErrShortTransfer) {
		t.Fatalf("DownloadTree(a tree with a short file) = %v, want %v", err, transfer.ErrShortTransfer)
	}
	for p, b := range landedFiles(t, dest) {
		if w, ok := want[p]; !ok || b != w {
			t.Errorf("%s landed holding %q; want only whole files of the tree", p, b)
		}
	}
}

// TestDownloadTreeDuplicateName: a server naming a file twice cannot make
// the second copy replace the first without Overwrite; the first stays
// whole.
func TestDownloadTreeDuplicateName(t *testing.T) {
	c := serveHostile(t, []*ferryv1.TreeEntry{fileWith("f", "first"), fileWith("f", "second")})
	dest := filepath.Join(t.TempDir(), "dest")
	_, err := c.DownloadTree(t.Context(), "t", dest, client.TreeOptions{Concurrency: 1})
	if !errors.Is(err, fsroot.ErrExists) {
		t.Errorf("DownloadTree(a name twice) = %v, want %v", err, fsroot.ErrExists)
	}
	if got := landedFiles(t, dest); len(got) != 1 || got["f"] != "first" {
		t.Errorf("landed %q, want only f holding \"first\"", got)
	}
}

// TestDownloadTreeOverwriteMerges: with Overwrite, a tree lands into an
// existing one: its files replace those of the same name (with their
// modes), others stay, and no temporary name is left; a directory where
// the tree has a file is an error.
func TestDownloadTreeOverwriteMerges(t *testing.T) {
	dest := filepath.Join(t.TempDir(), "dest")
	for _, p := range []string{"d/old", "d/same", "top"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dest, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dest, p), []byte("was "+p), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c := serveHostile(t, []*ferryv1.TreeEntry{
		entry("d", ferryv1.FileType_FILE_TYPE_DIRECTORY, ""), fileWith("d/same", "new same"), fileWith("d/new", "new"),
	})
	if _, err := c.DownloadTree(t.Context(), "t", dest, client.TreeOptions{Overwrite: true}); err != nil {
		t.Fatalf("DownloadTree(overwrite) = %v", err)
	}
	want := map[string]string{"d/old": "was d/old", "d/same": "new same", "d/new": "new", "top": "was top"}
	got := landedFiles(t, dest)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after the merge: %q, want %q", got, want)
	}
	if fi, err := os.Stat(filepath.Join(dest, "d/same")); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("replaced file: %v, %v; want mode 0640", fi, err)
	}
	if err := os.Mkdir(filepath.Join(dest, "dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	c = serveHostile(t, []*ferryv1.TreeEntry{fileWith("dir", "a file")})
	if _, err := c.DownloadTree(t.Context(), "t", dest, client.TreeOptions{Overwrite: true}); !errors.Is(err, fsroot.ErrIsDir) {
		t.Errorf("DownloadTree(a file over a directory) = %v, want %v", err, fsroot.ErrIsDir)
	}
}

// TestDownloadTreeConcurrentFresh: two pulls into the same new
// destination at once: exactly one creates it and lands the tree, the
// other fails with ErrExists and changes nothing.
func TestDownloadTreeConcurrentFresh(t *testing.T) {
	var entries []*ferryv1.TreeEntry
	for i := range 100 {
		entries = append(entries, fileWith(fmt.Sprintf("f%02d", i), "x"))
	}
	c := serveHostile(t, entries)
	dest := filepath.Join(t.TempDir(), "dest")
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = c.DownloadTree(t.Context(), "t", dest, client.TreeOptions{})
		})
	}
	wg.Wait()
	ok, exists := 0, 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, fsroot.ErrExists):
			exists++
		default:
			t.Errorf("DownloadTree() = %v, want nil or %v", err, fsroot.ErrExists)
		}
	}
	if ok != 1 || exists != 1 {
		t.Errorf("%d pulls succeeded and %d found the destination, want one each", ok, exists)
	}
	if got := landedFiles(t, dest); len(got) != 100 {
		t.Errorf("%d files landed, want 100", len(got))
	}
}

// TestDownloadTreeCancelAfterLastMessage cancels a tree download once
// the server has sent everything: DownloadTree must fail, not report
// success with files the workers skipped (a review found it returning nil
// with 1 of 300 files landed).
func TestDownloadTreeCancelAfterLastMessage(t *testing.T) {
	var entries []*ferryv1.TreeEntry
	for i := range 300 {
		entries = append(entries, fileWith(fmt.Sprintf("f%03d", i), "x"))
	}
	c := serveHostile(t, entries)
	dest := filepath.Join(t.TempDir(), "dest")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	_, err := c.DownloadTree(ctx, "t", dest, client.TreeOptions{Window: 1000, Concurrency: 1,
		Progress: func(*ferryv1.Progress) { cancel() }})
	if got := len(landedFiles(t, dest)); err == nil && got != 300 {
		t.Fatalf("DownloadTree() = nil with %d of 300 files landed", got)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("DownloadTree() = %v, want %v", err, context.Canceled)
	}
}
