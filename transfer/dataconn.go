package transfer

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// dataConn is one accepted data connection and the Server it belongs to:
// the preamble, the verdict and the bytes of each transfer it carries.
type dataConn struct {
	*Server
	c      net.Conn    // the TLS connection once TLS is up (see datatls.go)
	tlsCfg *tls.Config // nil: plaintext only
	sec    *secureConn // nil: plaintext
}

// aLongTimeAgo is a deadline in the past: setting it wakes any goroutine
// parked on the connection with os.ErrDeadlineExceeded.
var aLongTimeAgo = time.Unix(1, 0)

// serveConn runs one data connection: preamble, verdict, bytes; on a
// keep-alive connection (version 2) the trailer and the next preamble,
// until one fails, the client stops or a version 1 preamble comes.
func (d *dataConn) serve() {
	defer d.c.Close()
	cl := d.handshake()
	for cl.t != nil && d.serveTransfer(cl.t, cl.version) && cl.version == ProtocolVersionKeepAlive {
		cl = d.nextHandshake()
	}
	if cl.ss != nil {
		d.serveSession(cl.ss)
	}
}

// claimed is what a preamble claimed: a ticket's transfer and the
// preamble's version, or a session to bind the connection to; neither
// when it was refused.
type claimed struct {
	t       *Transfer
	version byte
	ss      *Session
}

// serveTransfer sends one claimed transfer and ends it as its version
// asks: close or trailer on success, reset on failure. It reports whether
// the connection may carry another transfer.
func (d *dataConn) serveTransfer(t *Transfer, version byte) bool {
	if d.cfg.FlowRate > 0 && !t.probe { // again for each transfer: cheap, and the probe's go unpaced
		d.pace(d.cfg.FlowRate)
	}
	stop := context.AfterFunc(t.ctx, func() { d.c.SetDeadline(aLongTimeAgo) })
	release := d.hold(t)
	st, err := d.send(t)
	stop()
	if t.ctx.Err() != nil {
		err = context.Cause(t.ctx)
	}
	if err == nil && version == ProtocolVersionKeepAlive {
		err = d.writeTrailer(TrailerOK)
	}
	release()
	if tc, ok := d.tcp(); ok {
		if err == nil && version != ProtocolVersionKeepAlive {
			tc.CloseWrite()
		} else if err != nil {
			if version == ProtocolVersionKeepAlive && st.Bytes == t.Length {
				d.writeTrailer(TrailerFailed) // a hint; the reset may overtake it
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
func (d *dataConn) handshake() claimed {
	defer d.handshakeDone(d.c)
	// The first byte within FirstByteTimeout of now (this goroutine is
	// running: a server short of CPU has not eaten the client's time),
	// the whole preamble within HandshakeTimeout.
	start := time.Now()
	d.c.SetDeadline(start.Add(min(d.cfg.firstByteTimeout(), d.cfg.handshakeTimeout())))
	stop := context.AfterFunc(d.ctx, func() { d.c.SetDeadline(aLongTimeAgo) }) // Close drops it at once
	var first [1]byte
	_, err := io.ReadFull(d.c, first[:])
	if !stop() || err != nil {
		return claimed{}
	}
	d.c.SetDeadline(start.Add(d.cfg.handshakeTimeout()))
	if d.tlsCfg != nil || first[0] == tlsRecordHandshake {
		return d.handshakeTLS(first[0])
	}
	return d.claimFrom(io.MultiReader(bytes.NewReader(first[:]), d.c))
}

// claim reads a preamble, within the deadline already set, and claims
// its ticket.
func (d *dataConn) claim() claimed { return d.claimFrom(d.c) }

// claimFrom is claim reading the preamble from r (the connection, or a
// byte already read from it followed by the connection).
func (d *dataConn) claimFrom(r io.Reader) claimed {
	// Close drops a connection still in its handshake at once, rather
	// than wait out HandshakeTimeout.
	stop := context.AfterFunc(d.ctx, func() { d.c.SetDeadline(aLongTimeAgo) })
	defer stop()
	ticket, version, ok, err := readPreamble(r)
	if err != nil {
		return claimed{}
	}
	if !ok {
		d.cfg.Events.refused(RefusedBadPreamble)
		d.c.Write([]byte{byte(VerdictBadPreamble)})
		return claimed{}
	}
	if version == ProtocolVersionSession {
		return d.claimSession(ticket)
	}
	t, err := d.tickets.claim(ticket, remoteIP(d.c))
	if t == nil {
		reason := RefusedUnknownTicket
		if err != nil {
			reason = RefusedWrongClient
		}
		d.refuse(reason, err)
		return claimed{}
	}
	t.peer, t.started = d.c.RemoteAddr().String(), true
	if !t.probe {
		d.cfg.Events.started()
	}
	// Cleared before stop: a Close from here on reaches the connection
	// through the transfer's context, which Close cancels.
	d.c.SetDeadline(time.Time{})
	return claimed{t: t, version: version}
}

// refuse answers a preamble whose ticket claims nothing (reason says
// why) with VerdictRefused, logging err if there is one.
func (d *dataConn) refuse(reason Refusal, err error) {
	if err != nil {
		d.cfg.logger().Warn("data connection refused", "err", err)
	}
	d.cfg.Events.refused(reason)
	d.c.Write([]byte{byte(VerdictRefused)})
}

// send writes the verdict and runs the strategy's copy loop, falling back
// to READ_WRITE if the strategy turns out unsupported for this file and
// socket before it has sent anything.
func (d *dataConn) send(t *Transfer) (Stats, error) {
	if _, err := d.c.Write([]byte{byte(VerdictOK)}); err != nil {
		return Stats{Strategy: t.Strategy}, err
	}
	return d.copyOut(t)
}

// copyOut runs the strategy's copy loop for t's range, measured, falling
// back to READ_WRITE as send says.
func (d *dataConn) copyOut(t *Transfer) (Stats, error) {
	st := Stats{Strategy: t.Strategy}
	rc, _, err := dataSocket(d.c)
	if err != nil {
		return st, err
	}
	j := &sendJob{rc: rc, file: t.file, fd: int(t.file.Fd()), off: t.Offset, left: t.Length,
		sent: &t.sent, cfg: &d.cfg, pipes: d.pipes, maps: &d.maps}
	defer d.secureJob(j)()
	gather := t.Strategy == Sendfile && d.gather.gathers(d.c.LocalAddr())
	m := startMeter(t.Length >= d.cfg.ThreadMeasureMin)
	j.pace = d.pacerFor(t, m)
	st.RateLimit = t.RateLimit
	_, handled, err := senders[t.Strategy](j)
	if !handled {
		d.cfg.logger().Warn("strategy refused for this transfer; falling back to READ_WRITE",
			"id", t.ID, "strategy", t.Strategy.String(), "err", err)
		if d.auto != nil {
			d.auto.fail(t.Strategy)
		}
		st.Strategy = ReadWrite
		_, _, err = sendReadWrite(j)
	}
	st.Bytes = t.sent.Load()
	st.Rounds = j.round
	if st.Strategy == Splice { // not after a fall back to READ_WRITE
		st.PipeSize = j.pipe
	}
	st.Model = senderModel(st.Strategy, gather && st.Strategy == Sendfile)
	if d.sec != nil {
		st.Model, st.Encryption = tlsSenderModel(st.Strategy), d.sec.desc
	}
	m.stop(&st, &j.n)
	return st, err
}

// hold keeps the socket's partial segments back (TCP_CORK) while t's
// pieces are written: the verdict or frame header, the payload by t's
// strategy, the trailer. Written apart on a socket with TCP_NODELAY (Go
// sets it on every TCP connection), each piece would leave as a segment
// of its own and wake the receiver once more; a small file then cost
// three segments under SENDFILE, SPLICE or MMAP, where READ_WRITE's small
// frame costs one. Full segments leave as they fill; the release, once
// the trailer is written, sends what was held. A paced transfer is not
// held: its rounds must leave when the pacer lets them. The two
// setsockopt calls are the connection's framing, as the verdict, header
// and trailer writes are, and not counted in t's system calls.
func (d *dataConn) hold(t *Transfer) (release func()) {
	none := func() {}
	if t.RateLimit > 0 || d.cfg.FlowRate > 0 {
		return none
	}
	tc, ok := d.tcp()
	if !ok {
		return none
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return none
	}
	cork := func(on int) (err error) {
		if cerr := rc.Control(func(fd uintptr) {
			err = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_CORK, on)
		}); cerr != nil {
			return cerr
		}
		return err
	}
	if cork(1) != nil {
		return none
	}
	return func() { cork(0) }
}

// writeTrailer writes a trailer byte, within the handshake timeout: the
// receiver has just read the payload, so the socket buffer has room.
func (d *dataConn) writeTrailer(b byte) error {
	d.c.SetWriteDeadline(time.Now().Add(d.cfg.handshakeTimeout()))
	defer d.c.SetWriteDeadline(time.Time{})
	_, err := d.c.Write([]byte{b})
	return err
}

// nextHandshake waits on a kept connection for the next preamble, as
// handshake does for the first, holding one of Config.MaxIdleConns'
// places while it waits. It returns nil when the connection is to be
// closed: no idle place free, the server shutting down, or the client
// silent, gone or wrong.
func (d *dataConn) nextHandshake() claimed {
	if max := d.cfg.maxIdleConns(); d.idleConns.Add(1) > int64(max) {
		d.idleConns.Add(-1)
		return claimed{}
	}
	defer d.idleConns.Add(-1)
	// The deadline is set before the connection is registered, so that
	// Shutdown's deadline in the past, set later, is the one that holds.
	d.c.SetDeadline(time.Now().Add(d.cfg.handshakeTimeout()))
	if !d.idle.add(d.c) {
		return claimed{}
	}
	defer d.idle.remove(d.c)
	return d.claim()
}

// pace caps the connection's sending rate with SO_MAX_PACING_RATE
// (Config.FlowRate). The option takes a 32-bit rate on older kernels and
// a 64-bit one since Linux 4.20; a failure is logged once per connection
// and the connection runs unpaced.
func (d *dataConn) pace(rate int64) {
	tc, ok := d.tcp()
	if !ok {
		return
	}
	rc, err := tc.SyscallConn()
	if err == nil {
		rc.Control(func(fd uintptr) {
			err = unix.SetsockoptUint64(int(fd), unix.SOL_SOCKET, unix.SO_MAX_PACING_RATE, uint64(rate))
		})
	}
	if err != nil {
		d.cfg.logger().Warn("SO_MAX_PACING_RATE refused; the data connection runs unpaced", "err", err)
	}
}
