package service_test

import (
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/internal/treesync"
	"github.com/ferrydev/ferry/service"
)

// TestSyncTreeMisuse: each way of calling SyncTree wrongly gets its own
// clear error and code, and a well-formed call with nothing held sends
// the tree.
func TestSyncTreeMisuse(t *testing.T) {
	n := startNode(t, service.Config{})
	if err := os.Mkdir(filepath.Join(n.root, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, n.root, "d/f", 10)
	start := func(level ferryv1.SyncLevel, tree *ferryv1.DownloadTreeRequest) *ferryv1.SyncTreeRequest {
		return &ferryv1.SyncTreeRequest{Request: &ferryv1.SyncTreeRequest_Start{Start: &ferryv1.SyncTreeStart{Tree: tree, Level: level}}}
	}
	held := func(b []byte) *ferryv1.SyncTreeRequest {
		return &ferryv1.SyncTreeRequest{Request: &ferryv1.SyncTreeRequest_Held{Held: &ferryv1.SyncHeld{Digests: b}}}
	}
	tree := &ferryv1.DownloadTreeRequest{Path: "d"}
	size := ferryv1.SyncLevel_SYNC_LEVEL_SIZE
	for _, tt := range []struct {
		name string
		msgs []*ferryv1.SyncTreeRequest
		want codes.Code
	}{
		{"nothing sent", nil, codes.InvalidArgument},
		{"held before start", []*ferryv1.SyncTreeRequest{held(make([]byte, treesync.Size))}, codes.InvalidArgument},
		{"start twice", []*ferryv1.SyncTreeRequest{start(size, tree), start(size, tree)}, codes.InvalidArgument},
		{"no tree", []*ferryv1.SyncTreeRequest{start(size, nil)}, codes.InvalidArgument},
		{"no level", []*ferryv1.SyncTreeRequest{start(ferryv1.SyncLevel_SYNC_LEVEL_UNSPECIFIED, tree)}, codes.InvalidArgument},
		{"unknown level", []*ferryv1.SyncTreeRequest{start(99, tree)}, codes.InvalidArgument},
		{"17-byte digests", []*ferryv1.SyncTreeRequest{start(size, tree), held(make([]byte, treesync.Size+1))}, codes.InvalidArgument},
		{"a file", []*ferryv1.SyncTreeRequest{start(size, &ferryv1.DownloadTreeRequest{Path: "d/f"})}, codes.FailedPrecondition},
		{"missing", []*ferryv1.SyncTreeRequest{start(size, &ferryv1.DownloadTreeRequest{Path: "nope"})}, codes.NotFound},
	} {
		stream, err := n.api().SyncTree(testCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range tt.msgs {
			if err := stream.Send(m); err != nil {
				break // the server has ended the call: Recv says how
			}
		}
		stream.CloseSend()
		var last *ferryv1.SyncTreeResponse
		for {
			m, rerr := stream.Recv()
			if rerr != nil {
				if status.Code(rerr) != codes.Unknown || rerr.Error() != "EOF" {
					err = rerr
				}
				break
			}
			last = m
		}
		if status.Code(err) != tt.want || last != nil {
			t.Errorf("%s: SyncTree = %v, want %v", tt.name, err, tt.want)
		}
	}
}

// TestSyncTreeJudges: a file whose digest the client sent comes marked
// unchanged, one whose digest it did not (another size) comes to be
// sent; a dry run offers neither.
func TestSyncTreeJudges(t *testing.T) {
	n := startNode(t, service.Config{})
	if err := os.Mkdir(filepath.Join(n.root, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, n.root, "d/same", 10)
	writeFile(t, n.root, "d/other", 20)
	size := ferryv1.SyncLevel_SYNC_LEVEL_SIZE
	var digests []byte
	for _, f := range []treesync.File{{Path: "same", Size: 10}, {Path: "other", Size: 21}} {
		var err error
		if digests, err = treesync.Held(digests, size, f); err != nil {
			t.Fatal(err)
		}
	}
	stream, err := n.api().SyncTree(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*ferryv1.SyncTreeRequest{
		{Request: &ferryv1.SyncTreeRequest_Start{Start: &ferryv1.SyncTreeStart{Tree: &ferryv1.DownloadTreeRequest{Path: "d"}, Level: size, DryRun: true}}},
		{Request: &ferryv1.SyncTreeRequest_Held{Held: &ferryv1.SyncHeld{Digests: digests}}},
	} {
		if err := stream.Send(m); err != nil {
			t.Fatal(err)
		}
	}
	stream.CloseSend()
	got := map[string]bool{}
	var report *ferryv1.TreeReport
	for report == nil {
		m, err := stream.Recv()
		if err != nil {
			t.Fatalf("SyncTree: %v", err)
		}
		for _, e := range m.GetEntries() {
			if e.GetOffer() != nil {
				t.Errorf("dry run: %s came with an offer", e.GetFile().GetPath())
			}
			got[e.GetFile().GetPath()] = e.GetUnchanged()
		}
		report = m.GetReport()
	}
	if want := map[string]bool{"same": true, "other": false}; len(got) != 2 || got["same"] != true || got["other"] != false {
		t.Errorf("entries (path: unchanged) = %v, want %v", got, want)
	}
	if !report.GetDryRun() || report.GetUnchanged() != 1 || report.GetUnchangedBytes() != 10 || report.GetFiles() != 0 {
		t.Errorf("report: dry run %v, unchanged %d (%d bytes), files %d; want true, 1 (10), 0",
			report.GetDryRun(), report.GetUnchanged(), report.GetUnchangedBytes(), report.GetFiles())
	}
}
