package service

import (
	"crypto/sha256"
	"errors"
	"io"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/fsroot"
	"github.com/ferrydev/ferry/internal/treesync"
	"github.com/ferrydev/ferry/transfer"
)

// SyncTree reads what the client holds, then streams the tree as
// DownloadTree does, leaving out the files the client holds already.
func (s *transferService) SyncTree(stream grpc.BidiStreamingServer[ferryv1.SyncTreeRequest, ferryv1.SyncTreeResponse]) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	start := first.GetStart()
	if start == nil {
		return status.Error(codes.InvalidArgument, "the first SyncTree message must be start")
	}
	if _, err := treesync.Of(start.GetLevel(), treesync.File{Sum: make([]byte, sha256.Size)}); err != nil ||
		start.GetLevel() == ferryv1.SyncLevel_SYNC_LEVEL_UNSPECIFIED {
		return status.Errorf(codes.InvalidArgument, "sync level %v: want EXISTS, SIZE, MTIME or CHECKSUM (DownloadTree copies without one)", start.GetLevel())
	}
	sync := &treeSync{level: start.GetLevel(), held: treesync.Set{}, dry: start.GetDryRun()}
	for {
		m, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		h := m.GetHeld()
		if h == nil {
			return status.Error(codes.InvalidArgument, "after start a SyncTree call takes held messages only")
		}
		if err := sync.held.Add(h.GetDigests()); errors.Is(err, treesync.ErrTooMany) {
			return status.Errorf(codes.ResourceExhausted, "held: %v: sync a smaller tree", err)
		} else if err != nil {
			return status.Errorf(codes.InvalidArgument, "held: %v", err)
		}
	}
	return s.sendTree(start.GetTree(), sync, syncStream{stream})
}

// syncStream sends a SyncTree call's messages for treeSend.
type syncStream struct {
	grpc.BidiStreamingServer[ferryv1.SyncTreeRequest, ferryv1.SyncTreeResponse]
}

func (s syncStream) Send(m *ferryv1.DownloadTreeResponse) error {
	return s.BidiStreamingServer.Send(&ferryv1.SyncTreeResponse{Entries: m.Entries, Reports: m.Reports, Report: m.Report})
}

// treeSync is a SyncTree call's judgement: what the client holds, at
// which level. A nil *treeSync is a DownloadTree: nothing is unchanged.
type treeSync struct {
	level ferryv1.SyncLevel
	held  treesync.Set
	dry   bool
}

func (y *treeSync) dryRun() bool { return y != nil && y.dry }

// unchanged reports whether the client holds the regular file e, as the
// level judges. At the CHECKSUM level the file is hashed (through the
// data plane's checksum cache) only when its size matches; a file that
// changes while it is hashed counts as changed, and is sent.
func (y *treeSync) unchanged(ts *treeSend, e fsroot.DirEntry) (bool, error) {
	if y == nil {
		return false, nil
	}
	f := treesync.File{Path: e.Path, Size: uint64(e.Size), MTime: e.ModTime}
	if y.level != ferryv1.SyncLevel_SYNC_LEVEL_CHECKSUM {
		d, err := treesync.Of(y.level, f)
		return err == nil && y.held.Has(d), err
	}
	if d, err := treesync.Of(ferryv1.SyncLevel_SYNC_LEVEL_SIZE, f); err != nil || !y.held.Has(d) {
		return false, err
	}
	file, err := ts.tree.Open(e.Path)
	if err != nil {
		return false, err
	}
	defer file.Close()
	sum, err := ts.s.data.Checksum(ts.stream.Context(), file, 0, e.Size, transfer.SHA256)
	if errors.Is(err, transfer.ErrSourceChanged) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	f.Sum = sum.Value
	d, err := treesync.Of(y.level, f)
	return err == nil && y.held.Has(d), err
}
