package service

import (
	"context"
	"log/slog"
	"math"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/fsroot"
	"github.com/ferrydev/ferry/internal/apiconv"
	"github.com/ferrydev/ferry/transfer"
)

// transferService implements ferry.v1.TransferService over a served root
// and a data-plane server.
type transferService struct {
	// syncDigests counts the digests SyncTree calls hold now (maxNodeDigests).
	syncDigests atomic.Int64
	ferryv1.UnimplementedTransferServiceServer
	root      *fsroot.Root
	data      *transfer.Server
	address   string // data address put in offers
	version   string
	progress  time.Duration
	peerDial  []grpc.DialOption // for Pull's peers
	peerTrace grpc.DialOption   // traces Pull's calls to peers; nil without tracing
	allowPull bool              // Config.AllowPull
	peers     *peerList         // Config.AllowPeers
	transfers *registry         // what ListTransfers lists
	listings  chan struct{}     // a place per running ListFiles (maxListings)
	log       *slog.Logger

	// maxFileStreams is Config.MaxFileStreams, with its default.
	maxFileStreams int
	// What a Pull takes from its peer: Config.PullMaxBytes, and
	// Config.PullIdleTimeout as a receive configuration.
	pullMaxBytes uint64
	pullReceive  transfer.ReceiveConfig
	// stopping is cancelled when the node starts shutting down: sessions
	// then refuse new requests and end once the running ones have.
	stopping context.Context
}

func (s *transferService) GetCapabilities(context.Context, *ferryv1.GetCapabilitiesRequest) (*ferryv1.GetCapabilitiesResponse, error) {
	def, err := s.data.Choose(transfer.Auto)
	if err != nil {
		return nil, s.statusOf(err, "capabilities")
	}
	small, err := s.data.ChooseFor(transfer.Auto, 0)
	if err != nil {
		return nil, s.statusOf(err, "capabilities")
	}
	return &ferryv1.GetCapabilitiesResponse{
		Strategies:           apiconv.Strategies(s.data.Supported()),
		DefaultStrategy:      apiconv.Strategy(def),
		DefaultSmallStrategy: apiconv.Strategy(small),
		SmallBelow:           uint64(s.data.AutoSmallBelow()),
		Auto:                 apiconv.AutoPolicy(s.data.AutoPolicy()),
		KernelTls:            s.data.KernelTLS(),
		DataAddress:          s.address,
		ServerVersion:        s.version,
		MaxStreams:           uint32(s.maxFileStreams),
	}, nil
}

func (s *transferService) StatFile(_ context.Context, req *ferryv1.StatFileRequest) (*ferryv1.StatFileResponse, error) {
	clean, err := fsroot.CleanPath(req.GetPath())
	if err != nil {
		return nil, s.statusOf(err, req.GetPath())
	}
	fi, err := s.root.Stat(clean)
	if err != nil {
		return nil, s.statusOf(err, clean)
	}
	resp := &ferryv1.StatFileResponse{
		Path:       clean,
		Mode:       uint32(fi.Mode()),
		ModifyTime: timestamppb.New(fi.ModTime()),
		IsDir:      fi.IsDir(),
	}
	if fi.Mode().IsRegular() {
		resp.Size = uint64(fi.Size())
	}
	return resp, nil
}

func (s *transferService) Download(req *ferryv1.DownloadRequest, stream grpc.ServerStreamingServer[ferryv1.DownloadResponse]) (err error) {
	t, err := s.offer(stream.Context(), req)
	if err != nil {
		return err
	}
	defer t.Cancel() // revokes an unused ticket, aborts a running copy
	rec, stream := s.recordDownload(stream, t)
	defer func() { rec.finish(nil, nil, err) }()
	if err := stream.Send(&ferryv1.DownloadResponse{Event: &ferryv1.DownloadResponse_Offer{Offer: s.offerOf(t)}}); err != nil {
		return err
	}
	return s.follow(stream, t)
}

// offerOf is the Offer message for t.
func (s *transferService) offerOf(t *transfer.Transfer) *ferryv1.Offer {
	o := &ferryv1.Offer{
		TransferId:  t.ID,
		DataAddress: s.dataAddress(t),
		Ticket:      ticketOf(t),
		Offset:      uint64(t.Offset),
		Length:      uint64(t.Length),
		Strategy:    apiconv.Strategy(t.Strategy),
		FileSize:    uint64(t.FileSize),
		Checksum:    apiconv.Checksum(t.Checksum),
		Inline:      t.Inline,
		Data:        t.Data,
		Framed:      t.Framed,
		DataTls:     !t.Inline && s.data.DataTLS(),
	}
	if t.Framed {
		o.DataAddress, o.Ticket = "", nil
	}
	return o
}

// offer checks the request and registers the transfer with the data plane.
func (s *transferService) offer(ctx context.Context, req *ferryv1.DownloadRequest) (*transfer.Transfer, error) {
	return s.offerWith(ctx, req, s.data.Offer)
}

// offerWith is offer making the offer with offerFn (the data plane's Offer,
// or a session's).
func (s *transferService) offerWith(ctx context.Context, req *ferryv1.DownloadRequest,
	offerFn func(transfer.Source) (*transfer.Transfer, error)) (*transfer.Transfer, error) {
	strategy, err := apiconv.FromStrategy(req.GetStrategy())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	sum, err := apiconv.FromChecksumAlgorithm(req.GetChecksum())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if req.GetOffset() > math.MaxInt64 || req.GetLength() > math.MaxInt64 {
		return nil, status.Error(codes.OutOfRange, "offset and length must fit in 63 bits")
	}
	if _, err := s.data.Choose(strategy); err != nil {
		return nil, s.statusOf(err, req.GetPath())
	}
	f, err := s.root.Open(req.GetPath())
	if err != nil {
		return nil, s.statusOf(err, req.GetPath())
	}
	t, err := offerFn(transfer.Source{
		File: f, Path: f.Name(), Offset: int64(req.GetOffset()), Length: int64(req.GetLength()), Strategy: strategy,
		ClientIP: clientIP(ctx), RateLimit: rateLimit(req.GetRateLimit()),
		Checksum: sum, InlineMax: inlineMax(req.GetInlineMax()), Context: ctx, Sink: apiconv.FromSink(req.GetSink()),
	})
	if err != nil {
		f.Close()
		return nil, s.statusOf(err, req.GetPath())
	}
	return t, nil
}

// statusOf is toStatus that also logs the cause of an Internal error,
// which the client is told to look for in the server's log.
func (s *transferService) statusOf(err error, ref string) error {
	st := toStatus(err, ref)
	if status.Code(st) == codes.Internal {
		s.log.Error("internal error", "ref", ref, "err", err)
	}
	return st
}

// follow streams progress until the transfer ends, then the report.
func (s *transferService) follow(stream grpc.ServerStreamingServer[ferryv1.DownloadResponse], t *transfer.Transfer) error {
	report, err := s.await(stream.Context(), t, func(p *ferryv1.Progress) error {
		return stream.Send(&ferryv1.DownloadResponse{Event: &ferryv1.DownloadResponse_Progress{Progress: p}})
	})
	if err != nil {
		return err
	}
	return stream.Send(&ferryv1.DownloadResponse{Event: &ferryv1.DownloadResponse_Report{Report: report}})
}

// await sends progress (every s.progress, when it moved) until t ends,
// and returns its report, or its error as a status. A ctx that ends
// first cancels t.
func (s *transferService) await(ctx context.Context, t *transfer.Transfer, progress func(*ferryv1.Progress) error) (*ferryv1.Report, error) {
	tick := time.NewTicker(s.progress)
	defer tick.Stop()
	var last int64 = -1
	for {
		select {
		case <-ctx.Done():
			t.Cancel()
			return nil, status.FromContextError(ctx.Err()).Err()
		case <-tick.C:
			if sent := t.Sent(); sent != last {
				last = sent
				if err := progress(&ferryv1.Progress{BytesSent: uint64(sent), BytesTotal: uint64(t.Length)}); err != nil {
					return nil, err
				}
			}
		case <-t.Done():
			st, err := t.Result()
			if err != nil { // the data plane has logged the details
				return nil, s.statusOf(err, "transfer "+t.ID)
			}
			return &ferryv1.Report{
				TransferId: t.ID,
				Path:       t.Path,
				Offset:     uint64(t.Offset),
				Length:     uint64(t.Length),
				Sender:     apiconv.Stats(st),
				Checksum:   apiconv.Checksum(t.Checksum),
				Auto:       apiconv.AutoChoice(t.Auto),
			}, nil
		}
	}
}
