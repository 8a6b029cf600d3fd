package transfer

import (
	"context"
	"fmt"
	"time"

	"github.com/ferrydev/ferry/fsroot"
)

// MaxInline is the most bytes an offer carries inline (Source.InlineMax):
// 64 KiB, well under gRPC's 4 MiB message limit, and past the size where
// a data connection's extra round trip is what a transfer mostly costs.
const MaxInline = 64 << 10

// inlineModel is the model of an inline offer's sender: one pread into
// the offer's buffer. What gRPC then does with the message (marshal,
// HTTP/2 framing, the write to the control connection) is outside the
// data plane and neither modelled nor counted.
var inlineModel = Model{CPUCopies: 1, DMACopies: 2, ModeSwitches: 2, Description: "pread copies page cache into the offer; gRPC writes it on the control connection (not counted)"}

// prepare does, before a ticket is issued and after t took its place
// (admit), what src asks for besides the bytes: the range's checksum
// and, for a range short enough to go inline, the bytes themselves. It
// reports whether t went inline, in which case t has already finished
// (with READ_WRITE as its strategy: the bytes were read into memory and
// written by gRPC) and given its place back.
func (s *Server) prepare(t *Transfer, src Source) (bool, error) {
	ctx := src.Context
	if ctx == nil {
		ctx = context.Background()
	}
	// The hash also stops when the server closes (t.ctx comes from it).
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(t.ctx, cancel)()
	// A paced transfer (Transfer.RateLimit) never goes inline: only the
	// data channel is paced.
	if src.InlineMax > 0 && t.Length <= min(src.InlineMax, MaxInline) && t.RateLimit == 0 {
		st, err := s.readInline(t, src.Checksum)
		if err != nil {
			return false, err
		}
		t.finish(st, nil) // gives back the place Offer took
		return true, nil
	}
	if src.Checksum == NoChecksum {
		return false, nil
	}
	sum, err := s.sums.sum(ctx, t.file, t.Offset, t.Length, src.Checksum)
	t.Checksum = sum
	return false, err
}

// readInline reads t's range into t.Data with counted pread(2) calls and
// hashes it there if alg asks.
func (s *Server) readInline(t *Transfer, alg ChecksumAlgorithm) (Stats, error) {
	if alg != NoChecksum && alg.New() == nil {
		return Stats{}, fmt.Errorf("unknown checksum algorithm %v", alg)
	}
	st := Stats{Strategy: ReadWrite, Model: inlineModel, Inline: true}
	var c counts
	data := make([]byte, t.Length)
	m := startMeter(t.Length >= s.cfg.ThreadMeasureMin)
	n, err := countedPread(t.file, data, t.Offset, &c)
	st.Bytes = int64(n)
	if n > 0 {
		st.Rounds = 1
	}
	m.stop(&st, &c)
	if err == errShortFile {
		return st, fmt.Errorf("%w: it ended before the range did", ErrSourceChanged)
	}
	if err != nil {
		return st, err
	}
	t.Inline, t.Data, t.Strategy = true, data, ReadWrite
	t.sent.Store(st.Bytes)
	if alg != NoChecksum {
		t.Checksum = sumOf(data, alg)
	}
	return st, nil
}

// countedPread is preadFull counting each pread(2) in c.
func countedPread(f interface{ Fd() uintptr }, p []byte, off int64, c *counts) (int, error) {
	got := 0
	for got < len(p) {
		n, err := preadOnce(int(f.Fd()), p[got:], off+int64(got))
		c[sysPread]++
		if err != nil || n == 0 {
			if err == nil {
				err = errShortFile
			}
			return got, err
		}
		got += n
	}
	return got, nil
}

// ReceiveInline lands an inline offer's bytes in dst, as Receive lands
// a data channel's: counted write(2) calls, measured, and hashed as they
// pass when dst keeps no file (ExpectChecksum). length is the offer's;
// data of another length is ErrShortTransfer.
func ReceiveInline(data []byte, length int64, dst *fsroot.Destination, strategy Strategy) (Stats, error) {
	st := Stats{Strategy: strategy, Model: inlineReceiverModel(dst.Discards()), Inline: true}
	if int64(len(data)) != length {
		return st, fmt.Errorf("%w: the offer carries %d bytes, its length is %d", ErrShortTransfer, len(data), length)
	}
	r := recvJob{dst: dst, wfd: -1, out: -1} // writes only: no socket, no writeback
	r.inPart()
	start := time.Now()
	err := r.write(data)
	st.Duration = time.Since(start)
	st.Syscalls = r.n.toMap()
	leaveOutHash(&st, r.hashed)
	if err != nil {
		return st, err
	}
	st.Bytes = length
	if length > 0 {
		st.Rounds = 1
	}
	return st, nil
}
