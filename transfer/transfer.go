package transfer

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Transfer is one offered range of one file, from its offer to its end.
type Transfer struct {
	ID       string
	Ticket   [TicketSize]byte
	Strategy Strategy
	Path     string
	Offset   int64
	Length   int64 // exact bytes the data channel carries
	FileSize int64
	// RateLimit is the pace applied to the data channel, in bytes per
	// second: the lower of Source.RateLimit and Config.MaxRate; 0 means
	// unlimited.
	RateLimit int64
	// Checksum is the sender's checksum of the range, when the offer
	// asked for one (Source.Checksum).
	Checksum Checksum
	// Inline is true when the offer carries the range's bytes, in Data
	// (Source.InlineMax): no ticket was issued, no data connection is
	// made, and the transfer has finished by the time Offer returns.
	Inline bool
	Data   []byte

	file   *os.File
	client netip.Addr // with BindDataToClient, the only source its ticket is good from
	srv    *Server
	sent   atomic.Int64
	ctx    context.Context
	cancel context.CancelCauseFunc
	expiry *time.Timer

	// peer is the offer's client address, then the data connection's
	// remote address; started is set when that connection claims the
	// ticket. Both are written before finish can run on another
	// goroutine (a claimed ticket cannot be revoked), for its log line.
	peer    string
	started bool

	once  sync.Once
	done  chan struct{}
	stats Stats
	err   error
}

// Done is closed when the transfer has finished, well or badly.
func (t *Transfer) Done() <-chan struct{} { return t.done }

// Sent reports the bytes handed to the kernel so far.
func (t *Transfer) Sent() int64 { return t.sent.Load() }

// Result returns the statistics and error of a finished transfer. Call it
// after Done is closed.
func (t *Transfer) Result() (Stats, error) {
	<-t.done
	return t.stats, t.err
}

// Cancel revokes the ticket if it is still unused, or aborts the copy if
// it is running, and waits until the file, mapping and pipe are released.
// It is safe to call at any time, more than once.
func (t *Transfer) Cancel() {
	t.cancel(context.Canceled)
	if t.srv.tickets.revoke(t) {
		t.finish(Stats{Strategy: t.Strategy}, context.Canceled)
	}
	<-t.done
}

// finish records the outcome once, releases the file and wakes waiters.
func (t *Transfer) finish(st Stats, err error) {
	t.once.Do(func() {
		if t.expiry != nil {
			t.expiry.Stop()
		}
		t.file.Close()
		t.cancel(nil)
		t.srv.active.Add(-1)
		st.ChecksumCPU, st.ChecksumCached = t.Checksum.CPU, t.Checksum.Cached
		t.stats, t.err = st, err
		f := Finish{ID: t.ID, Path: t.Path, Peer: t.peer, Started: t.started, Stats: st, Outcome: OutcomeOf(err), Err: err}
		f.log(t.srv.cfg.logger())
		t.srv.cfg.Events.finished(f)
		close(t.done)
	})
}

// aLongTimeAgo is a deadline in the past: setting it wakes any goroutine
// parked on the connection with os.ErrDeadlineExceeded.
var aLongTimeAgo = time.Unix(1, 0)

// serveConn runs one data connection: preamble, verdict, bytes; on a
// keep-alive connection (version 2) the trailer and the next preamble,
// until one fails, the client stops or a version 1 preamble comes.
func (s *Server) serveConn(c net.Conn) {
	defer c.Close()
	t, version := s.handshake(c)
	for t != nil && s.serveTransfer(c, t, version) && version == ProtocolVersionKeepAlive {
		t, version = s.nextHandshake(c)
	}
}

// serveTransfer sends one claimed transfer and ends it as its version
// asks: close or trailer on success, reset on failure. It reports whether
// the connection may carry another transfer.
func (s *Server) serveTransfer(c net.Conn, t *Transfer, version byte) bool {
	stop := context.AfterFunc(t.ctx, func() { c.SetDeadline(aLongTimeAgo) })
	st, err := s.send(t, c)
	stop()
	if t.ctx.Err() != nil {
		err = context.Cause(t.ctx)
	}
	if err == nil && version == ProtocolVersionKeepAlive {
		err = s.writeTrailer(c, TrailerOK)
	}
	if tc, ok := c.(*net.TCPConn); ok {
		if err == nil && version != ProtocolVersionKeepAlive {
			tc.CloseWrite()
		} else if err != nil {
			if version == ProtocolVersionKeepAlive && st.Bytes == t.Length {
				s.writeTrailer(c, TrailerFailed) // a hint; the reset may overtake it
			}
			// Reset rather than end the stream: a receiver must not take a
			// failed send for a whole one even when the byte count came
			// out right (an MMAP window reads a truncated tail as zeros).
			tc.SetLinger(0)
		}
	}
	t.finish(st, err)
	return err == nil
}

// handshake reads the preamble within HandshakeTimeout and claims its
// ticket, then gives back the connection's MaxHandshakes place. It
// answers a bad preamble or ticket itself and returns nil; a silent or
// slow client is dropped without a verdict.
func (s *Server) handshake(c net.Conn) (*Transfer, byte) {
	defer s.handshakes.Add(-1)
	c.SetDeadline(time.Now().Add(s.cfg.handshakeTimeout()))
	return s.claim(c)
}

// claim reads a preamble, within the deadline already set, and claims
// its ticket.
func (s *Server) claim(c net.Conn) (*Transfer, byte) {
	// Close drops a connection still in its handshake at once, rather
	// than wait out HandshakeTimeout.
	stop := context.AfterFunc(s.ctx, func() { c.SetDeadline(aLongTimeAgo) })
	defer stop()
	ticket, version, ok, err := readPreamble(c)
	if err != nil {
		return nil, 0
	}
	if !ok {
		s.cfg.Events.refused(RefusedBadPreamble)
		c.Write([]byte{byte(VerdictBadPreamble)})
		return nil, 0
	}
	t, err := s.tickets.claim(ticket, remoteIP(c))
	if t == nil {
		reason := RefusedUnknownTicket
		if err != nil {
			reason = RefusedWrongClient
			s.cfg.logger().Warn("data connection refused", "err", err)
		}
		s.cfg.Events.refused(reason)
		c.Write([]byte{byte(VerdictRefused)})
		return nil, 0
	}
	t.peer, t.started = c.RemoteAddr().String(), true
	s.cfg.Events.started()
	// Cleared before stop: a Close from here on reaches the connection
	// through the transfer's context, which Close cancels.
	c.SetDeadline(time.Time{})
	return t, version
}

// send writes the verdict and runs the strategy's copy loop, falling back
// to READ_WRITE if the strategy turns out unsupported for this file and
// socket before it has sent anything.
func (s *Server) send(t *Transfer, c net.Conn) (Stats, error) {
	st := Stats{Strategy: t.Strategy}
	if _, err := c.Write([]byte{byte(VerdictOK)}); err != nil {
		return st, err
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return st, errors.New("data connection has no file descriptor")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return st, err
	}
	j := &sendJob{rc: rc, file: t.file, fd: int(t.file.Fd()), off: t.Offset, left: t.Length,
		sent: &t.sent, cfg: &s.cfg, pipes: s.pipes, maps: &s.maps}
	gather := t.Strategy == Sendfile && s.gather.gathers(c.LocalAddr())
	m := startMeter(t.Length >= s.cfg.ThreadMeasureMin)
	j.pace = s.pacerFor(t, m)
	st.RateLimit = t.RateLimit
	_, handled, err := senders[t.Strategy](j)
	if !handled {
		s.cfg.logger().Warn("strategy refused for this transfer; falling back to READ_WRITE",
			"id", t.ID, "strategy", t.Strategy.String(), "err", err)
		st.Strategy = ReadWrite
		_, _, err = sendReadWrite(j)
	}
	st.Bytes = t.sent.Load()
	st.Rounds = j.round
	if st.Strategy == Splice { // not after a fall back to READ_WRITE
		st.PipeSize = j.pipe
	}
	st.Model = SenderModel(st.Strategy, gather && st.Strategy == Sendfile)
	m.stop(&st, &j.n)
	return st, err
}
