package transfer

import "time"

// The defaults a zero Config, ReceiveConfig or PoolConfig field stands
// for, in one place. Each field's comment says which one it takes; where
// a figure came from a measurement, docs/performance.md says which.
const (
	mib = 1 << 20

	// DefaultTicketTTL is how long an offer's ticket waits for its data
	// connection (Config.TicketTTL).
	DefaultTicketTTL = 30 * time.Second
	// DefaultHandshakeTimeout bounds a data connection's preamble on the
	// server and the dial and verdict on the receiver (Config and
	// ReceiveConfig.HandshakeTimeout), and how long a kept connection
	// waits for its next preamble.
	DefaultHandshakeTimeout = 10 * time.Second
	// DefaultMaxTransfers caps the transfers alive at once
	// (Config.MaxTransfers).
	DefaultMaxTransfers = 256
	// DefaultMaxIdleConns caps the server's kept connections waiting for
	// their next preamble (Config.MaxIdleConns).
	DefaultMaxIdleConns = 64
	// DefaultBufferSize is the largest READ_WRITE buffer and the
	// receiver's read buffer and splice round (Config and
	// ReceiveConfig.BufferSize).
	DefaultBufferSize = mib
	// DefaultSendfileChunk caps one sendfile call (Config.SendfileChunk),
	// as Go's own internal/poll does.
	DefaultSendfileChunk = 4 * mib
	// DefaultMmapWindow is how much of a file MMAP maps at a time
	// (Config.MmapWindow).
	DefaultMmapWindow = 4 * mib
	// DefaultMmapBudget bounds the bytes all MMAP transfers map at once
	// (Config.MmapBudget).
	DefaultMmapBudget = 32 * mib
	// DefaultPipeSize is the splice pipe capacity asked for, on both
	// sides (Config.PipeSize); 1 MiB is the most fs.pipe-max-size
	// allows by default.
	DefaultPipeSize = mib
	// DefaultIdlePipes is how many splice pipes are kept for reuse
	// (Config.IdlePipes), on both sides.
	DefaultIdlePipes = 16
	// DefaultChecksumCache is how many checksums the server keeps
	// (Config.ChecksumCache).
	DefaultChecksumCache = 4096
	// DefaultAutoSmallBelow is the length under which the server's
	// choice follows the small-transfer preference
	// (Config.AutoSmallBelow).
	DefaultAutoSmallBelow = 8 * mib
	// DefaultPoolMaxIdle is how many idle connections a Pool keeps per
	// address (PoolConfig.MaxIdle).
	DefaultPoolMaxIdle = 16
	// DefaultPoolIdleTimeout is how long a Pool keeps an idle connection
	// (PoolConfig.IdleTimeout): less than the server's
	// DefaultHandshakeTimeout, so that the pool closes it first.
	DefaultPoolIdleTimeout = 5 * time.Second
)

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}
