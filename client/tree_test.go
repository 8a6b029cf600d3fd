package client_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/client"
	"github.com/ferrydev/ferry/fsroot"
)

// hostileTree is a real gRPC server that answers DownloadTree with the
// entries it is given, as a broken or hostile ferryd could: whatever it
// names, nothing may land outside the destination.
type hostileTree struct {
	ferryv1.UnimplementedTransferServiceServer
	entries []*ferryv1.TreeEntry
}

func (h *hostileTree) StatFile(context.Context, *ferryv1.StatFileRequest) (*ferryv1.StatFileResponse, error) {
	return &ferryv1.StatFileResponse{Path: "t", IsDir: true, Mode: 0o755 | uint32(os.ModeDir)}, nil
}

func (h *hostileTree) DownloadTree(_ *ferryv1.DownloadTreeRequest, stream grpc.ServerStreamingServer[ferryv1.DownloadTreeResponse]) error {
	if err := stream.Send(&ferryv1.DownloadTreeResponse{Entries: h.entries}); err != nil {
		return err
	}
	return stream.Send(&ferryv1.DownloadTreeResponse{Report: &ferryv1.TreeReport{Path: "t"}})
}

func serveHostile(t *testing.T, entries []*ferryv1.TreeEntry) *client.Client {
	t.Helper()
	return dialServer(t, &hostileTree{entries: entries}) // hostile_test.go
}

func inlineFile(p string) *ferryv1.TreeEntry {
	return &ferryv1.TreeEntry{
		File:  &ferryv1.FileEntry{Path: p, Type: ferryv1.FileType_FILE_TYPE_REGULAR, Size: 4, Mode: 0o644},
		Offer: &ferryv1.Offer{Inline: true, Data: []byte("evil"), Length: 4, Strategy: ferryv1.Strategy_STRATEGY_READ_WRITE},
	}
}

func entry(p string, typ ferryv1.FileType, target string) *ferryv1.TreeEntry {
	return &ferryv1.TreeEntry{File: &ferryv1.FileEntry{Path: p, Type: typ, Mode: 0o755, SymlinkTarget: target}}
}

// TestDownloadTreeHostile feeds the client names that climb out, are
// absolute, or lead through symlinks out of the tree: each copy fails
// or skips, and nothing appears outside the destination.
func TestDownloadTreeHostile(t *testing.T) {
	const (
		dir  = ferryv1.FileType_FILE_TYPE_DIRECTORY
		link = ferryv1.FileType_FILE_TYPE_SYMLINK
	)
	tests := []struct {
		name    string
		entries []*ferryv1.TreeEntry
		want    error // nil: the copy succeeds (with the hostile parts skipped)
	}{
		{"dotdot file", []*ferryv1.TreeEntry{inlineFile("../x")}, fsroot.ErrInvalidPath},
		{"nested dotdot", []*ferryv1.TreeEntry{entry("d", dir, ""), inlineFile("d/../../x")}, fsroot.ErrInvalidPath},
		{"absolute", []*ferryv1.TreeEntry{inlineFile("/tmp/x")}, fsroot.ErrInvalidPath},
		{"dotdot dir", []*ferryv1.TreeEntry{entry("..", dir, "")}, fsroot.ErrInvalidPath},
		{"through an escaping link", []*ferryv1.TreeEntry{entry("s", link, "../.."), inlineFile("s/x")}, fsroot.ErrNotFound},
		{"absolute link", []*ferryv1.TreeEntry{entry("abs", link, "/"), entry("abs/x", dir, "")}, fsroot.ErrNotFound},
		{"link then dir through it", []*ferryv1.TreeEntry{entry("l", link, "."), entry("l/x", dir, "")}, fsroot.ErrEscapes},
		{"escaping links skipped", []*ferryv1.TreeEntry{entry("up", link, "../outside"), entry("abs", link, "/etc")}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			dest, outside := filepath.Join(base, "dest"), filepath.Join(base, "outside")
			if err := os.Mkdir(outside, 0o755); err != nil {
				t.Fatal(err)
			}
			c := serveHostile(t, tt.entries)
			_, err := c.DownloadTree(t.Context(), "t", dest, client.TreeOptions{})
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("DownloadTree() = %v, want %v", err, tt.want)
			}
			for _, p := range []string{filepath.Join(base, "x"), "/tmp/x"} {
				if b, err := os.ReadFile(p); err == nil && string(b) == "evil" {
					t.Errorf("%s was written outside the destination", p)
				}
			}
			if ents, _ := os.ReadDir(outside); len(ents) != 0 {
				t.Errorf("%d entries written outside the destination", len(ents))
			}
			if _, err := os.Lstat(filepath.Join(dest, "up")); err == nil {
				t.Errorf("an escaping symlink was recreated")
			}
		})
	}
}

// TestDownloadTreeHostileModes: a server that names setuid, setgid,
// sticky and world-writable modes gets none of them applied: what lands
// has its permission bits less group and others' write
// (fsroot.LandMask).
func TestDownloadTreeHostileModes(t *testing.T) {
	file := func(p string, mode uint32) *ferryv1.TreeEntry {
		e := inlineFile(p)
		e.File.Mode = mode
		return e
	}
	dir := func(p string, mode uint32) *ferryv1.TreeEntry {
		e := entry(p, ferryv1.FileType_FILE_TYPE_DIRECTORY, "")
		e.File.Mode = mode
		return e
	}
	special := uint32(fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
	c := serveHostile(t, []*ferryv1.TreeEntry{
		dir("open", 0o777|uint32(fs.ModeDir)),
		dir("sticky", 0o1777|special|uint32(fs.ModeDir)),
		file("open/raw-suid", 0o4777), // the octal bits, as chmod(2) spells them
		file("open/go-suid", 0o777|special),
		file("sticky/plain", 0o664),
	})
	dest := filepath.Join(t.TempDir(), "dest")
	if _, err := c.DownloadTree(t.Context(), "t", dest, client.TreeOptions{}); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]fs.FileMode{
		"open": 0o755, "sticky": 0o755, "open/raw-suid": 0o755, "open/go-suid": 0o755, "sticky/plain": 0o644,
	} {
		fi, err := os.Lstat(filepath.Join(dest, p))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode() &^ fs.ModeType; got != want {
			t.Errorf("%s: mode %v, want %v", p, got, want)
		}
	}
}

// TestDownloadTreeChecksumMissing: a tree asked for with a checksum
// fails when a file's offer carries none (or another), before that file
// lands: "verified" must not quietly mean "verified where the server
// chose to".
func TestDownloadTreeChecksumMissing(t *testing.T) {
	c := serveHostile(t, []*ferryv1.TreeEntry{inlineFile("a")})
	dest := filepath.Join(t.TempDir(), "dest")
	_, err := c.DownloadTree(t.Context(), "t", dest, client.TreeOptions{Checksum: ferryv1.ChecksumAlgorithm_CHECKSUM_ALGORITHM_SHA256})
	if err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Errorf("DownloadTree(sha256) of offers without a checksum = %v, want an error about the checksum", err)
	}
	if _, err := os.Stat(filepath.Join(dest, "a")); err == nil {
		t.Errorf("the unverified file landed")
	}
}
