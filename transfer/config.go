package transfer

import (
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
	// preamble before it is dropped. 0 means 10 s.
	HandshakeTimeout time.Duration
	// BufferSize is the READ_WRITE buffer, in bytes. 0 means 1 MiB.
	BufferSize int
	// SendfileChunk caps the bytes of one sendfile call. 0 means 4 MiB,
	// the cap Go's own internal/poll uses.
	SendfileChunk int
	// MmapWindow is how much of the file is mapped at a time, rounded up
	// to a whole page. 0 means 1 MiB.
	MmapWindow int
	// PipeSize is the splice pipe capacity asked for with F_SETPIPE_SZ.
	// 0 means 1 MiB (the prototypes made 14x fewer calls than with 64 KiB).
	PipeSize int
	// IdlePipes is how many splice pipes are kept for reuse. 0 means 16.
	IdlePipes int
	// ThreadMeasureMin is the smallest transfer, in bytes, whose copy loop
	// is locked to its OS thread and measured with getrusage(RUSAGE_THREAD).
	// Smaller transfers report ThreadMeasured == false. 0 means every
	// transfer is measured.
	ThreadMeasureMin int64
	// Preference is the order in which the server's choice (Auto) picks
	// among the supported strategies. nil means DefaultPreference.
	Preference []Strategy
	// Disable lists strategies not to offer even if the kernel supports
	// them. nil means none.
	Disable []Strategy
	// Logger receives one line per finished transfer. nil means
	// slog.Default().
	Logger *slog.Logger
}

// DefaultPreference orders strategies for the server's choice. On the
// machines Ferry was measured on (loopback, page-cache hits), writing from
// 1 MiB mmap windows moved the most bytes per second; splice and sendfile
// spend the least CPU on a real NIC. See the README's performance notes.
var DefaultPreference = []Strategy{Mmap, Splice, Sendfile, ReadWrite}

const mib = 1 << 20

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

func (c *Config) ticketTTL() time.Duration { return orDefault(c.TicketTTL, 30*time.Second) }
func (c *Config) handshakeTimeout() time.Duration {
	return orDefault(c.HandshakeTimeout, 10*time.Second)
}
func (c *Config) bufferSize() int    { return orDefault(c.BufferSize, mib) }
func (c *Config) sendfileChunk() int { return orDefault(c.SendfileChunk, 4*mib) }
func (c *Config) pipeSize() int      { return orDefault(c.PipeSize, mib) }
func (c *Config) idlePipes() int     { return orDefault(c.IdlePipes, 16) }

func (c *Config) mmapWindow() int {
	w := int64(orDefault(c.MmapWindow, mib))
	return int((w + pageSize - 1) &^ (pageSize - 1))
}

func (c *Config) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.Default()
	}
	return c.Logger
}
