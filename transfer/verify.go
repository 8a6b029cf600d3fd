package transfer

import (
	"bytes"
	"context"
	"fmt"
	"hash"
	"runtime"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ferrydev/ferry/fsroot"
)

// teeHash hands p to a destination's pass-through hash and returns the
// thread CPU time it took, measured with
// clock_gettime(CLOCK_THREAD_CPUTIME_ID) on a locked thread: a call per
// chunk, cheaper than getrusage, and only when a checksum was asked for.
func teeHash(h hash.Hash, p []byte) time.Duration {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start := threadCPU()
	h.Write(p)
	if start < 0 {
		return 0
	}
	return max(threadCPU()-start, 0)
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
//
// It also adds hashed to st.ChecksumCPU, where the hash is reported.
func leaveOutHash(st *Stats, hashed time.Duration) {
	st.ChecksumCPU += hashed
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
// reads the file back); a discarding or standard-output destination
// keeps nothing to read back, so the receive loop hashes the bytes as it
// passes them on (d.Tee), which checks the data channel but not what
// became of the bytes after (a pipe reader, say). That hash's CPU time
// is in the receive's Stats.ChecksumCPU.
func ExpectChecksum(d *fsroot.Destination, alg ChecksumAlgorithm) error {
	h := alg.New()
	if h == nil {
		return fmt.Errorf("unknown checksum algorithm %v", alg)
	}
	if !d.KeepsFile() {
		d.Tee = h
	}
	return nil
}

// VerifyChecksum computes the checksum of the bytes received into d and
// compares it with want; a difference is ErrChecksumMismatch. For a file
// destination, before Commit, it reads the file back from where it stood
// when opened (Resumed: a resumed receive verifies the bytes received
// this time, which is the range the sender hashed) to its end, or a
// Part's own range (fsroot.Destination.PartRange), and the
// returned Checksum carries the CPU time that took (measured as the
// sender's is); for the others it takes the sum of d.Tee, whose CPU time
// the receive already reported.
func VerifyChecksum(ctx context.Context, d *fsroot.Destination, want Checksum) (Checksum, error) {
	got, err := destChecksum(ctx, d, want.Algorithm)
	if err != nil {
		return got, err
	}
	if !bytes.Equal(got.Value, want.Value) {
		return got, fmt.Errorf("%w: %v of the received bytes is %x, the sender's is %x",
			ErrChecksumMismatch, want.Algorithm, got.Value, want.Value)
	}
	return got, nil
}

func destChecksum(ctx context.Context, d *fsroot.Destination, alg ChecksumAlgorithm) (Checksum, error) {
	if alg.New() == nil {
		return Checksum{}, fmt.Errorf("unknown checksum algorithm %v", alg)
	}
	if d.Tee != nil {
		if d.Tee.Size() != alg.New().Size() {
			return Checksum{}, fmt.Errorf("destination hashed another algorithm than the sender's %v", alg)
		}
		return Checksum{Algorithm: alg, Value: d.Tee.Sum(nil)}, nil
	}
	if !d.KeepsFile() {
		return Checksum{}, fmt.Errorf("%s: nothing to verify (ExpectChecksum was not called)", d.Path)
	}
	if off, length, ok := d.PartRange(); ok {
		return hashFile(ctx, d.File(), off, length, alg)
	}
	fi, err := d.File().Stat()
	if err != nil {
		return Checksum{}, err
	}
	return hashFile(ctx, d.File(), d.Resumed(), fi.Size()-d.Resumed(), alg)
}
