package transfer

import (
	"context"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
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
	// Auto says how the strategy was chosen.
	Auto AutoChoice
	// Framed is true for a session's transfer (Session.Offer): its bytes
	// go on a connection bound to the session, in a frame with frameID,
	// and it has no ticket.
	Framed  bool
	frameID uint64
	sess    *Session

	probe bool    // a start-up probe's transfer: not logged, counted or measured
	net   Network // where the client is, for Auto's figures
	sink  Sink    // what the client does with the bytes, likewise
	// alone is true when no other transfer was running when this one was
	// admitted, and admission is the server's admitted count then: if it
	// is still that at the end, nothing overlapped this transfer.
	alone     bool
	admission uint64
	// steal is the machine's steal when the transfer was admitted, read
	// for the transfers the measuring Auto may keep a figure of.
	steal stealMark

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
	if t.unclaimed() {
		t.finish(Stats{Strategy: t.Strategy}, context.Canceled)
	}
	<-t.done
}

// unclaimed revokes t's ticket, or takes it off its session's queue; it
// reports whether no data connection had taken it yet.
func (t *Transfer) unclaimed() bool {
	if t.sess != nil {
		return t.sess.remove(t)
	}
	return t.srv.tickets.revoke(t)
}

// hadServerAlone reports whether no other transfer ran at any time while
// t did: none was running when it was admitted, and none was admitted
// since. Parallel streams of one file, a tree's files, or many clients
// at once each move at a share of the host, which says little of the
// strategy, so the measuring Auto keeps only figures of transfers alone.
func (t *Transfer) hadServerAlone() bool {
	return t.alone && t.srv.admitted.Load() == t.admission
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
		// Kernel-paced connections (FlowRate) run at the pace, whatever
		// the strategy: no figure of it. Nor is a transfer that shared
		// the server with another: its rate is its share of the host.
		if auto := t.srv.auto; auto != nil && err == nil && !t.Inline && !t.probe && t.srv.cfg.FlowRate == 0 && t.hadServerAlone() {
			auto.observe(t.Length, t.net, t.sink, st, time.Now(), t.steal.stolen())
		}
		if !t.probe {
			f := Finish{ID: t.ID, Path: t.Path, Peer: t.peer, Started: t.started, Stats: st, Outcome: outcomeOf(err), Err: err}
			f.log(t.srv.cfg.logger())
			t.srv.cfg.Events.finished(f)
		}
		close(t.done)
	})
}
