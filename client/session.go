package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/fsroot"
	"github.com/ferrydev/ferry/internal/apiconv"
	"github.com/ferrydev/ferry/transfer"
)

// SessionOptions tunes a Session. The zero value is ready to use.
type SessionOptions struct {
	// Window is how many Gets may be in flight at once; more wait for a
	// place. 0 means the server's default (16); the server caps it.
	Window int
	// Connections is how many data connections to bind to the session;
	// the server caps it. 0 means 2; below 0, none: every offer then
	// comes with a ticket, as in Download, and uses the Client's pool.
	Connections int
	// Receive tunes the receiving copy loops; its IdleTimeout also bounds
	// how long a Get waits for the server's first answer.
	Receive ReceiveConfig
	// MaxBytes caps what one Get may write; 0 means no cap.
	MaxBytes uint64
}

// GetOptions are one Get's request. The fields mean what they mean in
// DownloadOptions.
type GetOptions struct {
	Offset    uint64
	Length    uint64
	Strategy  ferryv1.Strategy
	Checksum  ferryv1.ChecksumAlgorithm
	InlineMax uint64
	RateLimit uint64
	// Progress, if set, is called with each progress message, from the
	// session's receiving goroutine: it must not block.
	Progress func(*ferryv1.Progress)
}

// Session is one Session call: many transfers negotiated on one gRPC
// stream, their bytes on data connections bound to it once. Its methods
// are safe for concurrent use: each Get is one request, and they run at
// once up to the window. See "Sessions" in docs/design.md.
type Session struct {
	c       *Client
	opts    SessionOptions
	ctx     context.Context // the session's life: cancelled by Close or a failure
	cancel  context.CancelCauseFunc
	stream  grpc.BidiStreamingClient[ferryv1.SessionRequest, ferryv1.SessionResponse]
	sendMu  sync.Mutex
	closing bool // Close has closed the sending side (under sendMu)
	ready   *ferryv1.SessionReady
	addr    string        // the data address to bind connections on
	sec     *tls.Config   // TLS for the data connections; nil: plaintext
	slots   chan struct{} // a place per Get in flight (the window)
	ids     atomic.Uint64

	mu    sync.Mutex
	calls map[uint64]*call
	conns map[net.Conn]struct{}

	readers sync.WaitGroup // the stream's and each connection's reader
	ended   chan struct{}  // closed when the stream's reader returns
	err     error          // why the stream ended; set before ended is closed
}

// OpenSession starts a Session call and binds opts.Connections data
// connections to it. ctx bounds the session's whole life; Close ends it.
func (c *Client) OpenSession(ctx context.Context, opts SessionOptions) (*Session, error) {
	sctx, cancel := context.WithCancelCause(ctx)
	s := &Session{c: c, opts: opts, ctx: sctx, cancel: cancel, calls: make(map[uint64]*call),
		conns: make(map[net.Conn]struct{}), ended: make(chan struct{})}
	if err := s.open(); err != nil {
		cancel(err)
		return nil, err
	}
	s.readers.Go(s.readStream)
	for range s.wantConns() {
		if err := s.bind(); err != nil {
			s.Close()
			return nil, fmt.Errorf("ferry: binding a data connection to the session: %w", err)
		}
	}
	return s, nil
}

// wantConns is how many data connections the session keeps bound.
func (s *Session) wantConns() int {
	return max(0, min(orInt(s.opts.Connections, 2), int(s.ready.GetMaxConnections())))
}

func orInt(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// open sends the SessionOpen and reads SessionReady, within the idle
// timeout.
func (s *Session) open() error {
	stream, err := s.c.api.Session(s.ctx)
	if err != nil {
		return err
	}
	s.stream = stream
	if err := stream.Send(&ferryv1.SessionRequest{Request: &ferryv1.SessionRequest_Open{
		Open: &ferryv1.SessionOpen{Window: uint32(max(s.opts.Window, 0))}}}); err != nil && err != io.EOF {
		return err // io.EOF: the server ended the call; Recv below says why
	}
	stop := silence(s.opts.Receive.IdleLimit(), s.cancel, "waiting for the session to open")
	first, err := stream.Recv()
	stop()
	if err != nil {
		return idleCause(s.ctx, err)
	}
	s.ready = first.GetReady()
	if s.ready == nil || s.ready.GetWindow() == 0 {
		return errors.New("ferry: the server did not open the session with SessionReady")
	}
	if s.addr, err = s.c.checkedAddress(s.ready.GetDataAddress()); err != nil {
		return err
	}
	// As for an offer: TLS when the server requires it, and no plaintext
	// data channel for a client that expects TLS (datatls.go).
	if s.sec, err = s.c.dataTLSFor(stream.Context(), &ferryv1.Offer{DataTls: s.ready.GetDataTls()}); err != nil {
		return err
	}
	s.slots = make(chan struct{}, s.ready.GetWindow())
	return nil
}

// bind binds one more data connection and starts its reader.
func (s *Session) bind() error {
	conn, err := transfer.BindSession(s.ctx, s.addr, s.ready.GetTicket(), s.sec, s.opts.Receive)
	if err != nil {
		return err
	}
	s.mu.Lock()
	if s.ctx.Err() != nil {
		s.mu.Unlock()
		conn.Close()
		return context.Cause(s.ctx)
	}
	s.conns[conn] = struct{}{}
	s.mu.Unlock()
	s.readers.Go(func() { s.readConn(conn) })
	return nil
}

// Close ends the session: it closes the sending side, lets the server
// answer the requests still in flight (for at most the idle timeout),
// then cancels what is left and closes the data connections.
func (s *Session) Close() error {
	s.sendMu.Lock()
	s.closing = true
	s.stream.CloseSend()
	s.sendMu.Unlock()
	wait := s.opts.Receive.IdleLimit()
	if wait <= 0 {
		wait = time.Minute
	}
	select {
	case <-s.ended:
	case <-time.After(wait):
	}
	s.cancel(errSessionClosed)
	s.mu.Lock()
	for conn := range s.conns {
		conn.Close()
	}
	s.mu.Unlock()
	s.readers.Wait()
	if errors.Is(s.err, io.EOF) || errors.Is(s.err, errSessionClosed) {
		return nil
	}
	return s.err
}

// errSessionClosed is the cause of a session ended by Close.
var errSessionClosed = errors.New("ferry: session closed")

// send sends one request.
func (s *Session) send(m *ferryv1.SessionRequest) error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if s.closing {
		return errSessionClosed
	}
	return s.stream.Send(m)
}

// Get fetches one file (a range of it, as opts say) into dest, as
// Download does: written aside, checked, made durable and renamed into
// place (os.DevNull discards). It returns once the file has landed; the
// Result's Report waits for the server's report.
func (s *Session) Get(ctx context.Context, path, dest string, opts GetOptions) (*Result, error) {
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	case <-s.ended:
		return nil, s.endErr()
	}
	cl, err := s.start(path, dest, opts)
	if err != nil {
		return nil, err
	}
	return cl.land(ctx)
}

// Download is Get followed by the Result's Report: the file and the
// server's report of it.
func (s *Session) Download(ctx context.Context, path, dest string, opts GetOptions) (*ferryv1.Report, error) {
	res, err := s.Get(ctx, path, dest, opts)
	if err != nil {
		return nil, err
	}
	return res.Report(ctx)
}

// start registers a call for a Get, which holds a place in the window,
// and sends its request. On error the place is given back.
func (s *Session) start(path, dest string, opts GetOptions) (*call, error) {
	req := &ferryv1.GetRequest{Id: s.ids.Add(1), Path: path, Offset: opts.Offset, Length: opts.Length,
		Strategy: opts.Strategy, Checksum: opts.Checksum, RateLimit: opts.RateLimit, InlineMax: opts.InlineMax,
		Sink: sinkOf(dest, readsAll(opts.Checksum, s.opts.Receive))}
	dst, err := fsroot.CreateDestination(dest)
	if err != nil {
		<-s.slots
		return nil, err
	}
	if alg, _ := apiconv.FromChecksumAlgorithm(opts.Checksum); alg != transfer.NoChecksum {
		if err := transfer.ExpectChecksum(dst, alg); err != nil {
			dst.Abort()
			<-s.slots
			return nil, err
		}
	}
	cl := newCall(s, req, dest, dst, opts.Progress)
	if opts.Checksum == ferryv1.ChecksumAlgorithm_CHECKSUM_ALGORITHM_UNSPECIFIED {
		cl.arm("waiting for the request's first answer")
	}
	s.mu.Lock()
	s.calls[req.Id] = cl
	s.mu.Unlock()
	if err := s.send(&ferryv1.SessionRequest{Request: &ferryv1.SessionRequest_Get{Get: req}}); err != nil {
		if errors.Is(err, io.EOF) { // the call has ended: its status says why
			<-s.ended
			err = s.endErr()
		} else {
			err = fmt.Errorf("ferry: sending the request: %w", err)
		}
		cl.end(nil, err) // once, whoever comes first: gives the place back
		cl.hush()
		dst.Abort()
		return nil, err
	}
	return cl, nil
}

// forget removes cl from the session's calls.
func (s *Session) forget(cl *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.calls[cl.req.Id] == cl {
		delete(s.calls, cl.req.Id)
	}
}

// lookup finds the call a message or frame is for.
func (s *Session) lookup(id uint64) *call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[id]
}

// endErr is why the session can take no more requests.
func (s *Session) endErr() error {
	if s.err == nil || errors.Is(s.err, io.EOF) {
		return fmt.Errorf("ferry: the session has ended")
	}
	return fmt.Errorf("ferry: the session has ended: %w", s.err)
}

// readStream reads the server's messages and hands each to its call,
// until the stream ends; then every call still waiting fails.
func (s *Session) readStream() {
	var err error
	for {
		var m *ferryv1.SessionResponse
		if m, err = s.stream.Recv(); err != nil {
			break
		}
		if cl := s.lookup(m.GetId()); cl != nil {
			cl.message(m)
		}
	}
	s.mu.Lock()
	s.err = err
	left := make([]*call, 0, len(s.calls))
	for _, cl := range s.calls {
		left = append(left, cl)
	}
	s.mu.Unlock()
	close(s.ended)
	for _, cl := range left {
		cl.end(nil, sessionEnded(err))
	}
}

// sessionEnded is the error of a call the session's end left unanswered.
func sessionEnded(err error) error {
	if err == nil || errors.Is(err, io.EOF) {
		return status.Error(codes.Unavailable, "ferry: the session ended before the request's report")
	}
	return err
}

// readConn reads frames from one bound connection until it fails or
// closes, receiving each into its call.
func (s *Session) readConn(conn net.Conn) {
	defer func() {
		s.mu.Lock()
		delete(s.conns, conn)
		s.mu.Unlock()
		conn.Close()
		s.rebind() // while this reader runs: Close's Wait cannot have passed
	}()
	for {
		h, err := transfer.ReadFrameHeader(conn)
		if err != nil {
			return
		}
		cl := s.lookup(h.ID)
		if cl == nil || !cl.claim() {
			// A request given up on: drop its frame and go on; the
			// server cuts it short if it saw the cancel in time.
			if transfer.SkipFrame(conn, h) != nil {
				return
			}
			continue
		}
		if !cl.receiveFrame(conn, h) {
			return
		}
	}
}

// rebind replaces a data connection that ended, while the session lives.
func (s *Session) rebind() {
	if s.ctx.Err() != nil {
		return
	}
	s.mu.Lock()
	n := len(s.conns)
	s.mu.Unlock()
	if n < s.wantConns() {
		s.bind() // a failure leaves fewer: offers come with tickets when none is left
	}
}
