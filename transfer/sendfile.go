package transfer

import "golang.org/x/sys/unix"

// sendSendfile moves the range with sendfile(2) in bounded chunks, with an
// explicit offset so the file position is never shared.
func sendSendfile(j *sendJob) (int64, bool, error) {
	j.wdone = 0
	err := j.inRounds(int64(j.cfg.sendfileChunk()), j.sendfileRound)
	if j.wdone == 0 && isUnsupported(err) {
		return 0, false, err
	}
	return j.wdone, true, err
}

func (j *sendJob) sendfileRound() error {
	if j.sendfileFn == nil {
		j.sendfileFn = j.sendfileStep
	}
	return j.onSocket(j.sendfileFn)
}

func (j *sendJob) sendfileStep(fd uintptr) bool {
	for j.left > 0 {
		off := j.off
		n, e := unix.Sendfile(int(fd), j.fd, &off, int(min(j.left, int64(j.cfg.sendfileChunk()))))
		j.n[sysSendfile]++
		if n > 0 {
			j.wdone += int64(n)
			j.advance(int64(n))
			j.round++
		}
		switch {
		case e == unix.EAGAIN:
			return false
		case e == unix.EINTR:
			continue
		case e != nil:
			j.opErr = sockErr(e)
			return true
		case n == 0:
			j.opErr = ErrSourceChanged
			return true
		}
	}
	return true
}
