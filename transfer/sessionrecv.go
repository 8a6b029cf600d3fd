package transfer

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"

	"github.com/ferrydev/ferry/fsroot"
)

// BindSession dials addr and binds the connection to the session whose
// ticket it presents (a version 3 preamble), inside TLS 1.3 with sec
// when it is set, retrying a busy verdict as Receive does. The server then sends the session's transfers on it as
// frames: read each with ReadFrameHeader and ReceiveFrame.
func BindSession(ctx context.Context, addr string, ticket []byte, sec *tls.Config, cfg ReceiveConfig) (net.Conn, error) {
	tk := Ticket{Address: addr, Ticket: ticket, TLS: sec}
	if err := tk.check(); err != nil {
		return nil, err
	}
	c, err := dialTicket(ctx, tk, ProtocolVersionSession, cfg.handshakeTimeout(), nil)
	return c, ctxErr(ctx, err)
}

// ReadFrameHeader waits, with no deadline of its own, for the next
// frame's header on a bound connection.
func ReadFrameHeader(c net.Conn) (FrameHeader, error) {
	var b [FrameHeaderSize]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return FrameHeader{}, err
	}
	return ParseFrameHeader(b[:])
}

// ReceiveFrame receives the payload of the frame h heads into dst, then
// its trailer, as Receive receives a transfer: measured, within
// cfg.IdleTimeout, aborted when ctx ends. strategy is the sender's, for
// the statistics. A frame of at most 64 KiB is read into a buffer, not
// spliced. It reports whether the connection can carry the next frame:
// not after an error, nor when a cancellation touched it.
func ReceiveFrame(ctx context.Context, c net.Conn, h FrameHeader, strategy Strategy, dst *fsroot.Destination, cfg ReceiveConfig) (Stats, bool, error) {
	if h.Length <= smallFrameMax {
		cfg.ReadWrite = true // one read, as the sender wrote it, beats socket -> pipe -> file
	}
	cfg.trailerAhead = true
	return receiveOn(ctx, c, Ticket{Length: h.Length, Strategy: strategy}, dst, cfg, (*recvJob).trailer)
}

// SkipFrame reads and drops the payload and trailer of the frame h
// heads, for a request the receiver has given up on, so that the frames
// after it on the connection still arrive. It fails if the sender cut
// the frame short (it does, for a cancelled request).
func SkipFrame(c net.Conn, h FrameHeader) error {
	n, err := io.CopyN(io.Discard, c, h.Length+1)
	if err != nil {
		return fmt.Errorf("%w: skipping frame %d: %d of %d bytes: %w", ErrShortTransfer, h.ID, n, h.Length+1, err)
	}
	return nil
}
