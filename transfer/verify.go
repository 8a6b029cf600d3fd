package transfer

import (
	"bytes"
	"context"
	"fmt"
	"hash"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// passSum hashes bytes as the receive loop passes them on, for a
// destination that keeps nothing to read back.
type passSum struct {
	alg ChecksumAlgorithm
	h   hash.Hash
	cpu time.Duration // measured: thread CPU time spent in h.Write
}

// add hashes p and returns the thread CPU time it took, measured with
// clock_gettime(CLOCK_THREAD_CPUTIME_ID) on a locked thread: a call per
// chunk, cheaper than getrusage, and only when a checksum was asked for.
func (s *passSum) add(p []byte) time.Duration {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start := threadCPU()
	s.h.Write(p)
	if start < 0 {
		return 0
	}
	d := max(threadCPU()-start, 0)
	s.cpu += d
	return d
}

// leaveOutHash takes hashed, the CPU time a pass-through hash spent
// inside a measured receive loop (add's), out of st's thread figures, so
// that they are the copy's alone and the hash counts once, in
// ChecksumCPU. Subtracting costs nothing per chunk, where pausing the
// meter around each hash would cost two getrusage calls. The hash is
// user-mode work, so it comes off UserCPU; getrusage splits a thread's
// runtime between user and system by tick samples, so any part UserCPU
// lacks comes off SystemCPU, and the sum loses exactly the measured hash.
// Neither goes below 0 (getrusage may trail the clock by up to a tick).
func leaveOutHash(st *Stats, hashed time.Duration) {
	if !st.ThreadMeasured || hashed <= 0 {
		return
	}
	user := min(hashed, st.UserCPU)
	st.UserCPU -= user
	st.SystemCPU = max(st.SystemCPU-(hashed-user), 0)
}

// threadCPU is the calling thread's CPU time; -1 if the clock fails.
func threadCPU() time.Duration {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts) != nil {
		return -1
	}
	return time.Duration(ts.Nano())
}

// ExpectChecksum prepares d for VerifyChecksum with alg. Call it before
// the bytes arrive. A file destination needs nothing (VerifyChecksum
// reads the partial file back); a discarding or standard-output
// destination keeps nothing to read back, so it hashes the bytes as the
// receive loop passes them on, which checks the data channel but not
// what became of the bytes after (a pipe reader, say).
func (d *Destination) ExpectChecksum(alg ChecksumAlgorithm) error {
	h := alg.New()
	if h == nil {
		return fmt.Errorf("unknown checksum algorithm %v", alg)
	}
	if d.partial == "" {
		d.sum = &passSum{alg: alg, h: h}
	}
	return nil
}

// VerifyChecksum computes the checksum of the bytes received into d and
// compares it with want; a difference is ErrChecksumMismatch. For a file
// destination, before Commit, it reads the partial file back from where
// it stood when opened (Resumed: a resumed receive verifies the bytes
// received this time, which is the range the sender hashed) to its end;
// for the others it takes the sum ExpectChecksum kept. The returned
// Checksum is what d holds, with the CPU time it cost (measured as the
// sender's is).
func (d *Destination) VerifyChecksum(ctx context.Context, want Checksum) (Checksum, error) {
	got, err := d.checksum(ctx, want.Algorithm)
	if err != nil {
		return got, err
	}
	if !bytes.Equal(got.Value, want.Value) {
		return got, fmt.Errorf("%w: %v of the received bytes is %x, the sender's is %x",
			ErrChecksumMismatch, want.Algorithm, got.Value, want.Value)
	}
	return got, nil
}

func (d *Destination) checksum(ctx context.Context, alg ChecksumAlgorithm) (Checksum, error) {
	if d.sum != nil {
		if d.sum.alg != alg {
			return Checksum{}, fmt.Errorf("destination hashed %v, the sender %v", d.sum.alg, alg)
		}
		return Checksum{Algorithm: alg, Value: d.sum.h.Sum(nil), CPU: d.sum.cpu}, nil
	}
	if d.partial == "" || d.f == nil {
		return Checksum{}, fmt.Errorf("%s: nothing to verify (ExpectChecksum was not called)", d.Path)
	}
	fi, err := d.f.Stat()
	if err != nil {
		return Checksum{}, err
	}
	if alg.New() == nil {
		return Checksum{}, fmt.Errorf("unknown checksum algorithm %v", alg)
	}
	return hashFile(ctx, d.f, d.resumed, fi.Size()-d.resumed, alg)
}
