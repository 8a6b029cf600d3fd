package transfer

import (
	"fmt"
	"log/slog"
	"sync"

	"golang.org/x/sys/unix"
)

// pipe is one kernel pipe used as the splice buffer.
type pipe struct {
	r, w int
	size int // capacity in effect (F_GETPIPE_SZ)
}

func (p *pipe) close() {
	unix.Close(p.r)
	unix.Close(p.w)
}

// pipePool keeps idle pipes for reuse: creating and sizing a pipe costs
// three system calls and a 1 MiB allocation in the kernel. A pipe goes
// back only when it is empty; one an error left data in is closed.
type pipePool struct {
	size    int
	idle    chan *pipe
	log     *slog.Logger
	refused sync.Once // warns the first time F_SETPIPE_SZ is refused
}

func newPipePool(size, keep int, log *slog.Logger) *pipePool {
	return &pipePool{size: size, idle: make(chan *pipe, keep), log: log}
}

// get returns an idle pipe or makes one, counting the calls it makes in c.
// When F_SETPIPE_SZ is refused (above fs.pipe-max-size, or past the
// per-user pipe page limit, without CAP_SYS_RESOURCE), the pipe keeps its
// default size, which the statistics report; the first refusal is logged.
// A later pipe asks again: the per-user limit comes and goes.
func (pp *pipePool) get(c *counts) (*pipe, error) {
	select {
	case p := <-pp.idle:
		return p, nil
	default:
	}
	var fds [2]int
	c[sysPipe2]++
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return nil, fmt.Errorf("pipe2: %w", err)
	}
	p := &pipe{r: fds[0], w: fds[1]}
	c[sysFcntl]++
	_, setErr := unix.FcntlInt(uintptr(p.w), unix.F_SETPIPE_SZ, pp.size)
	c[sysFcntl]++
	size, err := unix.FcntlInt(uintptr(p.w), unix.F_GETPIPE_SZ, 0)
	if err != nil {
		p.close()
		return nil, fmt.Errorf("fcntl F_GETPIPE_SZ: %w", err)
	}
	p.size = size
	if setErr != nil {
		pp.refused.Do(func() {
			pp.log.Warn("splice: the kernel refused the pipe size; splicing with smaller pipes (each SPLICE report's pipe_size says what it got)",
				"asked", pp.size, "got", size, "err", setErr)
		})
	}
	return p, nil
}

func (pp *pipePool) put(p *pipe) {
	select {
	case pp.idle <- p:
	default:
		p.close()
	}
}

// close closes every idle pipe.
func (pp *pipePool) close() {
	for {
		select {
		case p := <-pp.idle:
			p.close()
		default:
			return
		}
	}
}
