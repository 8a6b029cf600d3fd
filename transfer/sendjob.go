package transfer

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// sendJob is one copy loop: a file range to a socket. A strategy advances
// off and left as the kernel accepts bytes; sent is read concurrently for
// progress.
type sendJob struct {
	rc    syscall.RawConn // the data socket
	file  *os.File
	fd    int   // file's descriptor, valid while file is open
	off   int64 // next file offset to send
	left  int64 // bytes still to send
	sent  *atomic.Int64
	n     counts
	round int64
	cfg   *Config
	pipes *pipePool
	pipe  int        // SPLICE: pipe capacity in effect
	maps  *mapBudget // the server's MMAP mapping budget
	pace  *pacer     // nil when the transfer is not rate-limited
	tls   *tls.Conn  // set when the connection is TLS: writeSocket goes through it

	// The socket operation under way. Its state lives here, and the
	// callbacks handed to RawConn.Write are method values made once per
	// job (on first use), so the copy loops do not allocate a closure per
	// call: evaluating j.writeStep makes a new one each time.
	wbuf       []byte // writeStep: the bytes to write
	wdone      int64  // bytes of wbuf written, or moved by sendfileStep
	pipeR      int    // drainStep: the pipe's read end
	inPipe     int64  // drainStep: bytes still in the pipe
	opErr      error
	writeFn    func(uintptr) bool
	sendfileFn func(uintptr) bool
	drainFn    func(uintptr) bool
}

// onSocket runs the current operation, fn, through RawConn.Write,
// parking in the netpoller whenever the step says EAGAIN, and returns the
// step's error, or the wait's (a deadline set to cancel the transfer,
// say). fn is one of the job's bound callbacks, never a method value made
// for the call.
func (j *sendJob) onSocket(fn func(uintptr) bool) error {
	j.opErr = nil
	werr := j.rc.Write(fn)
	if j.opErr != nil {
		return j.opErr
	}
	return werr
}

func (j *sendJob) advance(n int64) {
	j.off += n
	j.left -= n
	j.sent.Add(n)
}

// sendFunc is the contract every strategy honours: written is what reached
// the socket; handled == false means nothing was touched and the caller
// may fall back to another strategy.
type sendFunc func(j *sendJob) (written int64, handled bool, err error)

var senders = map[Strategy]sendFunc{
	ReadWrite: sendReadWrite,
	Mmap:      sendMmap,
	Sendfile:  sendSendfile,
	Splice:    sendSplice,
}

// writeSocket writes all of p to the socket, parking on EAGAIN. Every
// write(2) is counted, EAGAIN returns included.
func (j *sendJob) writeSocket(p []byte) (int64, error) {
	if j.tls != nil {
		return j.writeTLS(p)
	}
	if j.writeFn == nil {
		j.writeFn = j.writeStep
	}
	j.wbuf, j.wdone = p, 0
	err := j.onSocket(j.writeFn)
	j.wbuf = nil
	return j.wdone, err
}

func (j *sendJob) writeStep(fd uintptr) bool {
	for int(j.wdone) < len(j.wbuf) {
		n, e := unix.Write(int(fd), j.wbuf[j.wdone:])
		j.n[sysWrite]++
		switch {
		case e == unix.EAGAIN:
			return false
		case e == unix.EINTR:
			continue
		case e != nil:
			j.opErr = sockErr(e)
			return true
		}
		j.wdone += int64(n)
		j.advance(int64(n))
	}
	return true
}

// isUnsupported reports errors that mean "this call is not available for
// these descriptors", after which a fallback is safe if nothing was sent.
// ENODEV is mmap's answer for a file system that cannot map files.
func isUnsupported(err error) bool {
	return errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP) ||
		errors.Is(err, unix.ENODEV)
}

// sockErr wraps a socket-side errno; a peer that went away is the common
// case and reads better as such.
func sockErr(e error) error {
	if e == unix.EPIPE || e == unix.ECONNRESET {
		return fmt.Errorf("receiver closed the data connection: %w", e)
	}
	if e == unix.EFAULT {
		// write(2) from a mapping whose pages vanished under it.
		return fmt.Errorf("%w: %w", ErrSourceChanged, e)
	}
	return e
}
