package transfer

import (
	"context"
	"net"
	"time"
)

// claimSession binds the connection to the session a version 3
// preamble's ticket names, within Config.SessionConns and MaxBoundConns.
// The verdict is written by serveSession, once the connection is bound.
func (d dataConn) claimSession(ticket [TicketSize]byte) claimed {
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
func (d dataConn) serveSession(ss *Session) {
	defer d.bound.Add(-1)
	defer ss.unbind()
	if _, err := d.c.Write([]byte{byte(VerdictOK)}); err != nil {
		return
	}
	for t := ss.next(); t != nil; t = ss.next() {
		if !d.serveFrame(t) {
			return
		}
	}
}

// serveFrame sends t as one frame: header, payload by t's strategy,
// trailer. A failure, or t's cancellation, resets the connection, as a
// failed transfer does on any data connection. It reports whether the
// connection may carry the next frame.
func (d dataConn) serveFrame(t *Transfer) bool {
	t.peer, t.started = d.c.RemoteAddr().String(), true
	if !t.probe {
		d.cfg.Events.started()
	}
	if d.cfg.FlowRate > 0 {
		d.pace(d.cfg.FlowRate)
	}
	stop := context.AfterFunc(t.ctx, func() { d.c.SetDeadline(aLongTimeAgo) })
	st := Stats{Strategy: t.Strategy}
	var hdr [FrameHeaderSize]byte
	_, err := d.c.Write(appendFrameHeader(hdr[:0], t.frameID, t.Length))
	if err == nil {
		st, err = d.copyOut(t)
	}
	stop()
	if t.ctx.Err() != nil {
		err = context.Cause(t.ctx)
	}
	if err == nil {
		err = d.writeTrailer(TrailerOK)
	}
	if tc, ok := d.c.(*net.TCPConn); ok && err != nil {
		tc.SetLinger(0) // reset: see serveTransfer
	}
	t.finish(st, err)
	return err == nil
}
