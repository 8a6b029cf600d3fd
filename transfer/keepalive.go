package transfer

import (
	"net"
	"sync"
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
