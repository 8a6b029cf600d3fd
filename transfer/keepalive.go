package transfer

import (
	"net"
	"sync"
	"time"
)

// Keep-alive data connections (preamble version 2). After a transfer
// that went well the server writes TrailerOK and waits for the next
// preamble on the same connection, for at most Config.HandshakeTimeout.
// Waiting connections are capped apart from fresh handshakes
// (Config.MaxIdleConns, not MaxHandshakes), so that clients keeping
// connections for later cannot take the places new connections need:
// when no idle place is free as a transfer ends, the server closes the
// connection instead of waiting (a client that finds its pooled
// connection closed before the verdict dials again), and Shutdown ends
// idle connections at once, without waiting for the timeout.

// writeTrailer writes a trailer byte, within the handshake timeout: the
// receiver has just read the payload, so the socket buffer has room.
func (s *Server) writeTrailer(c net.Conn, b byte) error {
	c.SetWriteDeadline(time.Now().Add(s.cfg.handshakeTimeout()))
	defer c.SetWriteDeadline(time.Time{})
	_, err := c.Write([]byte{b})
	return err
}

// nextHandshake waits on a kept connection for the next preamble, as
// handshake does for the first, holding one of Config.MaxIdleConns'
// places while it waits. It returns nil when the connection is to be
// closed: no idle place free, the server shutting down, or the client
// silent, gone or wrong.
func (s *Server) nextHandshake(c net.Conn) (*Transfer, byte) {
	if max := s.cfg.maxIdleConns(); s.idleConns.Add(1) > int64(max) {
		s.idleConns.Add(-1)
		return nil, 0
	}
	defer s.idleConns.Add(-1)
	// The deadline is set before the connection is registered, so that
	// Shutdown's deadline in the past, set later, is the one that holds.
	c.SetDeadline(time.Now().Add(s.cfg.handshakeTimeout()))
	if !s.idle.add(c) {
		return nil, 0
	}
	defer s.idle.remove(c)
	return s.claim(c)
}

// idleSet holds the keep-alive connections waiting for their next
// preamble, so that Shutdown can end them at once. The zero value is
// ready to use.
type idleSet struct {
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

// add registers c; it reports false once the set has been closed.
func (is *idleSet) add(c net.Conn) bool {
	is.mu.Lock()
	defer is.mu.Unlock()
	if is.closed {
		return false
	}
	if is.conns == nil {
		is.conns = make(map[net.Conn]struct{})
	}
	is.conns[c] = struct{}{}
	return true
}

func (is *idleSet) remove(c net.Conn) {
	is.mu.Lock()
	defer is.mu.Unlock()
	delete(is.conns, c)
}

// closeAll wakes every idle connection's read with a deadline in the
// past, and refuses new ones.
func (is *idleSet) closeAll() {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.closed = true
	for c := range is.conns {
		c.SetDeadline(aLongTimeAgo)
	}
}
