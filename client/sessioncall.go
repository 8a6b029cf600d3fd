package client

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/fsroot"
	"github.com/ferrydev/ferry/internal/apiconv"
	"github.com/ferrydev/ferry/transfer"
)

// call is one Get of a Session. Its bytes are received by whichever
// receiver claims it first (a bound connection's reader for a frame, the
// stream's reader for an inline offer or one with a ticket); the Get's
// goroutine waits for them in land and owns dst once they came or the
// call died unclaimed.
type call struct {
	s        *Session
	req      *ferryv1.GetRequest
	dest     string
	dst      *fsroot.Destination
	progress func(*ferryv1.Progress)
	ctx      context.Context // cancelled when the Get gives up, goes silent or fails
	abort    context.CancelCauseFunc

	state atomic.Int32  // callOpen, callClaimed, callDead
	data  chan received // the receive's outcome, once

	mu       sync.Mutex
	quiet    func() // stops the silence timer armed last (arm)
	offer    *ferryv1.Offer
	offered  chan struct{} // closed when offer is set
	ended    chan struct{} // closed when report or err is set
	report   *ferryv1.Report
	err      error
	received bool // data has been sent
	verified bool // the checksum was verified
	stats    transfer.Stats
}

const (
	callOpen    = iota
	callClaimed // a receiver owns dst until it sends on data
	callDead    // no receiver will touch dst
)

func newCall(s *Session, req *ferryv1.GetRequest, dest string, dst *fsroot.Destination, progress func(*ferryv1.Progress)) *call {
	ctx, abort := context.WithCancelCause(s.ctx)
	return &call{s: s, req: req, dest: dest, dst: dst, progress: progress, ctx: ctx, abort: abort,
		quiet: func() {}, data: make(chan received, 1), offered: make(chan struct{}), ended: make(chan struct{})}
}

// arm fails the call with ErrIdle unless the server's next word comes
// within the idle timeout (hush).
func (cl *call) arm(what string) {
	t := silence(cl.s.opts.Receive.IdleLimit(), cl.abort, what)
	cl.mu.Lock()
	defer cl.mu.Unlock()
	cl.quiet()
	cl.quiet = t
}

// hush stops the silence timer: the server has been heard.
func (cl *call) hush() {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	cl.quiet()
}

// claim makes the caller the call's receiver, if none is yet and the
// call lives.
func (cl *call) claim() bool { return cl.state.CompareAndSwap(callOpen, callClaimed) }

// kill marks an unclaimed call dead; it reports false when a receiver
// has claimed it (and will send on data).
func (cl *call) kill() bool {
	return cl.state.CompareAndSwap(callOpen, callDead) || cl.state.Load() == callDead
}

// message takes one server message for the call (the stream's reader).
func (cl *call) message(m *ferryv1.SessionResponse) {
	cl.hush()
	switch ev := m.GetEvent().(type) {
	case *ferryv1.SessionResponse_Offer:
		cl.takeOffer(ev.Offer)
	case *ferryv1.SessionResponse_Progress:
		if cl.progress != nil {
			cl.progress(ev.Progress)
		}
	case *ferryv1.SessionResponse_Report:
		cl.end(ev.Report, nil)
	case *ferryv1.SessionResponse_Failed:
		f := ev.Failed
		cl.end(nil, status.Error(codes.Code(f.GetCode()), f.GetMessage()))
	}
}

// takeOffer checks the offer and, unless its bytes come framed on a
// bound connection, receives them: inline at once, behind a ticket on a
// goroutine of their own.
func (cl *call) takeOffer(o *ferryv1.Offer) {
	cl.mu.Lock()
	if cl.offer != nil {
		cl.mu.Unlock()
		return
	}
	cl.offer = o
	close(cl.offered)
	cl.mu.Unlock()
	if err := checkOffer(cl.downloadRequest(), o); err != nil {
		cl.fail(err)
		return
	}
	if o.GetFramed() || !cl.claim() {
		return
	}
	if err := cl.checkLength(o.GetLength()); err != nil {
		cl.done(received{err: err})
		return
	}
	sec, err := cl.s.c.dataTLSFor(cl.s.stream.Context(), o)
	if err != nil {
		cl.done(received{err: err})
		return
	}
	if o.GetInline() {
		cl.done(receivedOf(cl.s.c.receive(cl.ctx, o, sec, cl.dst, cl.s.opts.Receive)))
		return
	}
	go func() { cl.done(receivedOf(cl.s.c.receive(cl.ctx, o, sec, cl.dst, cl.s.opts.Receive))) }()
}

func receivedOf(st transfer.Stats, err error) received { return received{st, err, time.Now()} }

// downloadRequest is the request as a Download would have made it, for
// the checks the two share.
func (cl *call) downloadRequest() *ferryv1.DownloadRequest {
	r := cl.req
	return &ferryv1.DownloadRequest{Path: r.GetPath(), Offset: r.GetOffset(), Length: r.GetLength(),
		Strategy: r.GetStrategy(), Checksum: r.GetChecksum(), RateLimit: r.GetRateLimit(), InlineMax: r.GetInlineMax(),
		Sink: r.GetSink()}
}

// checkLength refuses length bytes past the request, MaxBytes or the
// destination's free space.
func (cl *call) checkLength(length uint64) error {
	if want := cl.req.GetLength(); want > 0 && length > want {
		return fmt.Errorf("ferry: %w: asked for %d bytes, %d came", ErrBadOffer, want, length)
	}
	if err := checkSize(cl.dest, 0, length, cl.s.opts.MaxBytes); err != nil {
		return err
	}
	return checkRoom(cl.dst, int64(length))
}

// receiveFrame receives the frame h heads into the call (a bound
// connection's reader, having claimed it). It reports whether the
// connection can carry the next frame.
func (cl *call) receiveFrame(conn net.Conn, h transfer.FrameHeader) bool {
	cl.hush()
	if err := cl.checkLength(uint64(h.Length)); err != nil {
		cl.done(received{err: err})
		return false
	}
	strategy := transfer.ReadWrite
	cl.mu.Lock()
	if cl.offer != nil {
		strategy, _ = apiconv.FromStrategy(cl.offer.GetStrategy())
	}
	cl.mu.Unlock()
	st, reusable, err := transfer.ReceiveFrame(cl.ctx, conn, h, strategy, cl.dst, cl.s.opts.Receive)
	cl.done(receivedOf(st, err))
	return reusable
}

// done hands the receive's outcome to the Get.
func (cl *call) done(r received) {
	cl.data <- r
	cl.mu.Lock()
	cl.received = true
	cl.mu.Unlock()
	cl.forgetIfOver()
}

// forgetIfOver removes the call from the session once nothing more can
// come for it: the server's last word came, and a receiver has been or
// the call died unclaimed.
func (cl *call) forgetIfOver() {
	cl.mu.Lock()
	over := cl.isEnded() && (cl.received || cl.state.Load() == callDead)
	cl.mu.Unlock()
	if over {
		cl.s.forget(cl)
	}
}

func (cl *call) isEnded() bool {
	select {
	case <-cl.ended:
		return true
	default:
		return false
	}
}

// end records the server's last word on the call, gives its window place
// back and, once no receiver can still come for it, forgets it.
func (cl *call) end(report *ferryv1.Report, err error) {
	cl.mu.Lock()
	if cl.isEnded() {
		cl.mu.Unlock()
		return
	}
	cl.report, cl.err = report, err
	close(cl.ended)
	if err != nil {
		cl.kill() // no receiver may come for it now; one running stops below
	}
	waiting := err == nil && cl.state.Load() == callOpen
	cl.mu.Unlock()
	<-cl.s.slots
	if err != nil {
		cl.abort(err)
	}
	if waiting { // the frame is on its way: it must come within the idle timeout
		cl.arm("waiting for the bytes the report says were sent")
	}
	cl.forgetIfOver()
}

// fail ends the call on this side: the server is told to cancel it.
func (cl *call) fail(err error) {
	cl.abort(err)
	cl.s.send(&ferryv1.SessionRequest{Request: &ferryv1.SessionRequest_Cancel{Cancel: &ferryv1.CancelRequest{Id: cl.req.GetId()}}})
}

// land waits for the call's bytes and lands them: it returns once the
// file is in place, or the error that stopped it (and then nothing is
// left at dest).
func (cl *call) land(ctx context.Context) (*Result, error) {
	stop := context.AfterFunc(ctx, func() { cl.fail(context.Cause(ctx)) })
	defer stop()
	defer cl.hush()
	select {
	case r := <-cl.data:
		return cl.finish(ctx, r)
	case <-cl.ctx.Done():
		cause := context.Cause(cl.ctx)
		if !cl.kill() {
			<-cl.data // the receiver ends: cl.ctx is its context
		}
		cl.dst.Abort()
		cl.forgetIfOver()
		return nil, cl.why(cause)
	}
}

// why prefers the server's reason for a call's end, when it gave one,
// to the local cause.
func (cl *call) why(cause error) error {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.isEnded() && cl.err != nil {
		return cl.err
	}
	return cause
}

// finish lands a call whose receive ended with r: checked against the
// offer's checksum when one was asked for, then committed.
func (cl *call) finish(ctx context.Context, r received) (*Result, error) {
	if r.err != nil {
		cl.fail(r.err)
		cl.dst.Abort()
		return nil, cl.why(r.err)
	}
	if err := cl.verify(ctx, &r.stats); err != nil {
		cl.dst.Remove()
		return nil, fmt.Errorf("ferry: %s: %w", cl.dest, err)
	}
	if err := cl.dst.Commit(); err != nil {
		return nil, fmt.Errorf("ferry: landing %s: %w", cl.dest, err)
	}
	cl.mu.Lock()
	cl.stats = r.stats
	cl.mu.Unlock()
	return &Result{cl: cl, Bytes: r.stats.Bytes}, nil
}

// verify checks the received bytes against the offer's checksum, when
// the request asked for one: it waits for the offer if it has not come.
func (cl *call) verify(ctx context.Context, st *transfer.Stats) error {
	if cl.req.GetChecksum() == ferryv1.ChecksumAlgorithm_CHECKSUM_ALGORITHM_UNSPECIFIED {
		return nil
	}
	select {
	case <-cl.offered:
	case <-cl.ended:
		select {
		case <-cl.offered:
		default:
			return cl.why(fmt.Errorf("no offer came"))
		}
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	want, err := offerChecksum(cl.downloadRequest(), cl.offer)
	if err != nil {
		return err
	}
	got, err := transfer.VerifyChecksum(ctx, cl.dst, want)
	st.ChecksumCPU += got.CPU
	if err == nil {
		cl.verified = true
	}
	return err
}

// Result is a Get whose file has landed.
type Result struct {
	cl *call
	// Bytes is how many bytes the file received.
	Bytes int64
}

// Report waits for the server's report of the transfer and returns it,
// with this side's receiver statistics.
func (r *Result) Report(ctx context.Context) (*ferryv1.Report, error) {
	cl := r.cl
	select {
	case <-cl.ended:
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
	if cl.err != nil {
		return nil, cl.err
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	st := cl.stats
	rep := cl.report
	// The sender's strategy: a framed transfer with no checksum has no
	// offer, and its report says.
	st.Strategy, _ = apiconv.FromStrategy(rep.GetSender().GetStrategy())
	rep.Receiver = apiconv.Stats(st)
	rep.ChecksumVerified = cl.verified
	return rep, nil
}
