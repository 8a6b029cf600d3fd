package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/internal/apiconv"
	"github.com/ferrydev/ferry/transfer"
)

// A session's window: requests in flight at once when the client does not
// say (SessionOpen.window), and the most it may ask for.
const (
	defaultSessionWindow = 16
	maxSessionWindow     = 256
)

type sessionStream = grpc.BidiStreamingServer[ferryv1.SessionRequest, ferryv1.SessionResponse]

// Session runs one Session call: a data-plane session whose ticket the
// client binds data connections with, and a goroutine per request in
// flight, each answering with its offer, progress and report (or
// failure), under its request's id.
func (s *transferService) Session(stream sessionStream) error {
	ctx := stream.Context()
	first, err := stream.Recv()
	if err == io.EOF {
		return nil
	}
	if err != nil {
		return err
	}
	if s.stopping != nil && s.stopping.Err() != nil {
		return status.Error(codes.Unavailable, "server shutting down; retry on another")
	}
	ss, err := s.data.OpenSession(transfer.SessionConfig{ClientIP: clientIP(ctx)})
	if err != nil {
		return s.statusOf(err, "session")
	}
	defer ss.Close()
	r := &sessionRun{s: s, ss: ss, out: &sessionOut{stream: stream},
		window: sessionWindow(first.GetOpen().GetWindow()), peer: callerAddr(stream),
		inflight: make(map[uint64]context.CancelFunc), done: make(chan uint64), quit: make(chan struct{})}
	defer r.stop()
	if err := r.out.send(&ferryv1.SessionResponse{Event: &ferryv1.SessionResponse_Ready{Ready: &ferryv1.SessionReady{
		DataAddress: s.address, Ticket: ss.Ticket(), Window: uint32(r.window), MaxConnections: uint32(ss.MaxConns()),
	}}}); err != nil {
		return err
	}
	if first.GetOpen() == nil {
		r.handle(ctx, first)
	}
	return r.run(ctx, stream)
}

// sessionWindow is the window a client asked for, defaulted and capped.
func sessionWindow(asked uint32) int {
	if asked == 0 {
		return defaultSessionWindow
	}
	return int(min(asked, maxSessionWindow))
}

// sessionOut sends a session's messages: one at a time, as gRPC asks.
type sessionOut struct {
	mu     sync.Mutex
	stream sessionStream
}

func (o *sessionOut) send(m *ferryv1.SessionResponse) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.stream.Send(m)
}

// fail answers request id with its error, as a status.
func (o *sessionOut) fail(id uint64, err error) error {
	st := status.Convert(err)
	return o.send(&ferryv1.SessionResponse{Id: id, Event: &ferryv1.SessionResponse_Failed{Failed: &ferryv1.RequestFailed{
		Code: uint32(st.Code()), CodeName: st.Code().String(), Message: st.Message(),
	}}})
}

// sessionRun is one Session call's state. inflight is touched by run's
// goroutine only.
type sessionRun struct {
	s      *transferService
	ss     *transfer.Session
	out    *sessionOut
	window int
	peer   string

	inflight map[uint64]context.CancelFunc // requests accepted and not yet answered in full
	done     chan uint64                   // a request's goroutine has sent its last message
	quit     chan struct{}                 // closed when run returns
	wg       sync.WaitGroup
}

// run reads requests until the client closes its side (then waits for
// those in flight), the call ends, or the server shuts down (then it
// refuses new requests, and ends once those in flight have finished).
func (r *sessionRun) run(ctx context.Context, stream sessionStream) error {
	reqs, recvErr := r.receive(ctx, stream)
	var stopping <-chan struct{}
	if r.s.stopping != nil {
		stopping = r.s.stopping.Done()
	}
	closed, draining := false, false
	for {
		if (closed || draining) && len(r.inflight) == 0 {
			if draining {
				return status.Error(codes.Unavailable, "server shutting down; the session's requests have finished")
			}
			return nil
		}
		select {
		case m := <-reqs:
			if draining {
				r.refuse(m, status.Error(codes.Unavailable, "server shutting down; retry on another"))
				continue
			}
			r.handle(ctx, m)
		case err := <-recvErr:
			if err != io.EOF {
				return err
			}
			closed, reqs = true, nil
		case id := <-r.done:
			delete(r.inflight, id)
		case <-stopping:
			draining, stopping = true, nil
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		}
	}
}

// receive reads the client's messages on a goroutine of its own: each
// comes on reqs, the error that ends them (io.EOF when the client closed
// its side) on the second channel.
func (r *sessionRun) receive(ctx context.Context, stream sessionStream) (<-chan *ferryv1.SessionRequest, <-chan error) {
	reqs, errc := make(chan *ferryv1.SessionRequest), make(chan error, 1)
	go func() {
		for {
			m, err := stream.Recv()
			if err != nil {
				errc <- err
				return
			}
			select {
			case reqs <- m:
			case <-ctx.Done():
				return
			}
		}
	}()
	return reqs, errc
}

// handle starts a get or cancels one.
func (r *sessionRun) handle(ctx context.Context, m *ferryv1.SessionRequest) {
	switch {
	case m.GetGet() != nil:
		r.start(ctx, m.GetGet())
	case m.GetCancel() != nil:
		if cancel := r.inflight[m.GetCancel().GetId()]; cancel != nil {
			cancel()
		}
	case m.GetOpen() != nil:
		r.out.fail(0, status.Error(codes.InvalidArgument, "open must be the session's first message"))
	}
}

// refuse answers a get with err without starting it.
func (r *sessionRun) refuse(m *ferryv1.SessionRequest, err error) {
	if g := m.GetGet(); g != nil {
		r.out.fail(g.GetId(), err)
	}
}

// start checks a get against the id rules and the window, then serves
// it on a goroutine of its own.
func (r *sessionRun) start(ctx context.Context, g *ferryv1.GetRequest) {
	id := g.GetId()
	switch {
	case id == 0:
		r.out.fail(0, status.Error(codes.InvalidArgument, "a get needs an id other than 0"))
		return
	case r.inflight[id] != nil:
		r.out.fail(id, status.Errorf(codes.InvalidArgument, "id %d is already in flight on this session", id))
		return
	case len(r.inflight) >= r.window:
		r.out.fail(id, status.Errorf(codes.ResourceExhausted, "the session's window is full: %d requests in flight", r.window))
		return
	}
	gctx, cancel := context.WithCancel(ctx)
	r.inflight[id] = cancel
	r.wg.Go(func() {
		defer cancel()
		r.serve(gctx, g)
		select {
		case r.done <- id:
		case <-r.quit:
		}
	})
}

// stop cancels the requests still in flight and waits for their
// goroutines, which release their transfers.
func (r *sessionRun) stop() {
	close(r.quit)
	for _, cancel := range r.inflight {
		cancel()
	}
	r.wg.Wait()
}

// serve answers one get: its offer, progress and report, or the error
// that ended it. The transfer goes framed on a bound data connection when
// the session has one, behind a ticket otherwise.
func (r *sessionRun) serve(ctx context.Context, g *ferryv1.GetRequest) {
	id := g.GetId()
	req := &ferryv1.DownloadRequest{Path: g.GetPath(), Offset: g.GetOffset(), Length: g.GetLength(),
		Strategy: g.GetStrategy(), Checksum: g.GetChecksum(), RateLimit: g.GetRateLimit(), InlineMax: g.GetInlineMax()}
	via := r.s.data.Offer
	if r.ss.Bound() > 0 {
		via = func(src transfer.Source) (*transfer.Transfer, error) { return r.ss.Offer(src, id) }
	}
	t, err := r.s.offerWith(ctx, req, via)
	if err != nil {
		r.out.fail(id, err)
		return
	}
	defer t.Cancel()
	rec := r.s.transfers.startLive(&ferryv1.TransferInfo{
		TransferId: t.ID, Kind: ferryv1.TransferKind_TRANSFER_KIND_DOWNLOAD, Path: t.Path,
		Peer: r.peer, Strategy: apiconv.Strategy(t.Strategy), BytesTotal: uint64(t.Length),
	}, t.Sent)
	report, err := r.follow(ctx, id, t)
	rec.finish(report, nil, err)
	if err != nil {
		if errors.Is(ctx.Err(), context.Canceled) && status.Code(err) == codes.Canceled {
			err = status.Errorf(codes.Canceled, "request %d cancelled", id)
		}
		r.out.fail(id, err)
		return
	}
	r.out.send(&ferryv1.SessionResponse{Id: id, Event: &ferryv1.SessionResponse_Report{Report: report}})
}

// follow sends t's offer, then its progress until it ends, and returns
// its report.
func (r *sessionRun) follow(ctx context.Context, id uint64, t *transfer.Transfer) (*ferryv1.Report, error) {
	if err := r.out.send(&ferryv1.SessionResponse{Id: id, Event: &ferryv1.SessionResponse_Offer{Offer: r.s.offerOf(t)}}); err != nil {
		return nil, fmt.Errorf("sending the offer: %w", err)
	}
	return r.s.await(ctx, t, func(p *ferryv1.Progress) error {
		return r.out.send(&ferryv1.SessionResponse{Id: id, Event: &ferryv1.SessionResponse_Progress{Progress: p}})
	})
}
