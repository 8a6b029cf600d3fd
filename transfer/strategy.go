package transfer

import (
	"fmt"
	"strings"
)

// Strategy is a way to move bytes from a file to a socket.
type Strategy int

// The strategies. The zero value means "no preference".
const (
	Auto      Strategy = iota // the server's choice
	ReadWrite                 // pread into a buffer, write to the socket
	Mmap                      // mmap a window, write from it
	Sendfile                  // sendfile file to socket
	Splice                    // splice file to pipe to socket
)

var strategyNames = [...]string{"AUTO", "READ_WRITE", "MMAP", "SENDFILE", "SPLICE"}

// Strategies lists every concrete strategy, in the order of the API enum.
var Strategies = []Strategy{ReadWrite, Mmap, Sendfile, Splice}

func (s Strategy) String() string {
	if s < 0 || int(s) >= len(strategyNames) {
		return fmt.Sprintf("Strategy(%d)", int(s))
	}
	return strategyNames[s]
}

// ParseStrategy reads a strategy name, case-insensitively, with or without
// dashes: "splice", "read-write", "READ_WRITE", "auto".
func ParseStrategy(name string) (Strategy, error) {
	n := strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
	for i, s := range strategyNames {
		if n == s {
			return Strategy(i), nil
		}
	}
	return 0, fmt.Errorf("unknown strategy %q (want auto, read-write, mmap, sendfile or splice)", name)
}

// Model is the textbook cost of one round of a copy path (the table in
// docs/strategies.md). It is a model, never a measurement.
type Model struct {
	CPUCopies    int
	DMACopies    int
	ModeSwitches int
	Gather       bool // SENDFILE only: the NIC gathers from the page cache
	Description  string
}

// SenderModel is the per-round model of a sending strategy. gather says
// whether the outgoing interface does scatter-gather, which matters to
// SENDFILE only.
func SenderModel(s Strategy, gather bool) Model {
	switch s {
	case ReadWrite:
		return Model{2, 2, 4, false, "pread copies page cache to a user buffer, write copies it to the socket buffer"}
	case Mmap:
		// A round is one window: mmap, fstat (has the file shrunk?),
		// write, munmap. The classic model's 2 switches per round hold
		// only for a mapping reused across writes.
		return Model{1, 2, 8, false, "mmap a window, check the size, write copies from the mapped page cache to the socket buffer, munmap"}
	case Sendfile:
		if gather {
			return Model{0, 2, 2, true, "sendfile hands page-cache pages to a NIC that gathers them: no CPU copy"}
		}
		return Model{1, 2, 2, false, "sendfile copies page cache to the socket buffer inside the kernel"}
	case Splice:
		return Model{0, 2, 4, false, "splice moves page references file to pipe, then pipe to socket: no CPU copy"}
	}
	return Model{}
}

// InlineReceiverModel is the receiver's model when the bytes came inside
// the offer (Offer.inline): no socket read of its own, one write.
func InlineReceiverModel(discard bool) Model {
	if discard {
		return Model{0, 0, 0, false, "the bytes came inside the offer and are discarded: no system call"}
	}
	return Model{1, 1, 2, false, "the bytes came inside the offer; write copies them to the page cache"}
}

// ReceiverModel is the per-round model of the receiver. Reading: read
// copies the socket buffer to a user buffer, then write copies it to the
// page cache (or the bytes are discarded). Splicing: splice moves the
// socket buffer's pages into a pipe by reference, then a second splice
// drains the pipe into the page cache (a copy, made by the kernel) or
// into /dev/null (no copy at all).
func ReceiverModel(discard, splice bool) Model {
	switch {
	case splice && discard:
		return Model{0, 1, 4, false, "splice moves the socket buffer's pages into a pipe, a second splice drains them into /dev/null: no CPU copy"}
	case splice:
		return Model{1, 2, 4, false, "splice moves the socket buffer's pages into a pipe, a second splice copies them into the page cache"}
	case discard:
		return Model{1, 1, 2, false, "read copies the socket buffer to a user buffer; the bytes are discarded"}
	}
	return Model{2, 2, 4, false, "read copies the socket buffer to a user buffer, write copies it to the page cache"}
}
