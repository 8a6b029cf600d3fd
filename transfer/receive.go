package transfer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Destination is where received bytes land. A file destination is written
// as "<path>.partial" and renamed over path only after every byte arrived
// and was fsynced (Commit); Abort removes the partial file, unless the
// destination resumes an earlier receive (ResumeDestination). "-" is
// standard output and "/dev/null" discards, both for measuring.
//
// A file destination holds an exclusive flock(2) on its partial file until
// Commit or Abort, so two receives into one path cannot interleave: the
// second fails to open.
type Destination struct {
	Path    string
	f       *os.File  // nil when discarding
	partial string    // "" for standard output and discard
	keep    bool      // Abort keeps a non-empty partial file
	resumed int64     // bytes the partial file held when opened
	at      *rootDest // non-nil for RootDestination: names resolve beneath it
	sum     *passSum  // set by ExpectChecksum on a discarding or stdout destination
}

// CreateDestination prepares path to receive a file, emptying a partial
// file an earlier receive left.
func CreateDestination(path string) (*Destination, error) {
	switch path {
	case "-":
		return &Destination{Path: path, f: os.Stdout}, nil
	case os.DevNull:
		return &Destination{Path: path}, nil
	}
	d, err := openPartial(path)
	if err != nil {
		return nil, err
	}
	if err := d.f.Truncate(0); err != nil {
		d.Abort()
		return nil, err
	}
	return d, nil
}

// ResumeDestination prepares path to receive the rest of a file: it opens
// the "<path>.partial" an earlier receive kept (or creates it) and appends
// to it; Resumed says how many bytes it already held. Abort keeps the
// partial file for the next attempt, unless it is empty. Nothing checks
// that those bytes came from the file being received: the caller judges
// that before it asks for the rest.
func ResumeDestination(path string) (*Destination, error) {
	if path == "-" || path == os.DevNull {
		return nil, fmt.Errorf("cannot resume into %s: resuming needs a file", path)
	}
	d, err := openPartial(path)
	if err != nil {
		return nil, err
	}
	fi, err := d.f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%s is not a regular file", d.partial)
	}
	if err == nil {
		_, err = d.f.Seek(fi.Size(), io.SeekStart)
	}
	if err != nil {
		d.Abort()
		return nil, err
	}
	d.keep, d.resumed = true, fi.Size()
	return d, nil
}

// openPartial opens path's partial file for writing (and for reading
// back, to verify a checksum), creating it, and locks it.
func openPartial(path string) (*Destination, error) {
	partial := path + ".partial"
	// Not O_APPEND: splice(2) refuses to write to such a file. Writes go
	// to the file position, which ResumeDestination puts at the end.
	f, err := os.OpenFile(partial, os.O_RDWR|os.O_CREATE|syscall.O_CLOEXEC, 0o644)
	if err != nil {
		return nil, err
	}
	if err := lockPartial(f, unix.AT_FDCWD, partial); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", partial, err)
	}
	return &Destination{Path: path, f: f, partial: partial}, nil
}

// lockPartial takes the exclusive lock on an open partial file and checks
// that the file is still the one at name (in directory dirfd): another
// receive may have renamed or removed the file between our open and our
// lock, releasing its lock on an inode that is no longer the partial file.
func lockPartial(f *os.File, dirfd int, name string) error {
	return lockPartialFd(int(f.Fd()), dirfd, name)
}

// lockPartialFd is lockPartial on a raw descriptor.
func lockPartialFd(fd, dirfd int, name string) error {
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return fmt.Errorf("another receive is writing it (flock: %w)", err)
	}
	var held, now unix.Stat_t
	if unix.Fstat(fd, &held) != nil || unix.Fstatat(dirfd, name, &now, unix.AT_SYMLINK_NOFOLLOW) != nil ||
		held.Dev != now.Dev || held.Ino != now.Ino {
		return errors.New("another receive is writing it (the file was replaced while we opened it)")
	}
	return nil
}

// Discards reports whether bytes are thrown away.
func (d *Destination) Discards() bool { return d.f == nil }

// Resumed reports how many bytes the partial file held when
// ResumeDestination opened it: where this receive continues.
func (d *Destination) Resumed() int64 { return d.resumed }

// Commit makes a received file durable and visible: fsync, rename over
// the final path, fsync the directory. The lock is held until the rename
// is done. On failure the partial file is removed, even when resuming:
// Commit runs only once every byte arrived, so what failed is the file
// system, and its state is not worth resuming from.
func (d *Destination) Commit() error {
	if d.partial == "" {
		return nil
	}
	if d.at != nil {
		return d.commitAt()
	}
	if err := d.f.Sync(); err != nil {
		d.Remove()
		return fmt.Errorf("fsync: %w", err)
	}
	if err := os.Rename(d.partial, d.Path); err != nil {
		d.Remove()
		return err
	}
	d.partial = "" // done: a later Abort does nothing
	if dir, err := os.Open(filepath.Dir(d.Path)); err == nil {
		dir.Sync()
		dir.Close()
	}
	d.f.Close() // fsynced and in place: a close error changes nothing
	return nil
}

// Abort gives up on the receive. It removes the partial file, or, for a
// resumed destination, fsyncs and keeps it if it holds any bytes. It is
// safe after Commit and after Remove (it does nothing).
func (d *Destination) Abort() {
	if d.partial == "" {
		return
	}
	if !d.keep {
		d.Remove()
		return
	}
	if fi, err := d.f.Stat(); err == nil && fi.Size() == 0 {
		d.Remove() // nothing to resume from
		return
	}
	d.f.Sync()
	d.f.Close()
	d.partial = ""
}

// Remove discards the partial file even when resuming: for bytes that
// cannot be trusted, such as those of a source that changed while it was
// sent. It is safe at any time, more than once.
func (d *Destination) Remove() {
	if d.partial == "" {
		return
	}
	if d.at != nil {
		d.removeAt()
		return
	}
	os.Remove(d.partial) // before the lock goes with the descriptor
	d.f.Close()
	d.partial = ""
}

// ReceiveConfig tunes Receive. The zero value is ready to use.
type ReceiveConfig struct {
	// BufferSize is the read buffer, in bytes, and when splicing the most
	// one round moves (the pipe holds at most 1 MiB). 0 means 1 MiB.
	BufferSize int
	// ThreadMeasureMin: as Config.ThreadMeasureMin. 0 means always.
	ThreadMeasureMin int64
	// HandshakeTimeout bounds connecting and the verdict. 0 means 10 s.
	HandshakeTimeout time.Duration
	// ReadWrite makes the receiver read into a buffer and write it out
	// even where it would splice (socket -> pipe -> file or /dev/null).
	// The receiver reads anyway for standard output, for a discarding
	// destination that hashes what passes (ExpectChecksum), and when it
	// cannot get a pipe, open /dev/null, or splice from the socket or
	// into the file; the report's receiver model says which path ran.
	ReadWrite bool
}

// Ticket is what a receiver needs from an offer.
type Ticket struct {
	Address  string // data-channel host:port
	Ticket   []byte
	Length   int64    // exact bytes to expect
	Strategy Strategy // the sender's, for the report
}

// Receive connects to the data channel, presents the ticket and writes
// exactly tk.Length bytes to dst. It does not Commit or Abort dst: the
// caller does, once the control plane confirms the transfer. Cancelling
// ctx aborts the read.
func Receive(ctx context.Context, tk Ticket, dst *Destination, cfg ReceiveConfig) (Stats, error) {
	st := Stats{Strategy: tk.Strategy, Model: ReceiverModel(dst.Discards(), false)}
	if len(tk.Ticket) != TicketSize {
		return st, fmt.Errorf("%w: ticket is %d bytes, want %d", ErrRefused, len(tk.Ticket), TicketSize)
	}
	hs := orDefault(cfg.HandshakeTimeout, 10*time.Second)
	d := net.Dialer{Timeout: hs}
	c, err := d.DialContext(ctx, "tcp", tk.Address)
	if err != nil {
		return st, ctxErr(ctx, err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(aLongTimeAgo) })
	defer stop()
	if err := handshake(c, tk.Ticket, hs); err != nil {
		return st, ctxErr(ctx, err)
	}
	// handshake clears the deadline, which may undo a cancellation that
	// came while it ran; one that comes later sets it again.
	if ctx.Err() != nil {
		return st, context.Cause(ctx)
	}
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		return st, err
	}
	r := newRecvJob(rc, dst, cfg)
	defer r.release()
	m := startMeter(tk.Length >= cfg.ThreadMeasureMin)
	err = r.run(tk.Length)
	r.finish(&st)
	m.stop(&st, &r.n)
	leaveOutHash(&st, r.hashed)
	return st, ctxErr(ctx, err)
}

// handshake sends the preamble and reads the verdict.
func handshake(c net.Conn, ticket []byte, timeout time.Duration) error {
	c.SetDeadline(time.Now().Add(timeout))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write(appendPreamble(make([]byte, 0, preambleSize), ticket)); err != nil {
		return err
	}
	var v [1]byte
	if _, err := io.ReadFull(c, v[:]); err != nil {
		return fmt.Errorf("%w: no verdict: %w", ErrRefused, err)
	}
	if Verdict(v[0]) != VerdictOK {
		return fmt.Errorf("%w: %v", ErrRefused, Verdict(v[0]))
	}
	return nil
}

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
	dst     *Destination
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
func newRecvJob(rc syscall.RawConn, dst *Destination, cfg ReceiveConfig) *recvJob {
	r := &recvJob{rc: rc, dst: dst, wfd: -1, out: -1, bufSize: orDefault(cfg.BufferSize, mib)}
	toFile := dst.f != nil && dst.partial != ""
	if toFile {
		r.wfd = int(dst.f.Fd())
		r.wbase = dst.resumed
	}
	if !cfg.ReadWrite && dst.sum == nil && (toFile || dst.f == nil) {
		out := r.wfd
		if dst.f == nil {
			out = devNullFd()
		}
		if out >= 0 {
			if p, err := recvPipes.get(&r.n); err == nil {
				r.pipe, r.out = p, out
				r.round1 = min(p.size, orDefault(cfg.BufferSize, mib))
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
	st.Model = ReceiverModel(r.dst.Discards(), r.splicing())
	if r.splicing() {
		st.PipeSize = r.pipe.size
	}
}

// recvPipes are the receivers' pipes, shared by every receive in the
// process; 1 MiB is the most fs.pipe-max-size allows by default. A pipe
// the kernel would not enlarge is used as it is, silently: the
// receiver's pipe_size reports it.
var recvPipes = newPipePool(mib, 16, slog.New(slog.DiscardHandler))

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

func (r *recvJob) run(length int64) error {
	if err := r.payload(length); err != nil {
		return err
	}
	// The sender closes right after the last byte: anything more is wrong.
	n, err := r.read(r.buf[:1])
	if err != nil {
		return err
	}
	if n != 0 {
		return fmt.Errorf("%w: more than the %d bytes offered", ErrShortTransfer, length)
	}
	return nil
}

// payload receives exactly length bytes, never more, into the destination.
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
		r.writeback()
	}
	return nil
}

// readRound reads what the socket holds, up to the buffer's size and left
// bytes, and writes it to the destination.
func (r *recvJob) readRound(left int64) error {
	n, err := r.read(r.buf[:min(int64(len(r.buf)), left)])
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%w: got %d of %d bytes", ErrShortTransfer, r.got, r.got+left)
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
	werr := r.rc.Read(r.spliceFn)
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
	for r.sn > 0 {
		n, err := unix.Splice(r.pipe.r, nil, r.out, nil, int(r.sn), unix.SPLICE_F_MOVE)
		r.n[sysSplice]++
		switch {
		case err == unix.EINTR:
			continue
		case err != nil && r.got == 0 && r.dst.f != nil && isUnsupported(err):
			return r.unsplice()
		case err != nil: // worded as the read path's write: ENOSPC reads the same
			return fmt.Errorf("write %s: %w", r.destName(), err)
		case n == 0:
			return fmt.Errorf("write %s: splice made no progress", r.destName())
		}
		r.sn -= n
	}
	return nil
}

// destName names the destination in errors.
func (r *recvJob) destName() string {
	if r.dst.partial != "" {
		return r.dst.partial
	}
	return r.dst.Path
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
	if r.readFn == nil {
		r.readFn = r.readStep
	}
	r.rbuf, r.rn, r.rerr = p, 0, nil
	werr := r.rc.Read(r.readFn)
	n, err := r.rn, r.rerr
	r.rbuf = nil
	if err == nil && werr != nil {
		err = werr
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
	if r.dst.sum != nil {
		r.hashed += r.dst.sum.add(p)
	}
	if r.dst.f == nil {
		return nil
	}
	if r.dst.partial == "" { // standard output: let the os package handle a pipe
		// Counted once per call, though a pipe may take several write(2)s.
		r.n[sysWrite]++
		_, err := r.dst.f.Write(p)
		return err
	}
	fd := int(r.dst.f.Fd())
	for len(p) > 0 {
		n, err := unix.Write(fd, p)
		r.n[sysWrite]++
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("write %s: %w", r.dst.partial, err)
		}
		p = p[n:]
	}
	return nil
}
