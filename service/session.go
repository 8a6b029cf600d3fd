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
		inflight: make(map[uint64]context.CancelFunc), changed: make(chan struct{}, 1), work: newWorkers()}
	defer r.stop()
	if err := r.out.send(&ferryv1.SessionResponse{Event: &ferryv1.SessionResponse_Ready{Ready: &ferryv1.SessionReady{
		DataAddress: s.address, Ticket: ss.Ticket(), Window: uint32(r.window), MaxConnections: uint32(ss.MaxConns()),
		DataTls: s.data.DataTLS(),
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

// sessionOut sends a session's messages: one at a time, as gRPC asks,
// and none once the handler is returning (close).
type sessionOut struct {
	mu     sync.Mutex
	stream sessionStream
	closed bool
}

func (o *sessionOut) send(m *ferryv1.SessionResponse) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return errSessionOver
	}
	return o.stream.Send(m)
}

// close stops every later send: the handler returns, and gRPC forbids
// sending on its stream after that.
func (o *sessionOut) close() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.closed = true
}

var errSessionOver = status.Error(codes.Canceled, "the session has ended")

// fail answers request id with its error, as a status.
func (o *sessionOut) fail(id uint64, err error) error {
	st := status.Convert(err)
	return o.send(&ferryv1.SessionResponse{Id: id, Event: &ferryv1.SessionResponse_Failed{Failed: &ferryv1.RequestFailed{
		Code: uint32(st.Code()), CodeName: st.Code().String(), Message: st.Message(),
	}}})
}

// errDuplicate is admit's answer to an id already in flight.
var errDuplicate = errors.New("duplicate id")

// sessionRun is one Session call's state.
type sessionRun struct {
	s      *transferService
	ss     *transfer.Session
	out    *sessionOut
	window int
	peer   string

	mu       sync.Mutex
	inflight map[uint64]context.CancelFunc // requests accepted and not yet answered in full
	draining bool                          // the server shuts down: new requests are refused
	stopped  bool                          // the call is ending: nothing new starts
	changed  chan struct{}                 // a request ended (capacity 1: a wakeup)
	wg       sync.WaitGroup
	work     *workers // run each request's serve
}

// run serves requests as they arrive, on the receiving goroutine, until
// the client closes its side (then it waits for those in flight), the
// call ends, or the server shuts down (then it refuses new requests, and
// ends once those in flight have finished).
func (r *sessionRun) run(ctx context.Context, stream sessionStream) error {
	recvErr := make(chan error, 1)
	go func() {
		for {
			m, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			r.handle(ctx, m)
		}
	}()
	var stopping <-chan struct{}
	if r.s.stopping != nil {
		stopping = r.s.stopping.Done()
	}
	closed := false
	for {
		if n, draining := r.state(); (closed || draining) && n == 0 {
			if draining {
				return status.Error(codes.Unavailable, "server shutting down; the session's requests have finished")
			}
			return nil
		}
		select {
		case err := <-recvErr:
			if err != io.EOF {
				return err
			}
			closed = true
		case <-r.changed:
		case <-stopping:
			stopping = nil
			r.mu.Lock()
			r.draining = true
			r.mu.Unlock()
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		}
	}
}

// state is how many requests are in flight, and whether the server is
// draining.
func (r *sessionRun) state() (int, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.inflight), r.draining
}

// handle starts a get or cancels one.
func (r *sessionRun) handle(ctx context.Context, m *ferryv1.SessionRequest) {
	switch {
	case m.GetGet() != nil:
		r.start(ctx, m.GetGet())
	case m.GetCancel() != nil:
		r.mu.Lock()
		cancel := r.inflight[m.GetCancel().GetId()]
		r.mu.Unlock()
		if cancel != nil {
			cancel()
		}
	case m.GetOpen() != nil:
		r.out.fail(0, status.Error(codes.InvalidArgument, "open must be the session's first message"))
	}
}

// admit takes a place in the window for request id, or says why not.
func (r *sessionRun) admit(id uint64, cancel context.CancelFunc) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case id == 0:
		return status.Error(codes.InvalidArgument, "a get needs an id other than 0")
	case r.draining:
		return status.Error(codes.Unavailable, "server shutting down; retry on another")
	case r.inflight[id] != nil:
		return errDuplicate
	case len(r.inflight) >= r.window:
		return status.Errorf(codes.ResourceExhausted, "the session's window is full: %d requests in flight", r.window)
	case r.stopped:
		return status.Error(codes.Canceled, "the session is ending")
	}
	r.inflight[id] = cancel
	r.wg.Add(1) // under mu: stop's Wait comes after every Add
	return nil
}

// release gives back request id's place, before its last message goes
// out: a client that sends its next request on reading it finds the
// place free.
func (r *sessionRun) release(id uint64) {
	r.mu.Lock()
	delete(r.inflight, id)
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// start admits a get and offers it. A get without a checksum is offered
// here, on the receiving goroutine, so that its bytes leave before the
// next request is read; one with a checksum (hashing may take a while)
// on a goroutine of its own, which then follows the transfer.
func (r *sessionRun) start(ctx context.Context, g *ferryv1.GetRequest) {
	gctx, cancel := context.WithCancel(ctx)
	if err := r.admit(g.GetId(), cancel); err != nil {
		cancel()
		if err == errDuplicate { // answered as 0: under its id it would read as the first one's end
			r.out.fail(0, status.Errorf(codes.InvalidArgument, "id %d is already in flight on this session", g.GetId()))
			return
		}
		r.out.fail(g.GetId(), err)
		return
	}
	if g.GetChecksum() != ferryv1.ChecksumAlgorithm_CHECKSUM_ALGORITHM_UNSPECIFIED {
		r.work.run(func() {
			defer r.wg.Done()
			defer cancel()
			t, err := r.offer(gctx, g)
			r.serve(gctx, g, t, err)
		})
		return
	}
	t, err := r.offer(gctx, g)
	r.work.run(func() {
		defer r.wg.Done()
		defer cancel()
		r.serve(gctx, g, t, err)
	})
}

// stop cancels the requests still in flight and waits for their
// goroutines, which release their transfers.
func (r *sessionRun) stop() {
	defer r.out.close()
	r.mu.Lock()
	r.stopped = true
	for _, cancel := range r.inflight {
		cancel()
	}
	r.mu.Unlock()
	r.wg.Wait()
	r.work.close()
}

// offer makes a get's offer: framed on a bound data connection when the
// session has one, behind a ticket otherwise.
func (r *sessionRun) offer(ctx context.Context, g *ferryv1.GetRequest) (*transfer.Transfer, error) {
	req := &ferryv1.DownloadRequest{Path: g.GetPath(), Offset: g.GetOffset(), Length: g.GetLength(),
		Strategy: g.GetStrategy(), Checksum: g.GetChecksum(), RateLimit: g.GetRateLimit(), InlineMax: g.GetInlineMax(),
		Sink: g.GetSink()}
	via := r.s.data.Offer
	if r.ss.Bound() > 0 {
		via = func(src transfer.Source) (*transfer.Transfer, error) { return r.ss.Offer(src, g.GetId()) }
	}
	return r.s.offerWith(ctx, req, via)
}

// serve follows one offered get to its end and answers with its report,
// or with the error that ended it (err, when the offer failed).
func (r *sessionRun) serve(ctx context.Context, g *ferryv1.GetRequest, t *transfer.Transfer, err error) {
	id := g.GetId()
	if err != nil {
		r.release(id)
		r.out.fail(id, err)
		return
	}
	defer t.Cancel()
	rec := r.s.transfers.startLive(ctx, &ferryv1.TransferInfo{
		TransferId: t.ID, Kind: ferryv1.TransferKind_TRANSFER_KIND_DOWNLOAD, Path: t.Path,
		Peer: r.peer, Strategy: apiconv.Strategy(t.Strategy), BytesTotal: uint64(t.Length),
	}, t.Sent)
	report, err := r.follow(ctx, id, t)
	rec.finish(report, nil, err)
	r.release(id)
	if err != nil {
		if ctx.Err() != nil && status.Code(err) == codes.Canceled {
			err = status.Errorf(codes.Canceled, "request %d cancelled", id)
		}
		r.out.fail(id, err)
		return
	}
	r.out.send(&ferryv1.SessionResponse{Id: id, Event: &ferryv1.SessionResponse_Report{Report: report}})
}

// follow sends t's offer, then its progress until it ends, and returns
// its report. A framed transfer with no checksum gets no offer message:
// its frame's header carries the length, its report all the rest.
func (r *sessionRun) follow(ctx context.Context, id uint64, t *transfer.Transfer) (*ferryv1.Report, error) {
	if !t.Framed || t.Checksum.Algorithm != transfer.NoChecksum {
		if err := r.out.send(&ferryv1.SessionResponse{Id: id, Event: &ferryv1.SessionResponse_Offer{Offer: r.s.offerOf(t)}}); err != nil {
			return nil, fmt.Errorf("sending the offer: %w", err)
		}
	}
	return r.s.await(ctx, t, func(p *ferryv1.Progress) error {
		return r.out.send(&ferryv1.SessionResponse{Id: id, Event: &ferryv1.SessionResponse_Progress{Progress: p}})
	})
}
