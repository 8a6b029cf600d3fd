package transfer

// Model is the textbook cost of one round of a copy path (the table in
// docs/strategies.md). It is a model, never a measurement.
type Model struct {
	CPUCopies    int
	DMACopies    int
	ModeSwitches int
	Gather       bool // SENDFILE only: the NIC gathers from the page cache
	Description  string
}

// senderModel is the per-round model of a sending strategy. gather says
// whether the outgoing interface does scatter-gather, which matters to
// SENDFILE only.
func senderModel(s Strategy, gather bool) Model {
	switch s {
	case ReadWrite:
		return Model{CPUCopies: 2, DMACopies: 2, ModeSwitches: 4, Description: "pread copies page cache to a user buffer, write copies it to the socket buffer"}
	case Mmap:
		// A round is one window: mmap, fstat (has the file shrunk?),
		// write, munmap. The classic model's 2 switches per round hold
		// only for a mapping reused across writes.
		return Model{CPUCopies: 1, DMACopies: 2, ModeSwitches: 8, Description: "mmap a window, check the size, write copies from the mapped page cache to the socket buffer, munmap"}
	case Sendfile:
		if gather {
			return Model{CPUCopies: 0, DMACopies: 2, ModeSwitches: 2, Gather: true, Description: "sendfile hands page-cache pages to a NIC that gathers them: no CPU copy"}
		}
		return Model{CPUCopies: 1, DMACopies: 2, ModeSwitches: 2, Description: "sendfile copies page cache to the socket buffer inside the kernel"}
	case Splice:
		return Model{CPUCopies: 0, DMACopies: 2, ModeSwitches: 4, Description: "splice moves page references file to pipe, then pipe to socket: no CPU copy"}
	}
	return Model{}
}

// inlineReceiverModel is the receiver's model when the bytes came inside
// the offer (Offer.inline): no socket read of its own, one write.
func inlineReceiverModel(discard bool) Model {
	if discard {
		return Model{CPUCopies: 0, DMACopies: 0, ModeSwitches: 0, Description: "the bytes came inside the offer and are discarded: no system call"}
	}
	return Model{CPUCopies: 1, DMACopies: 1, ModeSwitches: 2, Description: "the bytes came inside the offer; write copies them to the page cache"}
}

// receiverModel is the per-round model of the receiver. Reading: read
// copies the socket buffer to a user buffer, then write copies it to the
// page cache (or the bytes are discarded). Splicing: splice moves the
// socket buffer's pages into a pipe by reference, then a second splice
// drains the pipe into the page cache (a copy, made by the kernel) or
// into /dev/null (no copy at all).
func receiverModel(discard, splice bool) Model {
	switch {
	case splice && discard:
		return Model{CPUCopies: 0, DMACopies: 1, ModeSwitches: 4, Description: "splice moves the socket buffer's pages into a pipe, a second splice drains them into /dev/null: no CPU copy"}
	case splice:
		return Model{CPUCopies: 1, DMACopies: 2, ModeSwitches: 4, Description: "splice moves the socket buffer's pages into a pipe, a second splice copies them into the page cache"}
	case discard:
		return Model{CPUCopies: 1, DMACopies: 1, ModeSwitches: 2, Description: "read copies the socket buffer to a user buffer; the bytes are discarded"}
	}
	return Model{CPUCopies: 2, DMACopies: 2, ModeSwitches: 4, Description: "read copies the socket buffer to a user buffer, write copies it to the page cache"}
}

// tlsSenderModel is the per-round model of a strategy run over
// user-space TLS: the encryption is a CPU pass that reads the plaintext
// and writes the record, and write(2) copies the record to the socket
// buffer. Only READ_WRITE and MMAP run over TLS.
func tlsSenderModel(s Strategy) Model {
	if s == Mmap {
		return Model{CPUCopies: 2, DMACopies: 2, ModeSwitches: 8, Description: "mmap a window, check the size, TLS encrypts from the mapped page cache into a record buffer in user space, write copies each record to the socket buffer, munmap"}
	}
	return Model{CPUCopies: 3, DMACopies: 2, ModeSwitches: 4, Description: "pread copies page cache to a user buffer, TLS encrypts it into a record buffer in user space, write copies each record to the socket buffer"}
}

// tlsReceiverModel is the receiver's per-round model over user-space
// TLS: read copies the socket buffer into TLS's record buffer, TLS
// decrypts it in place and copies the plaintext out, and write copies it
// to the page cache (or the bytes are discarded).
func tlsReceiverModel(discard bool) Model {
	if discard {
		return Model{CPUCopies: 3, DMACopies: 1, ModeSwitches: 2, Description: "read copies the socket buffer to a TLS record buffer, TLS decrypts it in place in user space and copies it to a user buffer; the bytes are discarded"}
	}
	return Model{CPUCopies: 4, DMACopies: 2, ModeSwitches: 4, Description: "read copies the socket buffer to a TLS record buffer, TLS decrypts it in place in user space and copies it to a user buffer, write copies it to the page cache"}
}
