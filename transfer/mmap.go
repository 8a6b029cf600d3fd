package transfer

import (
	"fmt"
	"runtime/debug"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

var pageSize = int64(unix.Getpagesize())

// sendMmap maps the range one window at a time (never the whole file),
// writes each window to the socket and unmaps it. Windows shrink while
// many MMAP transfers run (Config.MmapBudget), since every mapped,
// populated page counts in the server's resident set. Windows are mapped with
// MAP_POPULATE, which the prototypes found faster than faulting page by
// page. A window holds a page-aligned start, so the first window may map a
// few bytes before the range.
//
// A file truncated under a mapping is the danger: the kernel's copy in
// write(2) then fails with EFAULT (reported as ErrSourceChanged), and
// should anything in this goroutine touch a vanished page in user space,
// SetPanicOnFault turns the SIGBUS into a recoverable panic rather than a
// crash of the server. The page that holds the new end of the file does
// not fault, though: past the end it reads as zeros. So each window is
// checked with fstat once it is mapped, and nothing of a window the file
// no longer fills is sent; one more fstat after the last window catches a
// truncation that raced with the final write. Only a truncation during a
// single write(2) call can still put zeros on the wire, and the transfer
// then fails (and the connection is reset), so no receiver lands them.
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
	var reserved int64 // of the mapping budget, for the window mapped now
	j.maps.active.Add(1)
	defer func() {
		j.maps.active.Add(-1)
		j.maps.mapped.Add(-reserved)
	}()
	for j.left > 0 {
		// Paced: waits before a window is reserved, and books no more than
		// a window carries (booking a larger round than it sends would
		// hold MMAP to a fraction of its limit).
		want, err := j.nextRound(min(j.left, int64(j.cfg.mmapWindow())))
		if err != nil {
			return written, true, err
		}
		window := j.maps.reserve(j.cfg)
		reserved = window
		base := j.off &^ (pageSize - 1)
		skip := j.off - base
		length := min(window, skip+want)
		var e error
		m, e = unix.Mmap(j.fd, base, int(length), unix.PROT_READ, unix.MAP_SHARED|unix.MAP_POPULATE)
		j.n[sysMmap]++
		if e != nil {
			if written == 0 && isUnsupported(e) {
				return 0, false, e
			}
			return written, true, fmt.Errorf("mmap: %w", e)
		}
		if err := j.checkSize(base + length); err != nil {
			unix.Munmap(m)
			m = nil
			j.n[sysMunmap]++
			return written, true, err
		}
		n, werr := j.writeSocket(m[skip:length])
		written += n
		j.round++
		e = unix.Munmap(m)
		m = nil
		j.maps.mapped.Add(-reserved)
		reserved = 0
		j.n[sysMunmap]++
		if werr != nil {
			return written, true, werr
		}
		if e != nil {
			return written, true, fmt.Errorf("munmap: %w", e)
		}
	}
	if written == 0 {
		return 0, true, nil
	}
	return written, true, j.checkSize(j.off)
}

// checkSize reports ErrSourceChanged if the file now ends before end.
func (j *sendJob) checkSize(end int64) error {
	var st unix.Stat_t
	err := unix.Fstat(j.fd, &st)
	j.n[sysFstat]++
	if err == nil && st.Size < end {
		return fmt.Errorf("%w: it shrank to %d bytes, the range needs %d", ErrSourceChanged, st.Size, end)
	}
	return nil
}

// mapBudget shares Config.MmapBudget among a server's MMAP transfers:
// every mapped, populated page counts in the server's resident set.
type mapBudget struct {
	active atomic.Int64 // MMAP transfers running
	mapped atomic.Int64 // bytes reserved by windows mapped now
}

// reserve sizes the next window and counts it as mapped; the caller gives
// it back after munmap.
func (b *mapBudget) reserve(c *Config) int64 {
	w := c.mmapWindowFor(b.active.Load(), b.mapped.Load())
	b.mapped.Add(w)
	return w
}
