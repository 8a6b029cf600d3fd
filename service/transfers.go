package service

import (
	"context"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/internal/apiconv"
	"github.com/ferrydev/ferry/transfer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/peer"
)

// ListTransfers lists the running transfers and the recent history.
func (s *transferService) ListTransfers(_ context.Context, req *ferryv1.ListTransfersRequest) (*ferryv1.ListTransfersResponse, error) {
	return &ferryv1.ListTransfersResponse{Transfers: s.transfers.list(req.GetRunningOnly())}, nil
}

// recordDownload records a Download whose offer t was made and returns
// the stream to send on: sending the report finishes the record first, so
// a caller that has the report finds the transfer finished.
func (s *transferService) recordDownload(stream grpc.ServerStreamingServer[ferryv1.DownloadResponse], t *transfer.Transfer) (*record, grpc.ServerStreamingServer[ferryv1.DownloadResponse]) {
	rec := s.transfers.startLive(stream.Context(), &ferryv1.TransferInfo{
		TransferId: t.ID, Kind: ferryv1.TransferKind_TRANSFER_KIND_DOWNLOAD, Path: t.Path,
		Peer: callerAddr(stream), Strategy: apiconv.Strategy(t.Strategy), BytesTotal: uint64(t.Length),
	}, t.Sent)
	return rec, &recorded[ferryv1.DownloadResponse]{stream, rec.context(stream.Context()), func(m *ferryv1.DownloadResponse) {
		if r := m.GetReport(); r != nil {
			rec.finish(r, nil, nil)
		}
	}}
}

// recordPull records a Pull into dest and returns the stream to send on:
// the progress it forwards is recorded, and sending the report finishes
// the record first.
func (s *transferService) recordPull(stream grpc.ServerStreamingServer[ferryv1.PullResponse], req *ferryv1.PullRequest, dest string) (*record, grpc.ServerStreamingServer[ferryv1.PullResponse]) {
	rec := s.transfers.start(stream.Context(), &ferryv1.TransferInfo{
		Kind: ferryv1.TransferKind_TRANSFER_KIND_PULL, Path: req.GetPath(), Peer: req.GetPeer(),
		Destination: dest, Strategy: req.GetStrategy(),
	})
	return rec, &recorded[ferryv1.PullResponse]{stream, rec.context(stream.Context()), func(m *ferryv1.PullResponse) {
		switch {
		case m.GetProgress() != nil:
			p := m.GetProgress()
			rec.totals(p.GetBytesTotal(), p.GetFilesTotal())
			rec.progress(p.GetBytesSent(), p.GetFilesDone())
		case m.GetReport() != nil:
			rec.finish(m.GetReport(), nil, nil)
		case m.GetTreeReport() != nil:
			rec.finish(nil, m.GetTreeReport(), nil)
		}
	}}
}

// recorded is a server stream that shows each message to see before
// sending it, and whose context carries the transfer's span, if traced:
// a Pull's calls to its peer are the transfer's children.
type recorded[T any] struct {
	grpc.ServerStreamingServer[T]
	ctx context.Context
	see func(*T)
}

func (r *recorded[T]) Context() context.Context { return r.ctx }

func (r *recorded[T]) Send(m *T) error {
	r.see(m)
	return r.ServerStreamingServer.Send(m)
}

// callerAddr is the address of the call's client, "" if unknown.
func callerAddr(stream grpc.ServerStream) string {
	if p, ok := peer.FromContext(stream.Context()); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return ""
}
