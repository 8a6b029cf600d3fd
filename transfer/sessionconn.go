package transfer

import (
	"context"
	"fmt"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// claimSession binds the connection to the session a version 3
// preamble's ticket names, within Config.SessionConns and MaxBoundConns.
// The verdict is written by serveSession, once the connection is bound.
func (d *dataConn) claimSession(ticket [TicketSize]byte) claimed {
	ss, err := d.session(ticket, remoteIP(d.c))
	if ss == nil {
		reason := RefusedUnknownTicket
		if err != nil {
			reason = RefusedWrongClient
		}
		d.refuse(reason, err)
		return claimed{}
	}
	if d.bound.Add(1) > int64(d.cfg.maxBoundConns()) || !ss.bind(d.cfg.sessionConns()) {
		d.bound.Add(-1)
		d.cfg.Events.refused(RefusedSessionFull)
		d.c.Write([]byte{byte(VerdictUnavailable)})
		return claimed{}
	}
	d.c.SetDeadline(time.Time{})
	return claimed{ss: ss}
}

// serveSession answers the bind with VerdictOK, then sends the
// session's transfers, one frame after another, until the session
// closes, the server has drained it, or a frame fails.
func (d *dataConn) serveSession(ss *Session) {
	defer d.bound.Add(-1)
	defer ss.unbind()
	if _, err := d.c.Write([]byte{byte(VerdictOK)}); err != nil {
		return
	}
	b := &boundConn{d: d, sndBuf: d.sendBuffer()}
	go ss.watch(b) // ends when the connection closes, below
	for t := ss.next(b); t != nil; t = ss.next(b) {
		if !d.serveFrame(t) {
			return
		}
	}
}

// serveFrame sends t as one frame: header, payload by t's strategy,
// trailer. A transfer cancelled before its header is finished without a
// byte sent. A failure after the header, or a cancellation, ends the
// connection with a FIN, not the reset other data connections get: the
// frames before it, which their reports said were sent, must still
// arrive, and the missing trailer already tells the receiver this frame
// is not whole. It reports whether the connection may carry the next
// frame.
func (d *dataConn) serveFrame(t *Transfer) bool {
	if t.ctx.Err() != nil {
		t.finish(Stats{Strategy: t.Strategy}, context.Cause(t.ctx))
		return true
	}
	t.peer, t.started = d.c.RemoteAddr().String(), true
	if !t.probe {
		d.cfg.Events.started()
	}
	if d.cfg.FlowRate > 0 {
		d.pace(d.cfg.FlowRate)
	}
	stop := context.AfterFunc(t.ctx, func() { d.c.SetDeadline(aLongTimeAgo) })
	small := d.smallFrame(t)
	release := func() {}
	if !small {
		release = d.hold(t) // header, payload and trailer as few segments
	}
	var st Stats
	var err error
	if small {
		st, err = d.sendSmallFrame(t)
	} else {
		var hdr [FrameHeaderSize]byte
		st = Stats{Strategy: t.Strategy}
		if _, err = d.c.Write(appendFrameHeader(hdr[:0], t.frameID, t.Length)); err == nil {
			st, err = d.copyOut(t)
		}
	}
	stop()
	if t.ctx.Err() != nil {
		err = context.Cause(t.ctx)
	}
	if err == nil && !small {
		err = d.writeTrailer(TrailerOK)
	}
	release()
	if tc, ok := d.tcp(); ok && err != nil {
		tc.CloseWrite()
	}
	t.finish(st, err)
	return err == nil
}

// roomFor reports whether b's socket has room in its send buffer for n
// more bytes now (the bytes queued, SIOCOUTQ, and n within half of
// SO_SNDBUF), so that a borrower's write of a small frame does not wait
// on a connection whose earlier frames the client is still reading.
// SO_SNDBUF is the value read when b was bound: a frame sent directly
// costs one system call. Autotuning may have grown the buffer since, so
// it is read again, and kept, when the value known says there is no
// room. Only b's borrower calls it.
func (b *boundConn) roomFor(n int) bool {
	rc, _, err := dataSocket(b.d.c)
	if err != nil {
		return false
	}
	ok := false
	rc.Control(func(fd uintptr) {
		queued, err := unix.IoctlGetInt(int(fd), unix.SIOCOUTQ)
		if err != nil {
			return
		}
		if queued+n > b.sndBuf/2 {
			b.sndBuf = sendBufferOf(int(fd))
		}
		ok = queued+n <= b.sndBuf/2
	})
	return ok
}

// sendBuffer is the connection's SO_SNDBUF now, or 0 if it cannot be
// read (then roomFor reads it again, and finds no room if it still
// cannot).
func (d *dataConn) sendBuffer() int {
	rc, _, err := dataSocket(d.c)
	if err != nil {
		return 0
	}
	size := 0
	rc.Control(func(fd uintptr) { size = sendBufferOf(int(fd)) })
	return size
}

// sendBufferOf is socket fd's SO_SNDBUF, or 0 if it cannot be read.
func sendBufferOf(fd int) int {
	size, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF)
	if err != nil {
		return 0
	}
	return size
}

// smallFrameMax is the longest READ_WRITE frame sent with one write(2):
// header, payload and trailer together, so that a small file is one TCP
// segment and one wakeup of the receiver.
const smallFrameMax = 64 << 10

// smallFrame reports whether t goes out as one write (sendSmallFrame):
// READ_WRITE, short, paced by nothing, and not through TLS (which
// writes its own records).
func (d *dataConn) smallFrame(t *Transfer) bool {
	return t.Strategy == ReadWrite && t.Length <= smallFrameMax && t.RateLimit == 0 && d.cfg.FlowRate == 0 && d.sec == nil
}

// sendSmallFrame sends t as one frame built in one buffer: the header,
// the range read with pread(2), the trailer, written with one write(2)
// (more only if the socket takes it in parts). The statistics count the
// range's bytes and both calls, as READ_WRITE's copy loop would.
func (d *dataConn) sendSmallFrame(t *Transfer) (Stats, error) {
	st := Stats{Strategy: ReadWrite, RateLimit: t.RateLimit, Model: senderModel(ReadWrite, false)}
	rc, err := d.c.(syscall.Conn).SyscallConn()
	if err != nil {
		return st, err
	}
	var sent atomic.Int64 // the header and trailer are not the transfer's
	j := &sendJob{rc: rc, fd: int(t.file.Fd()), sent: &sent, cfg: &d.cfg}
	bp := getBuffer(bufferFor(defaultBufferSize, FrameHeaderSize+t.Length+1))
	defer putBuffer(bp)
	buf := appendFrameHeader((*bp)[:0], t.frameID, t.Length)
	m := startMeter(t.Length >= d.cfg.ThreadMeasureMin)
	defer m.stop(&st, &j.n)
	payload := buf[FrameHeaderSize : FrameHeaderSize+int(t.Length)]
	for got := 0; got < len(payload); {
		n, err := unix.Pread(j.fd, payload[got:], t.Offset+int64(got))
		j.n[sysPread]++
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return st, fmt.Errorf("pread: %w", err)
		case n == 0:
			return st, ErrSourceChanged
		}
		got += n
	}
	buf = append(buf[:FrameHeaderSize+len(payload)], TrailerOK)
	if _, err := j.writeSocket(buf); err != nil {
		return st, err
	}
	t.sent.Store(t.Length)
	st.Bytes = t.Length
	if t.Length > 0 {
		st.Rounds = 1
	}
	return st, nil
}
