package transfer

import (
	"crypto/tls"
	"log/slog"
	"time"
)

// Config tunes a data-plane Server. The zero value is ready to use; each
// field documents its default.
type Config struct {
	// TicketTTL is how long an offer's ticket waits for its data
	// connection. 0 means 30 s.
	TicketTTL time.Duration
	// HandshakeTimeout is how long a data connection may take to send its
	// preamble before it is dropped. 0 means 10 s. A client sends the preamble as soon as it connects, so this
	// bounds how long a silent connection holds one of MaxHandshakes'
	// places; the cap, not this, is what stops a flood (a flooder
	// reconnects). The clock runs while the server's own goroutine waits
	// for a CPU, so a short timeout drops honest clients on a loaded host.
	HandshakeTimeout time.Duration
	// MaxTransfers caps the transfers alive at once: offered and waiting
	// for their data connection, or running. Past it Offer returns
	// ErrBusy. 0 means 256: each holds an open file and, once running, a
	// socket and up to 1 MiB of buffer or pipe, or a mapping window (4 MiB
	// at most, all of them within MmapBudget), so 256 keep that under
	// about 256 MiB and 1024 descriptors, and still admit
	// the 200 concurrent pulls the load test runs on 2 cores.
	MaxTransfers int
	// MaxHandshakes caps the data connections still in their handshake
	// (accepted, preamble not read yet: nobody has proved a ticket). A
	// connection past it gets VerdictUnavailable and is closed at once,
	// without a goroutine. 0 means the transfer limit (MaxTransfers): an
	// honest client connects only with a live ticket, so no more than
	// MaxTransfers handshakes are honest at once.
	MaxHandshakes int
	// MaxHandshakesPerIP caps the handshakes from one source address, so
	// that one host holding idle connections cannot take every
	// MaxHandshakes place. Past it a connection gets VerdictUnavailable,
	// which clients retry. 0 means 32; -1 means no cap of its own.
	MaxHandshakesPerIP int
	// FirstByteTimeout is how long a new data connection may stay silent
	// before its first preamble byte, counted from when the server is
	// ready to read it (not from accept, so that a server short of CPU
	// does not drop honest clients). An honest client writes its preamble
	// as it connects. 0 means 2 s.
	FirstByteTimeout time.Duration
	// MaxIdleConns caps the keep-alive data connections (preamble version
	// 2) waiting for their next preamble, each for at most
	// HandshakeTimeout. They do not count against MaxHandshakes: a client
	// keeping connections for later must not take the places new
	// connections need. Past it, a connection whose transfer ends is
	// closed instead of kept. 0 means 64.
	MaxIdleConns int
	// SessionConns caps the data connections one session may bind at
	// once (Session.MaxConns). 0 means 8.
	SessionConns int
	// MaxBoundConns caps the data connections bound to sessions, all
	// sessions together: past it a version 3 preamble gets
	// VerdictUnavailable. 0 means 1024.
	MaxBoundConns int
	// BindDataToClient binds each ticket to the IP address its offer's
	// client called from (Source.ClientIP): a data connection from
	// another address gets VerdictRefused and leaves the ticket pending.
	// It is for clients whose control and data connections leave from
	// the same host; NAT or a proxy in front of either one breaks it.
	// false (the default) binds nothing.
	BindDataToClient bool
	// BufferSize is the largest READ_WRITE buffer, in bytes: a transfer
	// takes the smallest power of two from 4 KiB that holds its range, up
	// to this (bufferFor). 0 means 1 MiB.
	BufferSize int
	// SendfileChunk caps the bytes of one sendfile call. 0 means 4 MiB,
	// the cap Go's own internal/poll uses.
	SendfileChunk int
	// MmapWindow is how much of the file is mapped at a time, rounded up
	// to a whole page. 0 means 4 MiB
	// (BenchmarkTransferMmapWindow compares window sizes).
	MmapWindow int
	// MmapBudget bounds the bytes mapped at once by all MMAP transfers
	// together: with n of them running, each maps at most MmapBudget/n
	// (never less than 64 KiB), so the resident set stays bounded under
	// many concurrent pulls. 0 means 32 MiB; -1 means no bound.
	MmapBudget int64
	// PipeSize is the splice pipe capacity asked for with F_SETPIPE_SZ.
	// 0 means 1 MiB.
	// Where the kernel refuses it (above /proc/sys/fs/pipe-max-size, or
	// past the per-user pipe page limit, for a process without
	// CAP_SYS_RESOURCE, which root in a container often lacks), pipes
	// keep their default size: one warning is logged and each SPLICE
	// transfer's Stats.PipeSize says what it got.
	PipeSize int
	// IdlePipes is how many splice pipes are kept for reuse. 0 means 16.
	IdlePipes int
	// ThreadMeasureMin is the smallest transfer, in bytes, whose copy loop
	// is locked to its OS thread and measured with getrusage(RUSAGE_THREAD).
	// Smaller transfers report ThreadMeasured == false. 0 means every
	// transfer is measured.
	ThreadMeasureMin int64
	// Preference is the order in which the server's choice (Auto) picks
	// among the supported strategies for a transfer of at least
	// AutoSmallBelow bytes. nil means MMAP, SENDFILE, SPLICE, READ_WRITE.
	Preference []Strategy
	// SmallPreference is that order for shorter transfers. nil means
	// READ_WRITE, SENDFILE, SPLICE, MMAP, or Preference when only that is
	// set. A session's Auto transfer of at most 64 KiB goes as one
	// READ_WRITE write whatever it says (see Session.Offer).
	SmallPreference []Strategy
	// AutoSmallBelow is the length under which Auto uses SmallPreference.
	// 0 means 8 MiB.
	AutoSmallBelow int64
	// Auto says how the server's choice (Auto) is made: AutoFixed (the
	// zero value) follows Preference and SmallPreference; AutoMeasure
	// picks, per size class and network, what measured fastest on this
	// host (see auto.go), following those orders only until a class has
	// figures.
	Auto AutoMode
	// AutoExploreEvery sends every n-th Auto transfer of a class with the
	// strategy whose figures there are oldest, to keep measuring it
	// (AutoMeasure only). 0 means 20 (5% of Auto transfers); -1 means
	// never, which pins the choice to what was measured so far.
	AutoExploreEvery int
	// AutoProbe runs a short measurement of every supported strategy in
	// the background when the server starts (AutoMeasure only), over
	// loopback through the server's own data path, so that the first
	// clients already get a measured choice. It sends about 0.6 GB and
	// takes well under a second on an idle host.
	AutoProbe bool
	// AutoProbeDir is where the probe's unnamed file is made (O_TMPFILE),
	// so that the probe reads from the file system the server sends from.
	// "" or a directory that refuses it means the system's temporary
	// directory.
	AutoProbeDir string
	// TLS, when set, makes the data channel require TLS 1.3 on every
	// connection (see datatls.go), with this configuration's
	// certificates: the control plane's, reloaded per handshake when it
	// does so (ServerDataTLS keeps GetConfigForClient). SENDFILE and
	// SPLICE are then not offered. nil means plaintext.
	TLS *tls.Config
	// Disable lists strategies not to offer even if the kernel supports
	// them. nil means none.
	Disable []Strategy
	// MaxRate is a server-wide ceiling, in bytes per second, on the data
	// channel: all transfers together send no faster (each is paced, see
	// pace.go), and one that asks for more (Source.RateLimit) gets it
	// shared. 0 means no ceiling.
	MaxRate int64
	// FlowRate caps each data connection at this many bytes per second
	// with the kernel's own pacing (SO_MAX_PACING_RATE, which TCP honours
	// without the fq qdisc), unlike MaxRate, which paces transfers in user
	// space and shares one ceiling. It holds one flow below the link, as
	// a per-flow policer or a long fat pipe does, so that parallel streams
	// can be measured; it also keeps any one client from filling a link.
	// 0 means none.
	FlowRate int64
	// Logger receives one line per finished transfer. nil means
	// slog.Default().
	Logger *slog.Logger
	// ChecksumCache is how many checksums the server keeps, keyed by file
	// identity (device, inode, size, mtime, ctime), range and algorithm,
	// least recently used first out. 0 means 4096 (about 1 MiB); -1
	// means none are kept.
	ChecksumCache int
	// Events are called at the data plane's notable moments, for
	// metrics. The zero value calls nothing.
	Events Events
}

// defaultPreference orders strategies for the server's choice on
// transfers of at least Config.AutoSmallBelow bytes.
var defaultPreference = []Strategy{Mmap, Sendfile, Splice, ReadWrite}

// defaultSmallPreference orders strategies for shorter transfers. Reading
// and writing goes first: its buffer is sized to the transfer
// (bufferFor), so a small file does not hold 1 MiB.
var defaultSmallPreference = []Strategy{ReadWrite, Sendfile, Splice, Mmap}

// preference is the order Auto follows for a transfer of length bytes.
func (c *Config) preference(length int64) []Strategy {
	if length < c.autoSmallBelow() {
		switch {
		case c.SmallPreference != nil:
			return c.SmallPreference
		case c.Preference != nil:
			return c.Preference
		}
		return defaultSmallPreference
	}
	if c.Preference != nil {
		return c.Preference
	}
	return defaultPreference
}

func (c *Config) autoExploreEvery() int {
	switch n := orDefault(c.AutoExploreEvery, defaultAutoExploreEvery); {
	case n < 0:
		return 0
	default:
		return n
	}
}

func (c *Config) autoSmallBelow() int64 { return orDefault(c.AutoSmallBelow, defaultAutoSmallBelow) }

func (c *Config) ticketTTL() time.Duration { return orDefault(c.TicketTTL, defaultTicketTTL) }
func (c *Config) handshakeTimeout() time.Duration {
	return orDefault(c.HandshakeTimeout, defaultHandshakeTimeout)
}
func (c *Config) maxTransfers() int  { return orDefault(c.MaxTransfers, defaultMaxTransfers) }
func (c *Config) maxHandshakes() int { return orDefault(c.MaxHandshakes, c.maxTransfers()) }
func (c *Config) maxHandshakesPerIP() int {
	return orDefault(c.MaxHandshakesPerIP, defaultMaxHandshakesPerIP)
}
func (c *Config) firstByteTimeout() time.Duration {
	return orDefault(c.FirstByteTimeout, defaultFirstByteTimeout)
}
func (c *Config) bufferSize() int    { return orDefault(c.BufferSize, defaultBufferSize) }
func (c *Config) sendfileChunk() int { return orDefault(c.SendfileChunk, defaultSendfileChunk) }
func (c *Config) pipeSize() int      { return orDefault(c.PipeSize, defaultPipeSize) }
func (c *Config) idlePipes() int     { return orDefault(c.IdlePipes, defaultIdlePipes) }
func (c *Config) maxIdleConns() int  { return orDefault(c.MaxIdleConns, defaultMaxIdleConns) }
func (c *Config) sessionConns() int  { return orDefault(c.SessionConns, defaultSessionConns) }
func (c *Config) maxBoundConns() int { return orDefault(c.MaxBoundConns, defaultMaxBoundConns) }
func (c *Config) checksumCache() int { return orDefault(c.ChecksumCache, defaultChecksumCache) }

func (c *Config) mmapWindow() int {
	w := int64(orDefault(c.MmapWindow, defaultMmapWindow))
	return int((w + pageSize - 1) &^ (pageSize - 1))
}

// minMmapWindow is the smallest window the budget shrinks one to.
const minMmapWindow = 64 << 10

// mmapWindowFor is the window for the next mapping of one of active
// running MMAP transfers while mapped bytes are mapped by all of them: its
// share of the budget, no more than the budget has free, never less than
// minMmapWindow (so the budget can be overrun by at most that much per
// transfer).
func (c *Config) mmapWindowFor(active, mapped int64) int64 {
	w := int64(c.mmapWindow())
	budget := orDefault(c.MmapBudget, defaultMmapBudget)
	if budget < 0 || active < 1 {
		return w
	}
	share := min(budget/active, budget-mapped)
	return min(w, max(share, minMmapWindow)&^(pageSize-1))
}

func (c *Config) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.Default()
	}
	return c.Logger
}
