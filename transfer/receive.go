package transfer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ferrydev/ferry/fsroot"
)

// ReceiveConfig tunes Receive. The zero value is ready to use.
type ReceiveConfig struct {
	// BufferSize is the read buffer, in bytes, and when splicing the most
	// one round moves (the pipe holds at most 1 MiB). 0 means 1 MiB.
	BufferSize int
	// ThreadMeasureMin: as Config.ThreadMeasureMin. 0 means always.
	ThreadMeasureMin int64
	// HandshakeTimeout bounds connecting and the verdict. 0 means 10 s.
	HandshakeTimeout time.Duration
	// IdleTimeout fails a receive when no byte arrives on its data
	// connection for this long after the verdict, with an error wrapping
	// ErrIdle, so that a sender that offered bytes and went silent cannot
	// hold the receiver (and its destination) forever. 0 means 60 s; -1
	// means no limit. A paced sender (a rate limit) still sends every
	// round, so this bounds silence, not slowness.
	IdleTimeout time.Duration
	// ReadWrite makes the receiver read into a buffer and write it out
	// even where it would splice (socket -> pipe -> file or /dev/null).
	// The receiver reads anyway for standard output, for a discarding
	// destination that hashes what passes (ExpectChecksum), and when it
	// cannot get a pipe, open /dev/null, or splice from the socket or
	// into the file; the report's receiver model says which path ran.
	ReadWrite bool
	// trailerAhead: a trailer byte follows the payload (a session's
	// frame), so a read round that asks for the payload's last bytes asks
	// for it too, sparing the trailer a read(2) of its own.
	trailerAhead bool
}

// Ticket is what a receiver needs from an offer.
type Ticket struct {
	Address  string // data-channel host:port
	Ticket   []byte
	Length   int64    // exact bytes to expect
	Strategy Strategy // the sender's, for the report
	// TLS, when set, is how the data channel is reached: TLS 1.3 with
	// this configuration (ClientDataTLS), the ticket sent only once the
	// server is verified. nil means plaintext.
	TLS *tls.Config
}

// Receive connects to the data channel, presents the ticket and writes
// exactly tk.Length bytes to dst. It does not Commit or Abort dst: the
// caller does, once the control plane confirms the transfer. Cancelling
// ctx aborts the read.
func Receive(ctx context.Context, tk Ticket, dst *fsroot.Destination, cfg ReceiveConfig) (Stats, error) {
	if err := tk.check(); err != nil {
		return tk.stats(dst), err
	}
	c, err := dialTicket(ctx, tk, ProtocolVersion, cfg.handshakeTimeout(), nil)
	if err != nil {
		return tk.stats(dst), ctxErr(ctx, err)
	}
	defer c.Close()
	st, _, err := receiveOn(ctx, c, tk, dst, cfg, (*recvJob).eof)
	return st, err
}

// dialTicket connects to tk's data address and presents the ticket with
// a preamble of version. A server too busy to read it (VerdictUnavailable:
// its handshake places are full, perhaps with someone else's idle
// connections) is asked again after a jittered, doubling pause, for as
// long as busyRetryFor: the ticket waits for its connection meanwhile.
// dialed, if set, is called for each connection made.
func dialTicket(ctx context.Context, tk Ticket, version byte, hs time.Duration, dialed func()) (net.Conn, error) {
	d := net.Dialer{Timeout: hs}
	deadline := time.Now().Add(busyRetryFor)
	for pause := busyFirstPause; ; pause = min(2*pause, busyMaxPause) {
		c, err := d.DialContext(ctx, "tcp", tk.Address)
		if err != nil {
			return nil, err
		}
		if dialed != nil {
			dialed()
		}
		if c, err = tk.secure(ctx, c, hs); err == nil {
			if _, err = presentTicket(ctx, c, version, tk.Ticket, hs); err == nil {
				return c, nil
			}
			c.Close()
		}
		wait := pause/2 + rand.N(pause) // jitter: pause/2 to 3·pause/2
		if !errors.Is(err, errBusy) || time.Now().Add(wait).After(deadline) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		case <-time.After(wait):
		}
	}
}

// How a receiver retries a busy data channel (dialTicket): from 20 ms,
// doubling to at most 1 s between tries, for at most 10 s (a ticket
// lives 30 s by default).
const (
	busyFirstPause = 20 * time.Millisecond
	busyMaxPause   = time.Second
	busyRetryFor   = 10 * time.Second
)

// check refuses a ticket of the wrong size before anything is dialled.
func (tk Ticket) check() error {
	if len(tk.Ticket) != TicketSize {
		return fmt.Errorf("%w: ticket is %d bytes, want %d", ErrRefused, len(tk.Ticket), TicketSize)
	}
	return nil
}

// stats are the receiver's figures before any byte moved.
func (tk Ticket) stats(dst *fsroot.Destination) Stats {
	return Stats{Strategy: tk.Strategy, Model: receiverModel(dst.Discards(), false)}
}

func (c ReceiveConfig) handshakeTimeout() time.Duration {
	return orDefault(c.HandshakeTimeout, defaultHandshakeTimeout)
}

func (c ReceiveConfig) bufferSize() int { return orDefault(c.BufferSize, defaultBufferSize) }

// IdleLimit is IdleTimeout with its default: 0 when there is no limit.
func (c ReceiveConfig) IdleLimit() time.Duration {
	return max(orDefault(c.IdleTimeout, defaultIdleTimeout), 0)
}

// receiveOn is the receiving half both Receive and Pool.Receive run once
// the server has accepted the ticket on c: exactly tk.Length bytes into
// dst, measured, then end checks how the sender finished (the close of a
// one-transfer connection, or a kept one's trailer). reusable reports
// whether all went well and no cancellation touched c, so that a kept
// connection may carry another transfer.
func receiveOn(ctx context.Context, c net.Conn, tk Ticket, dst *fsroot.Destination, cfg ReceiveConfig,
	end func(*recvJob) error) (st Stats, reusable bool, err error) {
	st = tk.stats(dst)
	rc, sec, err := dataSocket(c)
	if err != nil {
		return st, false, err
	}
	if sec != nil {
		cfg.ReadWrite = true // the socket holds ciphertext: nothing to splice
		defer func() { sec.raw.n = nil }()
	}
	r := newRecvJob(rc, dst, cfg)
	r.trailerAhead = cfg.trailerAhead
	defer r.release()
	if sec != nil {
		r.useTLS(sec)
	}
	// Armed before a cancellation may set its deadline, which the idle
	// one must not replace.
	r.armIdle(c, cfg.IdleLimit(), ctx.Err)
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(aLongTimeAgo) })
	m := startMeter(tk.Length >= cfg.ThreadMeasureMin)
	err = r.payload(tk.Length)
	if err == nil {
		err = end(r)
	}
	r.finish(&st)
	m.stop(&st, &r.n)
	leaveOutHash(&st, r.hashed)
	// A cancellation that came while we ran may have set a deadline in
	// the past: such a connection is not given back.
	reusable = stop() && err == nil && ctx.Err() == nil
	if reusable {
		c.SetReadDeadline(time.Time{}) // the idle timeout's
	}
	return st, reusable, ctxErr(ctx, err)
}

// presentTicket sends a preamble of the given version and reads the
// verdict, within timeout, leaving c with no deadline set. It reports
// whether a verdict came, so that a kept connection that failed before
// one can be told from a refused ticket.
func presentTicket(ctx context.Context, c net.Conn, version byte, ticket []byte, timeout time.Duration) (bool, error) {
	c.SetDeadline(time.Now().Add(timeout))
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(aLongTimeAgo) })
	defer stop()
	var b [preambleSize]byte
	if _, err := c.Write(appendPreambleVersion(b[:0], version, ticket)); err != nil {
		return false, ctxErr(ctx, err)
	}
	var v [1]byte
	if _, err := io.ReadFull(c, v[:]); err != nil {
		return false, ctxErr(ctx, fmt.Errorf("%w: no verdict: %w", ErrRefused, err))
	}
	if !stop() {
		return true, context.Cause(ctx)
	}
	c.SetDeadline(time.Time{})
	switch Verdict(v[0]) {
	case VerdictOK:
		return true, nil
	case VerdictBadPreamble:
		return true, errBadPreamble
	case VerdictUnavailable:
		return true, errBusy
	case VerdictTLSRequired:
		return true, fmt.Errorf("%w: the data channel requires TLS, and the ticket went in clear", ErrRefused)
	}
	return true, fmt.Errorf("%w: %v", ErrRefused, Verdict(v[0]))
}

// errBadPreamble and errBusy are the errors of a VerdictBadPreamble and
// a VerdictUnavailable.
var (
	errBadPreamble = fmt.Errorf("%w: %v", ErrRefused, VerdictBadPreamble)
	errBusy        = fmt.Errorf("%w: %v", ErrRefused, VerdictUnavailable)
)

func ctxErr(ctx context.Context, err error) error {
	if err != nil && ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return err
}

// recvJob is the receiving copy loop. It reads from the socket into a
// buffer and writes the buffer to the destination, or, when it has a
// pipe, splices socket -> pipe -> destination so that the payload never
// enters user space.
type recvJob struct {
	rc      syscall.RawConn
	dst     *fsroot.Destination
	buf     []byte
	bp      *[]byte // buf's pool entry, when it came from the pool
	bufSize int     // the read buffer's size, when reading
	got     int64
	round   int64
	n       counts
	// hashed is the thread CPU time the destination's pass-through hash
	// took (leaveOutHash takes it out of the loop's figures).
	hashed time.Duration

	// The read under way, for readStep.
	rbuf   []byte
	rn     int
	rerr   error
	readFn func(uintptr) bool

	// Splicing, when pipe is set: out is the descriptor the pipe drains
	// into.
	pipe     *pipe
	round1   int // the most one splice round moves
	out      int
	swant    int
	sn       int64
	serr     error
	spliceFn func(uintptr) bool

	// Early writeback of a file destination: fd, where this receive
	// started in it, and how much of it was handed to writeback.
	wfd     int
	wbase   int64
	flushed int64

	// A Part of a file (parallel streams) is written at explicit
	// offsets, pwrite(2) or splice(2) with an offset, never at the file
	// position, which the parts share: at is then where the next byte
	// goes.
	positioned bool
	at         int64

	// A trailer read with the payload's last bytes (trailerAhead), for
	// trailer to check.
	trailerAhead bool
	trailerRead  bool
	trailerByte  byte

	// The idle timeout, when armed (armIdle): conn's read deadline is
	// last+idle at most, last being when the latest round ended; ctxErr
	// tells a cancellation's deadline from the idle one's.
	conn   net.Conn
	idle   time.Duration
	last   time.Time
	ctxErr func() error

	sec *secureConn // set when the connection is TLS: reads go through it
}

// writebackChunk is how many received bytes of a file are left dirty
// before the receiver asks the kernel to start writing them back
// (sync_file_range SYNC_FILE_RANGE_WRITE). The disk then works while the
// network does, and the fsync before the rename finds little left to do;
// without it, a 2 GiB file waited about a second for its fsync here.
const writebackChunk = 8 << 20

// newRecvJob prepares the receiving loop into dst: splicing when dst is
// a file or discards without hashing and cfg allows it, reading into a
// buffer of cfg.BufferSize otherwise. release gives back what it took.
func newRecvJob(rc syscall.RawConn, dst *fsroot.Destination, cfg ReceiveConfig) *recvJob {
	r := &recvJob{rc: rc, dst: dst, wfd: -1, out: -1, bufSize: cfg.bufferSize()}
	toFile := dst.KeepsFile()
	if toFile {
		r.wfd = int(dst.File().Fd())
		r.wbase = dst.Resumed()
		if r.inPart() {
			r.wbase = r.at
		}
	}
	if !cfg.ReadWrite && dst.Tee == nil && (toFile || dst.Discards()) {
		out := r.wfd
		if dst.Discards() {
			out = devNullFd()
		}
		if out >= 0 {
			if p, err := recvPipes.get(&r.n); err == nil {
				r.pipe, r.out = p, out
				r.round1 = min(p.size, cfg.bufferSize())
				r.buf = make([]byte, 1) // for the reads after the payload
				return r
			}
		}
	}
	r.readInstead()
	return r
}

// release returns the job's buffer and pipe to their pools; a pipe that
// still holds bytes is closed instead.
func (r *recvJob) release() {
	if r.bp != nil {
		putBuffer(r.bp)
		r.bp = nil
	}
	if r.pipe != nil {
		if r.sn > 0 {
			r.pipe.close()
		} else {
			recvPipes.put(r.pipe)
		}
		r.pipe = nil
	}
}

// splicing reports whether the loop moves bytes through its pipe (and has
// done so for every round so far: a fallback drops the pipe).
func (r *recvJob) splicing() bool { return r.pipe != nil }

// finish records the loop's figures in st: bytes, rounds, the model of
// the path it took and, when it spliced, the pipe's size.
func (r *recvJob) finish(st *Stats) {
	st.Bytes, st.Rounds = r.got, r.round
	st.Model = receiverModel(r.dst.Discards(), r.splicing())
	if r.sec != nil {
		st.Model, st.Encryption = tlsReceiverModel(r.dst.Discards()), r.sec.desc
	}
	if r.splicing() {
		st.PipeSize = r.pipe.size
	}
}

// recvPipes are the receivers' pipes, shared by every receive in the
// process; 1 MiB is the most fs.pipe-max-size allows by default. A pipe
// the kernel would not enlarge is used as it is, silently: the
// receiver's pipe_size reports it.
var recvPipes = newPipePool(defaultPipeSize, defaultIdlePipes, slog.New(slog.DiscardHandler))

// devNull is a descriptor open on /dev/null for spliced discards, opened
// on first use; a failed open (EMFILE, say) is tried again next time.
var devNull struct {
	sync.Mutex
	fd int // 0: not open yet
}

// devNullFd returns devNull's descriptor, or -1 when /dev/null cannot be
// opened.
func devNullFd() int {
	devNull.Lock()
	defer devNull.Unlock()
	if devNull.fd <= 0 {
		fd, err := unix.Open(os.DevNull, unix.O_WRONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return -1
		}
		devNull.fd = fd
	}
	return devNull.fd
}

// run receives length bytes, then checks that the connection ends there.
func (r *recvJob) run(length int64) error {
	if err := r.payload(length); err != nil {
		return err
	}
	return r.eof()
}

// eof checks that the sender closed right after the last byte, as it
// does on a connection that carries one transfer: anything more is wrong.
func (r *recvJob) eof() error {
	n, err := r.read(r.buf[:1])
	if err != nil {
		return err
	}
	if n != 0 {
		return fmt.Errorf("%w: more than the %d bytes offered", ErrShortTransfer, r.got)
	}
	return nil
}

// payload receives exactly length bytes into the destination. With
// trailerAhead its last read may also take the trailer byte that follows
// them (readRound), which no destination sees.
func (r *recvJob) payload(length int64) error {
	for r.got < length {
		var err error
		if r.pipe != nil {
			err = r.spliceRound(length - r.got)
		} else {
			err = r.readRound(length - r.got)
		}
		if err != nil {
			return err
		}
		r.round++
		if r.conn != nil {
			r.last = time.Now()
		}
		r.writeback()
	}
	return nil
}

// armIdle makes the job's waits on c fail with ErrIdle once no byte came
// for idle (0: never). ctxErr reports the receive's cancellation. The
// deadline is set here and moved only when it passes (see wait), not
// each round: a round only notes the time.
func (r *recvJob) armIdle(c net.Conn, idle time.Duration, ctxErr func() error) {
	if idle <= 0 {
		return
	}
	r.conn, r.idle, r.ctxErr = c, idle, ctxErr
	r.last = time.Now()
	c.SetReadDeadline(r.last.Add(idle))
}

// wait runs fn on the socket, as RawConn.Read does, until fn reports
// done. When the read deadline passes while bytes kept coming, it is
// moved to idle after the last round and the wait goes on; when idle
// passed with none, the wait fails with ErrIdle. A cancellation sets a
// deadline in the past, which moving it could undo: ctxErr, checked
// after the move, catches that.
func (r *recvJob) wait(fn func(uintptr) bool) error {
	for {
		err := r.rc.Read(fn)
		if err == nil || r.conn == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
			return err
		}
		if err := r.idleMore(); err != nil {
			return err
		}
	}
}

// idleMore is what a wait does when the read deadline passed: it fails
// with ErrIdle when no byte came for idle, or with the cancellation that
// set the deadline, and otherwise moves the deadline to idle after the
// last round.
func (r *recvJob) idleMore() error {
	if err := r.ctxErr(); err != nil {
		return err
	}
	next := r.last.Add(r.idle)
	if !time.Now().Before(next) {
		return fmt.Errorf("%w: no byte on the data channel for %v, after %d bytes", ErrIdle, r.idle, r.got)
	}
	r.conn.SetReadDeadline(next)
	return r.ctxErr()
}

// readRound reads what the socket holds, up to the buffer's size and left
// bytes, and writes it to the destination. With trailerAhead, when the
// left bytes fit in the buffer it asks for one more: the frame's trailer,
// kept for trailer() and never written.
func (r *recvJob) readRound(left int64) error {
	want := min(int64(len(r.buf)), left)
	if r.trailerAhead && left < int64(len(r.buf)) {
		want = left + 1 // the trailer, if it came with them: still this frame's
	}
	n, err := r.read(r.buf[:want])
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%w: got %d of %d bytes", ErrShortTransfer, r.got, r.got+left)
	}
	if int64(n) > left {
		r.trailerByte, r.trailerRead = r.buf[left], true
		n = int(left)
	}
	if err := r.write(r.buf[:n]); err != nil {
		return err
	}
	r.got += int64(n)
	return nil
}

// spliceRound splices what the socket holds, up to the pipe's size and
// left bytes, into the pipe, then drains the pipe into the destination. A
// socket the kernel will not splice from (EINVAL, ENOSYS, EPERM under a
// seccomp profile...) before the first byte makes the transfer read
// instead.
func (r *recvJob) spliceRound(left int64) error {
	if r.spliceFn == nil {
		r.spliceFn = r.spliceStep
	}
	r.swant, r.serr = int(min(int64(r.round1), left)), nil
	werr := r.wait(r.spliceFn)
	err := r.serr
	if err == nil && werr != nil {
		err = werr
	}
	if err != nil {
		var errno unix.Errno
		if errors.As(err, &errno) {
			if r.got == 0 && r.sn == 0 && (isUnsupported(errno) || errno == unix.EPERM) {
				r.pipe.close()
				r.readInstead()
				return r.readRound(left)
			}
			err = fmt.Errorf("%w: got %d bytes, then %w", ErrShortTransfer, r.got, errno)
		}
		return err
	}
	if r.sn == 0 {
		return fmt.Errorf("%w: got %d of %d bytes", ErrShortTransfer, r.got, r.got+left)
	}
	n := r.sn
	if err := r.drainPipe(); err != nil {
		return err
	}
	r.got += n
	return nil
}

// spliceStep makes one successful splice from the socket into the
// empty pipe, parking on EAGAIN; r.sn is what the pipe then holds.
func (r *recvJob) spliceStep(fd uintptr) bool {
	for {
		n, err := unix.Splice(int(fd), nil, r.pipe.w, nil, r.swant, unix.SPLICE_F_MOVE|unix.SPLICE_F_NONBLOCK)
		r.n[sysSplice]++
		switch err {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		}
		r.sn, r.serr = max(n, 0), err
		return true
	}
}

// drainPipe splices the r.sn bytes in the pipe into the destination. A
// file system that cannot take spliced bytes (EINVAL before the first
// byte) gets them by read and write instead, and so does the rest of the
// transfer.
func (r *recvJob) drainPipe() error {
	var at *int64 // nil: the file position
	if r.positioned {
		at = &r.at // splice(2) moves it on by what it wrote
	}
	for r.sn > 0 {
		n, err := unix.Splice(r.pipe.r, nil, r.out, at, int(r.sn), unix.SPLICE_F_MOVE)
		r.n[sysSplice]++
		switch {
		case err == unix.EINTR:
			continue
		case err != nil && r.got == 0 && !r.dst.Discards() && isUnsupported(err):
			return r.unsplice()
		case err != nil: // worded as the read path's write: ENOSPC reads the same
			return fmt.Errorf("write %s: %w", r.dst.Name(), err)
		case n == 0:
			return fmt.Errorf("write %s: splice made no progress", r.dst.Name())
		}
		r.sn -= n
	}
	return nil
}

// readInstead makes the loop read from now on: it takes a buffer of the
// configured size and forgets the pipe, which the caller has dealt with.
func (r *recvJob) readInstead() {
	r.bp = getBuffer(r.bufSize)
	r.buf = *r.bp
	r.pipe = nil
}

// unsplice gives up splicing: it moves what the pipe holds by read and
// write, and the loop reads from then on.
func (r *recvJob) unsplice() error {
	p := r.pipe
	r.readInstead()
	for r.sn > 0 {
		n, err := unix.Read(p.r, r.buf[:min(int64(len(r.buf)), r.sn)])
		r.n[sysRead]++
		if err == unix.EINTR {
			continue
		}
		if err == nil && n <= 0 {
			err = errors.New("it held less than spliced")
		}
		if err == nil {
			err = r.write(r.buf[:n])
		} else {
			err = fmt.Errorf("read back from the pipe: %w", err)
		}
		if err != nil {
			p.close() // holds bytes that will never be written
			return err
		}
		r.sn -= int64(n)
	}
	recvPipes.put(p)
	return nil
}

// writeback asks the kernel to start writing back each writebackChunk
// of a file destination as it fills. Failures are left to the fsync
// before the rename, which reports them; a file system that refuses the
// call is not asked again.
func (r *recvJob) writeback() {
	if r.wfd < 0 || r.got-r.flushed < writebackChunk {
		return
	}
	err := unix.SyncFileRange(r.wfd, r.wbase+r.flushed, r.got-r.flushed, unix.SYNC_FILE_RANGE_WRITE)
	r.n[sysSyncFileRange]++
	if err != nil && err != unix.EINTR {
		r.wfd = -1
	}
	r.flushed = r.got
}

// read makes one successful read(2) from the socket, parking on EAGAIN.
// The callback is a method value made once per job, its state in fields,
// so the loop does not allocate a closure per read.
func (r *recvJob) read(p []byte) (int, error) {
	if r.sec != nil {
		return r.readTLS(p)
	}
	if r.readFn == nil {
		r.readFn = r.readStep
	}
	r.rbuf, r.rn, r.rerr = p, 0, nil
	werr := r.wait(r.readFn)
	n, err := r.rn, r.rerr
	r.rbuf = nil
	if werr != nil { // the wait ended before a read did: r.rerr is its EAGAIN
		n, err = 0, werr
	}
	if err != nil {
		// Declared here, not for every read: errors.As makes errno
		// escape, and a heap allocation per round with it.
		var errno unix.Errno
		if errors.As(err, &errno) { // reset, keepalive timeout, unreachable...
			err = fmt.Errorf("%w: got %d bytes, then %w", ErrShortTransfer, r.got, errno)
		}
	}
	return max(n, 0), err
}

func (r *recvJob) readStep(fd uintptr) bool {
	for {
		r.rn, r.rerr = unix.Read(int(fd), r.rbuf)
		r.n[sysRead]++
		switch r.rerr {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		}
		return true
	}
}

// write lands p in the destination, counting each write(2).
func (r *recvJob) write(p []byte) error {
	if r.dst.Tee != nil {
		r.hashed += teeHash(r.dst.Tee, p)
	}
	f := r.dst.File()
	if f == nil {
		return nil
	}
	if !r.dst.KeepsFile() { // standard output: let the os package handle a pipe
		// Counted once per call, though a pipe may take several write(2)s.
		r.n[sysWrite]++
		_, err := f.Write(p)
		return err
	}
	fd := int(f.Fd())
	for len(p) > 0 {
		n, err := r.writeOnce(fd, p)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("write %s: %w", r.dst.Name(), err)
		}
		p = p[n:]
	}
	return nil
}

// inPart makes the job write at the offsets of a Part of a file
// (fsroot.Destination.Part), and reports whether dst is one.
func (r *recvJob) inPart() bool {
	off, _, ok := r.dst.PartRange()
	if ok && r.dst.KeepsFile() {
		r.positioned, r.at = true, off
	}
	return r.positioned
}

// writeOnce makes one write(2) to the file, at its position, or for a
// Part one pwrite(2) at r.at, which it moves on; each is counted.
func (r *recvJob) writeOnce(fd int, p []byte) (int, error) {
	if !r.positioned {
		r.n[sysWrite]++
		return unix.Write(fd, p)
	}
	r.n[sysPwrite]++
	n, err := unix.Pwrite(fd, p, r.at)
	r.at += int64(max(n, 0))
	return n, err
}

// trailer reads the byte a keep-alive server writes after the payload,
// unless the payload's last read took it already (trailerAhead).
func (r *recvJob) trailer() error {
	if !r.trailerRead {
		n, err := r.read(r.buf[:1])
		switch {
		case err != nil:
			return err
		case n == 0:
			return fmt.Errorf("%w: the connection closed before the trailer", ErrShortTransfer)
		}
		r.trailerByte = r.buf[0]
	}
	switch r.trailerByte {
	case TrailerOK:
		return nil
	case TrailerFailed:
		return fmt.Errorf("%w: the sender failed after the last byte", ErrShortTransfer)
	}
	return fmt.Errorf("%w: unknown trailer %d", ErrShortTransfer, r.trailerByte)
}
