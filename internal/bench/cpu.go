package bench

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// cpuClock reads a cumulative CPU time (user + system).
type cpuClock func() time.Duration

// selfCPU is getrusage(RUSAGE_SELF): every thread of ferry-bench, which
// is where the in-process clients run.
func selfCPU() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// treeCPU sums /proc/<pid>/stat utime+stime over fixed pids (a server
// and the workers it had started when it became ready). A pid that is
// gone counts 0, which shows as a bogus delta rather than an error; the
// servers live for the whole run.
func treeCPU(pids []int) cpuClock {
	return func() time.Duration {
		var sum time.Duration
		for _, pid := range pids {
			if st, err := readProcStat(pid); err == nil {
				sum += st.cpu()
			}
		}
		return sum
	}
}

// waitCPU is the wait4 rusage of a finished command: its own CPU plus
// that of every descendant it waited for.
func waitCPU(ps *os.ProcessState) time.Duration {
	if ps == nil {
		return 0
	}
	return ps.UserTime() + ps.SystemTime()
}

// metered runs fn between two readings of the sender's and receiver's
// clocks and the wall clock. A nil clock leaves that field to fn.
func metered(sender, receiver cpuClock, fn func(*Sample) error) (Sample, error) {
	var s Sample
	var s0, r0 time.Duration
	if sender != nil {
		s0 = sender()
	}
	if receiver != nil {
		r0 = receiver()
	}
	t0 := time.Now()
	err := fn(&s)
	s.WallSec = time.Since(t0).Seconds()
	if receiver != nil {
		s.ReceiverCPU = (receiver() - r0).Seconds()
	}
	if sender != nil {
		s.SenderCPU = (sender() - s0).Seconds()
	}
	return s, err
}
