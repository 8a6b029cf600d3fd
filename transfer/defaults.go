package transfer

import "time"

// The defaults a zero Config, ReceiveConfig or PoolConfig field stands
// for, in one place (each field's comment states its value); where a
// figure came from a measurement, docs/performance.md says which.
const (
	mib = 1 << 20

	// defaultTicketTTL is how long an offer's ticket waits for its data
	// connection (Config.TicketTTL).
	defaultTicketTTL = 30 * time.Second
	// defaultHandshakeTimeout bounds a data connection's preamble on the
	// server and the dial and verdict on the receiver (Config and
	// ReceiveConfig.HandshakeTimeout), and how long a kept connection
	// waits for its next preamble.
	defaultHandshakeTimeout = 10 * time.Second
	// defaultIdleTimeout is how long a receiver waits for the next byte
	// of a payload (ReceiveConfig.IdleTimeout): far past any pause of an
	// honest sender (a round, a page-cache miss, a paced round), short
	// enough that a silent one is noticed within a minute.
	defaultIdleTimeout = 60 * time.Second
	// defaultMaxHandshakesPerIP caps one source's handshakes
	// (Config.MaxHandshakesPerIP).
	defaultMaxHandshakesPerIP = 32
	// defaultFirstByteTimeout bounds a new connection's silence
	// (Config.FirstByteTimeout).
	defaultFirstByteTimeout = 2 * time.Second
	// defaultMaxTransfers caps the transfers alive at once
	// (Config.MaxTransfers).
	defaultMaxTransfers = 256
	// defaultMaxIdleConns caps the server's kept connections waiting for
	// their next preamble (Config.MaxIdleConns).
	defaultMaxIdleConns = 64
	// defaultSessionConns caps one session's bound data connections
	// (Config.SessionConns).
	defaultSessionConns = 8
	// defaultMaxBoundConns caps the data connections bound to sessions,
	// server-wide (Config.MaxBoundConns).
	defaultMaxBoundConns = 1024
	// defaultBufferSize is the largest READ_WRITE buffer and the
	// receiver's read buffer and splice round (Config and
	// ReceiveConfig.BufferSize).
	defaultBufferSize = mib
	// defaultSendfileChunk caps one sendfile call (Config.SendfileChunk),
	// as Go's own internal/poll does.
	defaultSendfileChunk = 4 * mib
	// defaultMmapWindow is how much of a file MMAP maps at a time
	// (Config.MmapWindow).
	defaultMmapWindow = 4 * mib
	// defaultMmapBudget bounds the bytes all MMAP transfers map at once
	// (Config.MmapBudget).
	defaultMmapBudget = 32 * mib
	// defaultPipeSize is the splice pipe capacity asked for, on both
	// sides (Config.PipeSize); 1 MiB is the most fs.pipe-max-size
	// allows by default.
	defaultPipeSize = mib
	// defaultIdlePipes is how many splice pipes are kept for reuse
	// (Config.IdlePipes), on both sides.
	defaultIdlePipes = 16
	// defaultChecksumCache is how many checksums the server keeps
	// (Config.ChecksumCache).
	defaultChecksumCache = 4096
	// defaultAutoSmallBelow is the length under which the server's
	// choice follows the small-transfer preference
	// (Config.AutoSmallBelow).
	defaultAutoSmallBelow = 8 * mib
	// defaultAutoExploreEvery: every n-th Auto transfer of a class
	// explores (Config.AutoExploreEvery).
	defaultAutoExploreEvery = 20
	// defaultPoolMaxIdle is how many idle connections a Pool keeps per
	// address (PoolConfig.MaxIdle).
	defaultPoolMaxIdle = 16
	// defaultPoolIdleTimeout is how long a Pool keeps an idle connection
	// (PoolConfig.IdleTimeout): less than the server's
	// defaultHandshakeTimeout, so that the pool closes it first.
	defaultPoolIdleTimeout = 5 * time.Second
)

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}
