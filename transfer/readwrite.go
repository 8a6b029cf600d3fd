package transfer

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// sendReadWrite is the baseline: pread into a pooled buffer, write it out.
// It talks to the file and socket descriptors directly, so nothing (such
// as io.Copy's ReaderFrom) can quietly turn it into sendfile.
func sendReadWrite(j *sendJob) (int64, bool, error) {
	bp := getBuffer(bufferFor(j.cfg.bufferSize(), j.left))
	defer putBuffer(bp)
	buf := *bp
	var written int64
	for j.left > 0 {
		size, err := j.nextRound(int64(len(buf)))
		if err != nil {
			return written, true, err
		}
		chunk := buf[:size]
		n, err := unix.Pread(j.fd, chunk, j.off)
		j.n[sysPread]++
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return written, true, fmt.Errorf("pread: %w", err)
		}
		if n == 0 {
			return written, true, ErrSourceChanged
		}
		w, err := j.writeSocket(chunk[:n])
		written += w
		j.round++
		if err != nil {
			return written, true, err
		}
	}
	return written, true, nil
}
