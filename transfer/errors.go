package transfer

import "errors"

// Sentinel errors. Functions in this package wrap them with %w; callers
// test them with errors.Is. The path errors are package fsroot's.
var (
	// ErrOutOfRange: an offset past the end of the file.
	ErrOutOfRange = errors.New("offset past the end of the file")
	// ErrUnsupported: a strategy this host does not support.
	ErrUnsupported = errors.New("strategy not supported on this host")
	// ErrTicketExpired: nobody presented the ticket in time.
	ErrTicketExpired = errors.New("ticket expired before the data connection was made")
	// ErrRefused: the data channel refused the ticket (wrong, used or
	// expired) or the preamble.
	ErrRefused = errors.New("data channel refused the ticket")
	// ErrSourceChanged: the file shrank or was truncated while it was
	// being sent.
	ErrSourceChanged = errors.New("source file changed during the transfer")
	// ErrShortTransfer: the data channel closed before all offered bytes
	// arrived, or carried more than offered.
	ErrShortTransfer = errors.New("data channel did not carry exactly the offered bytes")
	// ErrIdle: the data channel brought no byte for the receiver's
	// ReceiveConfig.IdleTimeout (package client also wraps it when the
	// control plane stays silent that long).
	ErrIdle = errors.New("the sender went silent")
	// ErrBusy: the server already holds Config.MaxTransfers transfers.
	ErrBusy = errors.New("server busy: too many concurrent transfers")
	// ErrClosed: the data-plane server is shut down.
	ErrClosed = errors.New("data-plane server closed")
	// ErrChecksumMismatch: the received bytes' checksum differs from the
	// sender's; the receiver keeps no file.
	ErrChecksumMismatch = errors.New("checksum mismatch: the received bytes differ from the sent")
)
