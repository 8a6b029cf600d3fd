package transfer

import (
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// Stats are one side's figures for one transfer. The field comments say
// which are counted, measured or modelled; the API's TransferStats carries
// the same labels.
type Stats struct {
	Strategy Strategy
	Bytes    int64         // measured: bytes through the data socket
	Duration time.Duration // measured: wall time of the copy loop
	Rounds   int64         // counted: chunks moved (see each strategy)
	Syscalls map[string]int64
	Model    Model // modelled

	// Measured on the copy loop's thread, which was locked to it, when
	// ThreadMeasured. Deltas of getrusage(RUSAGE_THREAD). A paced
	// transfer (RateLimit) unlocks its thread while it waits between
	// rounds: its figures sum the rounds, each on the thread that ran it,
	// and leave the waits out; ThreadID is the thread it started on.
	ThreadMeasured         bool
	ThreadID               int
	VoluntaryCtxSwitches   int64
	InvoluntaryCtxSwitches int64
	UserCPU, SystemCPU     time.Duration

	PipeSize int // a SPLICE sender's or a splicing receiver's pipe capacity in effect

	// RateLimit is the pace that applied, in bytes per second: the lower
	// of Source.RateLimit and Config.MaxRate; 0 when unlimited. Throughput
	// is the rate achieved.
	RateLimit int64

	// Measured: CPU time (user + system, of the thread that hashed) spent
	// on the end-to-end checksum, apart from the copy's figures above; 0
	// when none was asked for or the value came from the cache. A
	// receiver hashing as the bytes pass (ExpectChecksum on
	// /dev/null or standard output) hashes inside its measured loop: the
	// hash's measured time is taken out of UserCPU (any part UserCPU
	// lacks, out of SystemCPU; see leaveOutHash), so it counts once, here.
	ChecksumCPU    time.Duration
	ChecksumCached bool // the sender's checksum came from its cache
	Inline         bool // the bytes travelled inside the offer: no data connection
	// Encryption names how the data connection was protected, e.g. "TLS
	// 1.3, TLS_AES_128_GCM_SHA256, user space"; "" for plaintext. The
	// encryption ran on the measured thread: UserCPU includes it.
	Encryption string
}

// ModeSwitches is derived: two switches (entry, exit) per counted call.
func (s *Stats) ModeSwitches() int64 {
	var n int64
	for _, c := range s.Syscalls {
		n += c
	}
	return 2 * n
}

// CPUCopiedBytes is modelled from the measured bytes.
func (s *Stats) CPUCopiedBytes() int64 { return s.Bytes * int64(s.Model.CPUCopies) }

// DMACopiedBytes is modelled from the measured bytes.
func (s *Stats) DMACopiedBytes() int64 { return s.Bytes * int64(s.Model.DMACopies) }

// Throughput is derived: bytes per second of wall time.
func (s *Stats) Throughput() float64 {
	if s.Duration <= 0 {
		return 0
	}
	return float64(s.Bytes) / s.Duration.Seconds()
}

// sysno names the system calls the data path counts.
type sysno uint8

const (
	sysPread sysno = iota
	sysRead
	sysWrite
	sysMmap
	sysMunmap
	sysSendfile
	sysSplice
	sysPipe2
	sysFcntl
	sysFstat
	sysSyncFileRange
	sysPwrite
	numSysnos
)

// sysnames are the names strace prints on amd64, so a report can be
// checked against `strace -c` name by name.
var sysnames = [numSysnos]string{"pread64", "read", "write", "mmap", "munmap", "sendfile", "splice", "pipe2", "fcntl", "fstat", "sync_file_range", "pwrite64"}

// counts is a fixed array so the copy loops count without allocating.
type counts [numSysnos]int64

func (c *counts) toMap() map[string]int64 {
	m := make(map[string]int64)
	for i, n := range c {
		if n > 0 {
			m[sysnames[i]] = n
		}
	}
	return m
}

// meter measures a copy loop: wall time always, and the thread's rusage
// when the goroutine is locked to its thread for the loop.
type meter struct {
	start  time.Time
	locked bool
	tid    int
	ru     unix.Rusage
	// Between a pacing wait's pause and resume: the stretch measured so
	// far (see pace.go).
	spent  unix.Rusage
	paused bool
}

// startMeter begins a measurement. With lock, it locks the goroutine to
// its OS thread until stop; the goroutine never exits locked, so the
// runtime keeps the thread (exiting locked would destroy it, which is
// what made locking cost ~220 µs per small transfer in the prototypes).
func startMeter(lock bool) *meter {
	m := &meter{locked: lock}
	if lock {
		runtime.LockOSThread()
		m.tid = unix.Gettid()
		if unix.Getrusage(unix.RUSAGE_THREAD, &m.ru) != nil {
			m.locked = false
			runtime.UnlockOSThread()
		}
	}
	m.start = time.Now()
	return m
}

// stop fills the measured fields of st and unlocks the thread.
func (m *meter) stop(st *Stats, c *counts) {
	st.Duration = time.Since(m.start)
	st.Syscalls = c.toMap()
	if !m.locked {
		return
	}
	defer runtime.UnlockOSThread()
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_THREAD, &ru) != nil {
		return
	}
	st.ThreadMeasured = true
	st.ThreadID = m.tid
	st.VoluntaryCtxSwitches = ru.Nvcsw - m.ru.Nvcsw
	st.InvoluntaryCtxSwitches = ru.Nivcsw - m.ru.Nivcsw
	st.UserCPU = tvDelta(ru.Utime, m.ru.Utime)
	st.SystemCPU = tvDelta(ru.Stime, m.ru.Stime)
}

func tvDelta(a, b unix.Timeval) time.Duration {
	return time.Duration(a.Nano() - b.Nano())
}
