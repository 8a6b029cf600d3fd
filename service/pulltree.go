package service

import (
	"errors"
	"time"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/client"
	"github.com/ferrydev/ferry/fsroot"
	"google.golang.org/grpc"
)

// pullTree is Pull for a directory on the peer: the destination directory
// is created beneath this node's root (its parent must exist; an existing
// one is ALREADY_EXISTS unless overwrite, which merges into it as
// client.TreeOptions.Overwrite says, or sync), and the tree is copied (or
// synced) into it with the peer connection Pull dialled, forwarding
// progress in files and bytes, and ending with the TreeReport. Files that
// landed before a failure stay; no partial file does. A dry run creates
// nothing, and sends each change it would make as a change event.
func (s *transferService) pullTree(req *ferryv1.PullRequest, dest string, peer *client.Client, stream grpc.ServerStreamingServer[ferryv1.PullResponse]) error {
	sync := req.GetSync() != ferryv1.SyncLevel_SYNC_LEVEL_UNSPECIFIED
	var root *fsroot.Root
	if req.GetDryRun() {
		r, err := s.root.Sub(dest)
		if err != nil && !errors.Is(err, fsroot.ErrNotFound) {
			return s.statusOf(err, dest)
		}
		root = r // nil when dest does not exist yet
	} else {
		if err := s.root.Mkdir(dest, 0o700, req.GetOverwrite() || sync); err != nil {
			return s.statusOf(err, dest)
		}
		r, err := s.root.Sub(dest)
		if err != nil {
			return s.statusOf(err, dest)
		}
		root = r
	}
	if root != nil {
		defer root.Close()
	}
	start := time.Now()
	report, err := peer.DownloadTreeTo(stream.Context(), req.GetPath(), root, client.TreeOptions{
		Strategy: req.GetStrategy(), Checksum: req.GetChecksum(), RateLimit: req.GetRateLimit(),
		Concurrency: int(req.GetConcurrency()), Overwrite: req.GetOverwrite(), InlineMax: pullInlineMax(req),
		Progress: s.forwardProgress(stream),
		MaxBytes: s.pullMaxBytes, Receive: s.pullReceive,
		Sync: req.GetSync(), Delete: req.GetDelete(), DryRun: req.GetDryRun(),
		Changes: func(c *ferryv1.TreeChange) {
			stream.Send(&ferryv1.PullResponse{Event: &ferryv1.PullResponse_Change{Change: c}})
		},
	})
	if err != nil {
		return s.pullStatus(err, dest)
	}
	s.log.Info("tree pull finished", "peer", req.GetPeer(), "path", req.GetPath(), "destination", dest,
		"files", report.GetFiles(), "bytes", report.GetBytes(), "unchanged", report.GetUnchanged(),
		"deleted", report.GetDeleted(), "dry_run", report.GetDryRun(), "connections", report.GetDataConnections(),
		"took", time.Since(start))
	return stream.Send(&ferryv1.PullResponse{Event: &ferryv1.PullResponse_TreeReport{TreeReport: report}})
}
