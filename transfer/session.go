package transfer

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"
)

// Sessions: many transfers on data connections bound once. A control
// plane stream opens a Session (Server.OpenSession) and hands its ticket
// to the client, which binds up to Config.SessionConns data connections
// to it with a version 3 preamble. Each transfer offered on the session
// (Session.Offer) then joins the session's queue, and the first bound
// connection free takes it and sends it as a frame:
//
//	kind   uint8    FrameData (1)
//	id     uint64   the id the offer was given (big-endian)
//	length uint64   exactly the bytes that follow (big-endian)
//	payload         length bytes, by the transfer's strategy
//	trailer uint8   TrailerOK
//
// No verdict and no ticket per transfer: the bytes leave as soon as the
// offer is made. A send that fails after its header resets the
// connection, as on any data connection, so that a receiver never takes a
// failed frame for a whole one; the session's other connections, and the
// transfers still queued, go on.

// ProtocolVersionSession is the preamble version that binds a data
// connection to a session; its ticket is the session's.
const ProtocolVersionSession = 3

// FrameData is the kind byte of a data frame.
const FrameData byte = 1

// FrameHeaderSize is the size of a frame's header.
const FrameHeaderSize = 1 + 8 + 8

// ErrSessionClosed: the session ended (its stream ended) before the
// transfer was sent.
var ErrSessionClosed = errors.New("session closed")

// SessionConfig sets up a session.
type SessionConfig struct {
	// ClientIP is the address the session's stream came from. With
	// Config.BindDataToClient only it may bind connections.
	ClientIP netip.Addr
}

// Session is a set of data connections bound to one control-plane
// stream, and the queue of transfers waiting for one of them. Its
// methods are safe for concurrent use.
type Session struct {
	srv    *Server
	ticket [TicketSize]byte
	client netip.Addr // with BindDataToClient, the only address that may bind

	mu       sync.Mutex
	wake     *sync.Cond // queue, closed, draining or a connection changed
	queue    []*Transfer
	free     []*boundConn // bound connections waiting in next, none of them lent
	conns    int          // bound connections now
	closed   bool         // Close: no more transfers, bound connections end
	draining bool         // the server shuts down: connections end once the queue is empty
}

// OpenSession registers a new session. Once Shutdown has begun it is
// ErrClosed.
func (s *Server) OpenSession(cfg SessionConfig) (*Session, error) {
	ss := &Session{srv: s}
	ss.wake = sync.NewCond(&ss.mu)
	if s.cfg.BindDataToClient {
		if !cfg.ClientIP.IsValid() {
			return nil, errors.New("BindDataToClient is set but the session names no client address")
		}
		ss.client = cfg.ClientIP.Unmap()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return nil, ErrClosed
	}
	if s.sessions == nil {
		s.sessions = make(map[uint64]*Session)
	}
	for {
		rand.Read(ss.ticket[:])
		k := binary.LittleEndian.Uint64(ss.ticket[:8])
		if _, taken := s.sessions[k]; !taken {
			s.sessions[k] = ss
			return ss, nil
		}
	}
}

// Ticket is the session's ticket, for the client's version 3 preambles.
func (ss *Session) Ticket() []byte { return ss.ticket[:] }

// MaxConns is the most data connections the session may bind at once.
func (ss *Session) MaxConns() int { return ss.srv.cfg.sessionConns() }

// Bound reports how many data connections are bound to the session now.
func (ss *Session) Bound() int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.conns
}

// Offer is Server.Offer for a transfer sent on one of the session's bound
// connections in a frame carrying id, instead of behind a ticket: a
// small READ_WRITE frame goes out at once on a connection that is
// waiting, any other joins the session's queue (Transfer.Framed is set).
// An Auto transfer of at most 64 KiB that nothing paces, on a plaintext
// data channel, is such a frame whatever the server's choice would be
// (Auto.Class says OneWriteClass).
// An inline offer is made as Server.Offer makes it, and so is one made
// while no connection is bound (it gets a ticket). A queued transfer no
// bound connection takes within src.TicketTTL (or Config.TicketTTL) ends
// with ErrTicketExpired.
func (ss *Session) Offer(src Source, id uint64) (*Transfer, error) {
	return ss.srv.offerOn(src, ss, id)
}

// boundConn is a data connection bound to a session. Its goroutine
// sends what next hands it; while it waits there, an offer of a small
// frame may borrow it (lent) and send on it directly, sparing a wakeup.
type boundConn struct {
	d      *dataConn
	sndBuf int  // SO_SNDBUF, read when bound and again when it seemed short (roomFor); only a borrower uses it
	lent   bool // an offer is sending on it
	dead   bool // a frame sent by a borrower failed: the connection ends
}

// dispatch sends t now on a free bound connection when it is a small
// frame (sendSmallFrame: one write, which the socket buffer takes
// without waiting), else queues it (enqueue).
func (ss *Session) dispatch(t *Transfer, ttl time.Duration) error {
	ss.mu.Lock()
	if ss.closed {
		ss.mu.Unlock()
		return ErrSessionClosed
	}
	var b *boundConn
	if n := len(ss.free); n > 0 && ss.free[n-1].d.smallFrame(t) {
		b, ss.free = ss.free[n-1], ss.free[:n-1]
		b.lent = true
	}
	ss.mu.Unlock()
	if b != nil && !b.roomFor(FrameHeaderSize+int(t.Length)+1) {
		ss.giveBack(b, true)
		b = nil
	}
	if b == nil {
		return ss.enqueue(t, ttl)
	}
	ss.giveBack(b, b.d.serveFrame(t))
	return nil
}

// giveBack ends a loan of b: free again if its frame went out, dead
// otherwise; its goroutine, waiting in next, goes on waiting or ends.
func (ss *Session) giveBack(b *boundConn, ok bool) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	b.lent = false
	if !ok {
		b.dead = true
	} else if !b.dead {
		ss.free = append(ss.free, b)
	}
	ss.wake.Broadcast()
}

// watch marks b dead once its connection's client closes it or sends
// anything (a bound connection carries nothing from the client after
// the preamble; under TLS, a close_notify), so that no frame is sent
// into a connection nobody reads and the place it holds is given back.
// It reads the TCP socket itself, beneath any TLS, so that the read is
// neither decrypted nor counted in a transfer's figures. It returns when
// the connection closes.
func (ss *Session) watch(b *boundConn) {
	if tc, ok := b.d.tcp(); ok {
		var one [1]byte
		tc.Read(one[:]) // any outcome: data, EOF, reset or our own close
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	b.dead = true
	ss.wake.Broadcast()
}

// enqueue puts t on the queue, to expire after ttl unless a connection
// takes it first. With no connection bound (the last one gone since the
// caller looked) it is errNotBound: the caller offers a ticket instead.
func (ss *Session) enqueue(t *Transfer, ttl time.Duration) error {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	switch {
	case ss.closed:
		return ErrSessionClosed
	case ss.conns == 0 || ss.draining:
		return errNotBound
	}
	t.expiry = time.AfterFunc(ttl, func() {
		if ss.remove(t) {
			t.finish(Stats{Strategy: t.Strategy}, ErrTicketExpired)
		}
	})
	ss.queue = append(ss.queue, t)
	ss.wake.Broadcast() // a lent connection waits on wake too: Signal could pick it
	return nil
}

// errNotBound is enqueue's answer when no connection is bound.
var errNotBound = errors.New("no data connection is bound to the session")

// remove takes t off the queue; it reports whether t was still queued
// (no connection took it): whoever removes it finishes it.
func (ss *Session) remove(t *Transfer) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for i, q := range ss.queue {
		if q == t {
			ss.queue = append(ss.queue[:i], ss.queue[i+1:]...)
			return true
		}
	}
	return false
}

// next waits for the next transfer for bound connection b to send. It
// returns nil when the connection is to end: the session closed, the
// server draining with nothing left queued, or a borrower's frame
// failed on it. While it waits, b is free to lend (dispatch).
func (ss *Session) next(b *boundConn) *Transfer {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.free = append(ss.free, b)
	for b.lent || !b.dead && len(ss.queue) == 0 && !ss.closed && !ss.draining {
		ss.wake.Wait()
	}
	ss.unfree(b)
	if b.dead || ss.closed || len(ss.queue) == 0 {
		return nil
	}
	t := ss.queue[0]
	ss.queue = ss.queue[1:]
	return t
}

// unfree takes b off the free list, if it is there.
func (ss *Session) unfree(b *boundConn) {
	for i, f := range ss.free {
		if f == b {
			ss.free = append(ss.free[:i], ss.free[i+1:]...)
			return
		}
	}
}

// bind counts a new connection in, up to max; it reports false when the
// session is closed or full.
func (ss *Session) bind(max int) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.closed || ss.draining || ss.conns >= max {
		return false
	}
	ss.conns++
	return true
}

func (ss *Session) unbind() {
	ss.mu.Lock()
	ss.conns--
	stranded := ss.strandedLocked()
	ss.mu.Unlock()
	finishAll(stranded, ErrClosed)
}

// drain lets the bound connections end once the queue is empty (the
// server shuts down). Transfers queued with no connection left to send
// them end with ErrClosed.
func (ss *Session) drain() {
	ss.mu.Lock()
	ss.draining = true
	ss.wake.Broadcast()
	stranded := ss.strandedLocked()
	ss.mu.Unlock()
	finishAll(stranded, ErrClosed)
}

// strandedLocked takes off the queue, and returns, what no bound
// connection is left to send: all of it once the last connection of a
// draining session is gone. Called with mu held.
func (ss *Session) strandedLocked() []*Transfer {
	if !ss.draining || ss.conns > 0 {
		return nil
	}
	q := ss.queue
	ss.queue = nil
	return q
}

// finishAll ends transfers that never started with err.
func finishAll(ts []*Transfer, err error) {
	for _, t := range ts {
		t.finish(Stats{Strategy: t.Strategy}, err)
	}
}

// Close ends the session: its ticket binds no more connections, the
// transfers still queued end with ErrSessionClosed, and each bound
// connection is closed once the transfer it is sending, if any, has
// ended (cancel running ones to end them at once). It is safe to call
// more than once.
func (ss *Session) Close() {
	ss.srv.mu.Lock()
	k := binary.LittleEndian.Uint64(ss.ticket[:8])
	if ss.srv.sessions[k] == ss {
		delete(ss.srv.sessions, k)
	}
	ss.srv.mu.Unlock()
	ss.mu.Lock()
	ss.closed = true
	queued := ss.queue
	ss.queue = nil
	ss.wake.Broadcast()
	ss.mu.Unlock()
	finishAll(queued, ErrSessionClosed)
}

// session finds the session a version 3 preamble's ticket names, or nil;
// one bound to another client address is an error.
func (s *Server) session(ticket [TicketSize]byte, from netip.Addr) (*Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.sessions[binary.LittleEndian.Uint64(ticket[:8])]
	if ss == nil || subtle.ConstantTimeCompare(ss.ticket[:], ticket[:]) != 1 {
		return nil, nil
	}
	if ss.client.IsValid() && ss.client != from.Unmap() {
		return nil, fmt.Errorf("a session bound to client %v was presented from %v", ss.client, from)
	}
	return ss, nil
}

// drainSessions tells every session the server is shutting down.
func (s *Server) drainSessions() {
	s.mu.Lock()
	all := make([]*Session, 0, len(s.sessions))
	for _, ss := range s.sessions {
		all = append(all, ss)
	}
	s.mu.Unlock()
	for _, ss := range all {
		ss.drain()
	}
}

// appendFrameHeader appends a data frame's header to b.
func appendFrameHeader(b []byte, id uint64, length int64) []byte {
	b = append(b, FrameData)
	b = binary.BigEndian.AppendUint64(b, id)
	return binary.BigEndian.AppendUint64(b, uint64(length))
}

// FrameHeader is a parsed frame header.
type FrameHeader struct {
	ID     uint64
	Length int64
}

// ParseFrameHeader checks a frame header: its kind, and a length that
// fits in an int64.
func ParseFrameHeader(b []byte) (FrameHeader, error) {
	if len(b) != FrameHeaderSize {
		return FrameHeader{}, fmt.Errorf("%w: a frame header is %d bytes, got %d", ErrBadFrame, FrameHeaderSize, len(b))
	}
	if b[0] != FrameData {
		return FrameHeader{}, fmt.Errorf("%w: unknown frame kind %d", ErrBadFrame, b[0])
	}
	h := FrameHeader{ID: binary.BigEndian.Uint64(b[1:9])}
	n := binary.BigEndian.Uint64(b[9:])
	if n > 1<<63-1 {
		return FrameHeader{}, fmt.Errorf("%w: length %d does not fit in 63 bits", ErrBadFrame, n)
	}
	h.Length = int64(n)
	return h, nil
}

// ErrBadFrame: a bound data connection carried something that is not a
// well-formed frame.
var ErrBadFrame = errors.New("malformed frame on a session's data connection")
