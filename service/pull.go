package service

import (
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/client"
	"github.com/ferrydev/ferry/fsroot"
	"github.com/ferrydev/ferry/internal/apiconv"
	"github.com/ferrydev/ferry/transfer"
)

// Pull fetches a file from a peer ferryd into this node's root: check the
// request, prepare the destination beneath the root, download into it
// with the node's own peer credentials, forwarding progress, and end with
// the report of both sides.
func (s *transferService) Pull(req *ferryv1.PullRequest, stream grpc.ServerStreamingServer[ferryv1.PullResponse]) (err error) {
	if !s.allowPull {
		return status.Error(codes.PermissionDenied, "pulls are disabled on this node; start ferryd with --allow-pull")
	}
	dest, host, err := checkPull(req)
	if err != nil {
		return err
	}
	rec, stream := s.recordPull(stream, req, dest)
	defer func() { rec.finish(nil, nil, err) }()
	peer, err := s.dialPeer(stream.Context(), req.GetPeer(), host) // peerdial.go
	if err != nil {
		return err
	}
	defer peer.Close()
	if fi, err := peer.Stat(stream.Context(), req.GetPath()); err != nil {
		return s.firstPeerStatus(err, req.GetPeer(), dest)
	} else if fi.GetIsDir() {
		return s.pullTree(req, dest, peer, stream) // pulltree.go
	} else if req.GetSync() != ferryv1.SyncLevel_SYNC_LEVEL_UNSPECIFIED {
		return status.Errorf(codes.FailedPrecondition, "%s on the peer is a file: sync is for directories", req.GetPath())
	}
	dst, err := s.root.RootDestination(dest, req.GetOverwrite())
	if err != nil {
		return s.statusOf(err, dest)
	}
	defer dst.Abort()
	start := time.Now()
	report, err := peer.DownloadTo(stream.Context(), req.GetPath(), dst, client.DownloadOptions{
		Offset: req.GetOffset(), Length: req.GetLength(), Strategy: req.GetStrategy(),
		Checksum: req.GetChecksum(), RateLimit: req.GetRateLimit(), InlineMax: pullInlineMax(req),
		Progress: s.forwardProgress(stream), Streams: min(int(req.GetStreams()), s.maxFileStreams),
		MaxBytes: s.pullMaxBytes, Receive: s.pullReceive,
	})
	if err != nil {
		return s.pullStatus(err, dest)
	}
	s.log.Info("pull finished", "peer", req.GetPeer(), "path", req.GetPath(), "destination", dest,
		"strategy", report.GetSender().GetStrategy().String(), "bytes", report.GetReceiver().GetBytes(),
		"took", time.Since(start))
	return stream.Send(&ferryv1.PullResponse{Event: &ferryv1.PullResponse_Report{Report: report}})
}

// checkPull validates a PullRequest and returns its cleaned destination
// and the peer's host.
func checkPull(req *ferryv1.PullRequest) (dest, host string, err error) {
	if host, err = splitPeer(req.GetPeer()); err != nil {
		return "", "", status.Errorf(codes.InvalidArgument, "peer %q: want host:port (an IP address or a DNS name, and a port): %v", req.GetPeer(), err)
	}
	if _, err := apiconv.FromChecksumAlgorithm(req.GetChecksum()); err != nil {
		return "", "", status.Error(codes.InvalidArgument, err.Error())
	}
	if _, ok := ferryv1.SyncLevel_name[int32(req.GetSync())]; !ok {
		return "", "", status.Errorf(codes.InvalidArgument, "unknown sync level %v", req.GetSync())
	}
	if req.GetSync() == ferryv1.SyncLevel_SYNC_LEVEL_UNSPECIFIED && (req.GetDelete() || req.GetDryRun()) {
		return "", "", status.Error(codes.InvalidArgument, "delete and dry_run need sync (a copy deletes nothing)")
	}
	dest, err = fsroot.CleanPath(req.GetDestination())
	if err == nil && dest == "." {
		err = fmt.Errorf("%w: the destination names the root itself", fsroot.ErrInvalidPath)
	}
	if err != nil {
		return "", "", toStatus(err, req.GetDestination())
	}
	return dest, host, nil
}

// forwardProgress relays the peer's progress messages to the caller, at
// most one per progress interval. It runs on the goroutine that called
// DownloadTo, the stream's only sender until the report. A failed send
// is not fatal here: the stream's context ends, and with it the download.
func (s *transferService) forwardProgress(stream grpc.ServerStreamingServer[ferryv1.PullResponse]) func(*ferryv1.Progress) {
	var last time.Time
	return func(p *ferryv1.Progress) {
		if time.Since(last) < s.progress {
			return
		}
		last = time.Now()
		stream.Send(&ferryv1.PullResponse{Event: &ferryv1.PullResponse_Progress{Progress: p}})
	}
}

// pullStatus maps a failed pull's error: a status from the peer (or from
// reaching it: Unavailable) keeps its code, its message prefixed with
// "peer: "; a local error is mapped as any data-plane error.
func (s *transferService) pullStatus(err error, dest string) error {
	if errors.Is(err, errNotListed) {
		s.log.Warn("pull refused an offer", "destination", dest, "err", err)
		return status.Error(codes.PermissionDenied, "peer: its offer names a data address "+errNotListed.Error())
	}
	if st, ok := status.FromError(err); ok {
		return status.Error(st.Code(), "peer: "+st.Message())
	}
	return s.statusOf(err, "pull to "+dest)
}

// pullInlineMax is what a Pull accepts inline from its peer: small files
// inside the offer when the caller left the strategy to the peer, as
// ferry pull does; a named strategy means that copy path.
func pullInlineMax(req *ferryv1.PullRequest) uint64 {
	if req.GetStrategy() == ferryv1.Strategy_STRATEGY_UNSPECIFIED {
		return transfer.MaxInline
	}
	return 0
}
