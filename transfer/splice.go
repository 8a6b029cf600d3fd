package transfer

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// sendSplice moves the range file -> pipe -> socket. Each round splices up
// to the pipe's capacity in from the file, then drains the pipe into the
// socket; the payload never enters user space.
func sendSplice(j *sendJob) (int64, bool, error) {
	p, err := j.pipes.get(&j.n)
	if err != nil {
		return 0, false, err
	}
	j.pipe = p.size
	var written, inPipe int64
	defer func() {
		if inPipe == 0 {
			j.pipes.put(p)
		} else {
			p.close() // holds bytes that will never be sent
		}
	}()
	for j.left > 0 {
		size, err := j.nextRound(int64(p.size))
		if err != nil {
			return written, true, err
		}
		off := j.off
		n, e := unix.Splice(j.fd, &off, p.w, nil, int(size), unix.SPLICE_F_MOVE|unix.SPLICE_F_NONBLOCK)
		j.n[sysSplice]++
		switch {
		case e == unix.EINTR:
			continue
		case e != nil:
			if written == 0 && isUnsupported(e) {
				return 0, false, e
			}
			return written, true, fmt.Errorf("splice from file: %w", e)
		case n == 0:
			return written, true, ErrSourceChanged
		}
		inPipe = n
		w, err := j.drainPipe(p, &inPipe)
		written += w
		j.round++
		if err != nil {
			return written, true, err
		}
	}
	return written, true, nil
}

// drainPipe splices *inPipe bytes from the pipe into the socket.
func (j *sendJob) drainPipe(p *pipe, inPipe *int64) (int64, error) {
	if j.drainFn == nil {
		j.drainFn = j.drainStep
	}
	j.pipeR, j.inPipe = p.r, *inPipe
	err := j.onSocket(j.drainFn)
	written := *inPipe - j.inPipe
	*inPipe = j.inPipe
	return written, err
}

func (j *sendJob) drainStep(fd uintptr) bool {
	for j.inPipe > 0 {
		n, e := unix.Splice(j.pipeR, nil, int(fd), nil, int(j.inPipe), unix.SPLICE_F_MOVE|unix.SPLICE_F_NONBLOCK)
		j.n[sysSplice]++
		switch {
		case e == unix.EAGAIN:
			return false
		case e == unix.EINTR:
			continue
		case e != nil:
			j.opErr = sockErr(e)
			return true
		}
		j.inPipe -= n
		j.advance(n)
	}
	return true
}
