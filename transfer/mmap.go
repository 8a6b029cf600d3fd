package transfer

import (
	"fmt"
	"runtime/debug"

	"golang.org/x/sys/unix"
)

var pageSize = int64(unix.Getpagesize())

// sendMmap maps the range one window at a time (never the whole file),
// writes each window to the socket and unmaps it. Windows are mapped with
// MAP_POPULATE, which the prototypes found faster than faulting page by
// page. A window holds a page-aligned start, so the first window may map a
// few bytes before the range.
//
// A file truncated under a mapping is the danger: the kernel's copy in
// write(2) then fails with EFAULT (reported as ErrSourceChanged), and
// should anything in this goroutine touch a vanished page in user space,
// SetPanicOnFault turns the SIGBUS into a recoverable panic rather than a
// crash of the server. The page that holds the new end of the file does
// not fault, though: past the end it reads as zeros. Only a range that
// ends in that page can be sent whole that way (a later page would
// fault), so one fstat after the last window catches it.
func sendMmap(j *sendJob) (written int64, handled bool, err error) {
	var m []byte // the window mapped now, if any
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		if _, fault := r.(interface{ Addr() uintptr }); !fault {
			panic(r) // a bug, not a vanished page
		}
		if m != nil {
			unix.Munmap(m)
			j.n[sysMunmap]++
		}
		handled, err = true, fmt.Errorf("%w: fault in mapping: %v", ErrSourceChanged, r)
	}()
	window := int64(j.cfg.mmapWindow())
	for j.left > 0 {
		base := j.off &^ (pageSize - 1)
		skip := j.off - base
		length := min(window, skip+j.left)
		var e error
		m, e = unix.Mmap(j.fd, base, int(length), unix.PROT_READ, unix.MAP_SHARED|unix.MAP_POPULATE)
		j.n[sysMmap]++
		if e != nil {
			if written == 0 && isUnsupported(e) {
				return 0, false, e
			}
			return written, true, fmt.Errorf("mmap: %w", e)
		}
		n, werr := j.writeSocket(m[skip:length])
		written += n
		j.round++
		e = unix.Munmap(m)
		m = nil
		j.n[sysMunmap]++
		if werr != nil {
			return written, true, werr
		}
		if e != nil {
			return written, true, fmt.Errorf("munmap: %w", e)
		}
	}
	return written, true, j.checkSize(written)
}

// checkSize reports ErrSourceChanged if the file now ends before the
// bytes already sent did.
func (j *sendJob) checkSize(written int64) error {
	if written == 0 {
		return nil
	}
	var st unix.Stat_t
	err := unix.Fstat(j.fd, &st)
	j.n[sysFstat]++
	if err == nil && st.Size < j.off {
		return fmt.Errorf("%w: it shrank to %d bytes, the range ends at %d", ErrSourceChanged, st.Size, j.off)
	}
	return nil
}
