package service

import (
	"crypto/sha256"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

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
	if errors.Is(err, io.EOF) {
		return status.Error(codes.InvalidArgument, "a SyncTree call starts with a start message; this one sent nothing")
	}
	if err != nil {
		return err
	}
	start := first.GetStart()
	if start == nil {
		return status.Error(codes.InvalidArgument, "the first SyncTree message must be start")
	}
	if start.GetTree() == nil {
		return status.Error(codes.InvalidArgument, "start.tree is required (the directory to sync, as in DownloadTree)")
	}
	if _, err := treesync.Of(start.GetLevel(), treesync.File{Sum: make([]byte, sha256.Size)}); err != nil ||
		start.GetLevel() == ferryv1.SyncLevel_SYNC_LEVEL_UNSPECIFIED {
		return status.Errorf(codes.InvalidArgument, "sync level %v: want EXISTS, SIZE, MTIME or CHECKSUM (DownloadTree copies without one)", start.GetLevel())
	}
	ys := &treeSync{level: start.GetLevel(), held: treesync.Set{}, dry: start.GetDryRun()}
	// What the client holds must arrive within heldTimeout: a caller may
	// not keep a call, and its digests, open without end. The digests are
	// counted in the node's total while the call holds them; a call that
	// times out returns at once and its receiver gives them back when its
	// Recv ends (the call's end ends it).
	var (
		mu                  sync.Mutex
		finished, abandoned bool
	)
	held := make(chan error, 1)
	go func() {
		err := ys.receive(stream, &s.syncDigests)
		mu.Lock()
		finished = true
		if abandoned {
			s.syncDigests.Add(-int64(len(ys.held)))
		}
		mu.Unlock()
		held <- err
	}()
	timer := time.NewTimer(heldTimeout)
	defer timer.Stop()
	select {
	case err := <-held:
		defer func() { s.syncDigests.Add(-int64(len(ys.held))) }()
		if err != nil {
			return err
		}
	case <-timer.C:
		mu.Lock()
		abandoned = !finished
		mu.Unlock()
		if !abandoned { // finished just now: give back here
			<-held
			s.syncDigests.Add(-int64(len(ys.held)))
		}
		return status.Errorf(codes.DeadlineExceeded, "the client did not finish sending what it holds within %v", heldTimeout)
	}
	return s.sendTree(start.GetTree(), ys, syncStream{stream})
}

// heldTimeout bounds the phase of a SyncTree call in which the client
// sends its digests: a second at most for a full set on loopback.
const heldTimeout = time.Minute

// maxNodeDigests bounds the digests all SyncTree calls on a node hold at
// once (about 36 bytes of memory each, so some 150 MiB), whatever the
// number of calls: one call takes at most treesync.MaxDigests.
const maxNodeDigests = 4 << 20

// receive reads held messages into y until the client closes its side.
// Each batch is counted in node (the node's total) before it is taken;
// the caller gives the set's size back when the call ends.
func (y *treeSync) receive(stream grpc.BidiStreamingServer[ferryv1.SyncTreeRequest, ferryv1.SyncTreeResponse], node *atomic.Int64) error {
	for {
		m, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		h := m.GetHeld()
		if h == nil {
			return status.Error(codes.InvalidArgument, "after start a SyncTree call takes held messages only")
		}
		n := int64(len(h.GetDigests()) / treesync.Size)
		if node.Add(n) > maxNodeDigests {
			node.Add(-n)
			return status.Errorf(codes.ResourceExhausted, "held: the node holds %d digests for other syncs, its limit: try again later", maxNodeDigests)
		}
		before := len(y.held)
		err = y.held.Add(h.GetDigests())
		node.Add(int64(len(y.held)-before) - n) // count what the set took (duplicates, refusals)
		if errors.Is(err, treesync.ErrTooMany) {
			return status.Errorf(codes.ResourceExhausted, "held: %v: sync a smaller tree", err)
		} else if err != nil {
			return status.Errorf(codes.InvalidArgument, "held: %v", err)
		}
	}
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
