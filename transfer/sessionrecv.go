package transfer

import (
	"context"
	"crypto/tls"
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
// spliced. After an error the connection carries no more frames.
func ReceiveFrame(ctx context.Context, c net.Conn, h FrameHeader, strategy Strategy, dst *fsroot.Destination, cfg ReceiveConfig) (Stats, error) {
	if h.Length <= smallFrameMax {
		cfg.ReadWrite = true // one read, as the sender wrote it, beats socket -> pipe -> file
	}
	st, _, err := receiveOn(ctx, c, Ticket{Length: h.Length, Strategy: strategy}, dst, cfg, (*recvJob).trailer)
	return st, err
}
