// Package transfer is Ferry's data plane: the TCP data channel, its
// one-time tickets, the four copy strategies that move a file to a socket,
// the receive loops that land the bytes, and the statistics of both.
//
// A Server owns a data listener. The control plane asks it for an Offer on
// an open file; the Offer carries a ticket that a client presents on the
// data channel (see preamble.go for the wire format), after which the
// Server sends exactly the offered bytes with the offered Strategy and
// closes the connection, or, for a keep-alive preamble (version 2), ends
// them with a trailer byte and waits for the next ticket on the same
// connection (keepalive.go); a Pool keeps such connections on the
// receiving side. Every strategy has the same contract:
// (written int64, handled bool, err error), driven through syscall.RawConn
// so that EAGAIN parks the goroutine in the netpoller.
//
// An Offer may also carry the range's end-to-end checksum (CRC32C or
// SHA256, cached by file identity: checksum.go), which the receiver
// verifies before it commits the file (VerifyChecksum), and a range of at
// most MaxInline bytes may travel inside the offer with no data
// connection (inline.go).
//
// What it does not do: it knows nothing of gRPC, protobuf or the api
// package (a test keeps it so); it never parses paths on the data channel;
// it does not decide policy such as which client may read which file; and
// it leaves the file system to package fsroot, whose Destination it
// writes into. It is Linux-only: the strategies are Linux system calls.
package transfer
