package service

import (
	"time"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/client"
	"google.golang.org/grpc"
)

// pullTree is Pull for a directory on the peer: the destination directory
// is created beneath this node's root (its parent must exist; an existing
// one is ALREADY_EXISTS unless overwrite, which merges into it as
// client.TreeOptions.Overwrite says), and the tree is copied into it with
// the peer connection Pull dialled, forwarding progress in files and
// bytes, and ending with the TreeReport. Files that landed before a
// failure stay; no partial file does.
func (s *transferService) pullTree(req *ferryv1.PullRequest, dest string, peer *client.Client, stream grpc.ServerStreamingServer[ferryv1.PullResponse]) error {
	if err := s.root.Mkdir(dest, 0o700, req.GetOverwrite()); err != nil {
		return s.statusOf(err, dest)
	}
	root, err := s.root.Sub(dest)
	if err != nil {
		return s.statusOf(err, dest)
	}
	defer root.Close()
	start := time.Now()
	report, err := peer.DownloadTreeTo(stream.Context(), req.GetPath(), root, client.TreeOptions{
		Strategy: req.GetStrategy(), Checksum: req.GetChecksum(), RateLimit: req.GetRateLimit(),
		Concurrency: int(req.GetConcurrency()), Overwrite: req.GetOverwrite(), InlineMax: pullInlineMax(req),
		Progress: s.forwardProgress(stream),
		MaxBytes: s.pullMaxBytes, Receive: s.pullReceive,
	})
	if err != nil {
		return s.pullStatus(err, dest)
	}
	s.log.Info("tree pull finished", "peer", req.GetPeer(), "path", req.GetPath(), "destination", dest,
		"files", report.GetFiles(), "bytes", report.GetBytes(), "connections", report.GetDataConnections(),
		"took", time.Since(start))
	return stream.Send(&ferryv1.PullResponse{Event: &ferryv1.PullResponse_TreeReport{TreeReport: report}})
}
