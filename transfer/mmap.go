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
// populated page counts in the server's resident set. A window holds a page-aligned start, so the first window may map a
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
	w := mmapWindow{j: j} // the window mapped now, if any
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			handled, err = true, w.fault(r)
		}
	}()
	j.maps.active.Add(1)
	defer func() {
		j.maps.active.Add(-1)
		w.giveBack()
	}()
	for j.left > 0 {
		// Paced: waits before a window is reserved, and books no more than
		// a window carries (booking a larger round than it sends would
		// hold MMAP to a fraction of its limit).
		want, err := j.nextRound(min(j.left, int64(j.cfg.mmapWindow())))
		if err != nil {
			return written, true, err
		}
		if err := w.mapNext(want); err != nil {
			if written == 0 && isUnsupported(err) {
				return 0, false, err
			}
			return written, true, fmt.Errorf("mmap: %w", err)
		}
		n, err := w.send()
		written += n
		if err != nil {
			return written, true, err
		}
	}
	if written == 0 {
		return 0, true, nil
	}
	return written, true, j.checkSize(j.off)
}

// mmapWindow is one MMAP transfer's mapping: at most one window at a
// time, with its share of the server's mapping budget.
type mmapWindow struct {
	j        *sendJob
	m        []byte // the window mapped now; nil between windows
	skip     int64  // bytes of m before j.off (m starts on a page)
	reserved int64  // of the mapping budget, for m
}

// mapNext maps the window that holds the next want bytes of the range,
// sized by the budget, with MAP_POPULATE, which the prototypes found
// faster than faulting page by page.
func (w *mmapWindow) mapNext(want int64) error {
	j := w.j
	w.reserved = j.maps.reserve(j.cfg)
	base := j.off &^ (pageSize - 1)
	w.skip = j.off - base
	m, err := unix.Mmap(j.fd, base, int(min(w.reserved, w.skip+want)), unix.PROT_READ, unix.MAP_SHARED|unix.MAP_POPULATE)
	j.n[sysMmap]++
	if err != nil {
		return err
	}
	w.m = m
	return nil
}

// send checks that the file still fills the window, writes it to the
// socket and unmaps it.
func (w *mmapWindow) send() (int64, error) {
	j := w.j
	if err := j.checkSize(j.off - w.skip + int64(len(w.m))); err != nil {
		w.unmap()
		return 0, err
	}
	n, werr := j.writeSocket(w.m[w.skip:])
	j.round++
	err := w.unmap()
	if werr != nil {
		return n, werr
	}
	if err != nil {
		return n, fmt.Errorf("munmap: %w", err)
	}
	return n, nil
}

// unmap unmaps the window and gives its budget back.
func (w *mmapWindow) unmap() error {
	err := unix.Munmap(w.m)
	w.j.n[sysMunmap]++
	w.m = nil
	w.giveBack()
	return err
}

// giveBack returns the window's share of the budget.
func (w *mmapWindow) giveBack() {
	w.j.maps.mapped.Add(-w.reserved)
	w.reserved = 0
}

// fault turns the panic of a touched vanished page (SetPanicOnFault)
// into ErrSourceChanged, unmapping the window; any other panic is a bug
// and goes on.
func (w *mmapWindow) fault(r any) error {
	if _, ok := r.(interface{ Addr() uintptr }); !ok {
		panic(r)
	}
	if w.m != nil {
		w.unmap()
	}
	return fmt.Errorf("%w: fault in mapping: %v", ErrSourceChanged, r)
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
