package transfer

import (
	"container/list"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"os"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// ChecksumAlgorithm names an end-to-end checksum of a byte range.
type ChecksumAlgorithm uint8

const (
	// NoChecksum asks for none.
	NoChecksum ChecksumAlgorithm = iota
	// CRC32C is CRC-32 with the Castagnoli polynomial, which hash/crc32
	// computes with the CPU's CRC instructions (SSE4.2, ARMv8): fast, and
	// it catches corruption, not tampering.
	CRC32C
	// SHA256 is slower and collision resistant.
	SHA256
)

var checksumNames = [...]string{NoChecksum: "none", CRC32C: "crc32c", SHA256: "sha256"}

func (a ChecksumAlgorithm) String() string {
	if int(a) < len(checksumNames) {
		return checksumNames[a]
	}
	return fmt.Sprintf("ChecksumAlgorithm(%d)", uint8(a))
}

// ParseChecksum maps a name ("crc32c", "sha256", "none" or "") to an
// algorithm.
func ParseChecksum(name string) (ChecksumAlgorithm, error) {
	if name == "" {
		return NoChecksum, nil
	}
	for a, n := range checksumNames {
		if n == name {
			return ChecksumAlgorithm(a), nil
		}
	}
	return 0, fmt.Errorf("unknown checksum %q (want crc32c, sha256 or none)", name)
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// New returns a fresh hash of the algorithm; nil for NoChecksum or an
// unknown one. A CRC32C sum is 4 bytes big-endian, as Checksum.Value.
func (a ChecksumAlgorithm) New() hash.Hash {
	switch a {
	case CRC32C:
		return crc32.New(castagnoli)
	case SHA256:
		return sha256.New()
	}
	return nil
}

// Checksum is a digest of a byte range and what computing it cost.
type Checksum struct {
	Algorithm ChecksumAlgorithm
	Value     []byte
	// CPU is measured: user + system time of the thread that hashed,
	// from clock_gettime(CLOCK_THREAD_CPUTIME_ID) with the goroutine
	// locked to it (see measureCPU). 0 when the value came from the cache.
	CPU time.Duration
	// Cached is true when the value came from the sender's cache.
	Cached bool
}

// hashChunk is how much one pread(2) of a checksum reads.
const hashChunk = mib

// identity is what the cache trusts a file's contents by: the same
// device, inode, size, mtime and ctime (both to the nanosecond) mean the
// same bytes. ctime is there because mtime can be set back with
// utimensat(2) after a write; ctime cannot be set by an unprivileged
// process, and every write and every utimensat(2) moves it.
type identity struct {
	dev, ino     uint64
	size         int64
	mtime, ctime int64 // nanoseconds since the epoch
}

func fileIdentity(f *os.File) (identity, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return identity{}, fmt.Errorf("fstat: %w", err)
	}
	return identity{
		dev: st.Dev, ino: st.Ino, size: st.Size,
		mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano(),
	}, nil
}

// sumKey names one cached checksum: a file's identity, a range, an
// algorithm.
type sumKey struct {
	id             identity
	offset, length int64
	alg            ChecksumAlgorithm
}

// sumCache is a bounded LRU of checksums. The zero value is unusable;
// newSumCache makes one. A capacity below 1 caches nothing.
type sumCache struct {
	mu    sync.Mutex
	max   int
	order *list.List // of *sumEntry, most recently used first
	items map[sumKey]*list.Element
}

type sumEntry struct {
	key   sumKey
	value []byte
}

func newSumCache(max int) *sumCache {
	return &sumCache{max: max, order: list.New(), items: make(map[sumKey]*list.Element)}
}

func (c *sumCache) get(k sumKey) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[k]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*sumEntry).value, true
}

func (c *sumCache) put(k sumKey, v []byte) {
	if c.max < 1 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[k]; ok {
		c.order.MoveToFront(e)
		e.Value.(*sumEntry).value = v
		return
	}
	c.items[k] = c.order.PushFront(&sumEntry{k, v})
	for c.order.Len() > c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.items, last.Value.(*sumEntry).key)
	}
}

// len reports how many checksums are cached.
func (c *sumCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}

// Checksum computes alg over length bytes of f from offset, or takes it
// from the server's cache when f's identity (device, inode, size, mtime,
// ctime) and the range match an earlier one. A file whose identity
// changes while it is hashed, or that ends before the range does, is
// ErrSourceChanged; an unknown algorithm is an error. Cancelling ctx
// stops the hashing between reads.
func (s *Server) Checksum(ctx context.Context, f *os.File, offset, length int64, alg ChecksumAlgorithm) (Checksum, error) {
	return s.sums.sum(ctx, f, offset, length, alg)
}

func (c *sumCache) sum(ctx context.Context, f *os.File, offset, length int64, alg ChecksumAlgorithm) (Checksum, error) {
	if alg.New() == nil {
		return Checksum{}, fmt.Errorf("unknown checksum algorithm %v", alg)
	}
	before, err := fileIdentity(f)
	if err != nil {
		return Checksum{}, err
	}
	key := sumKey{before, offset, length, alg}
	if v, ok := c.get(key); ok {
		return Checksum{Algorithm: alg, Value: v, Cached: true}, nil
	}
	sum, err := hashFile(ctx, f, offset, length, alg)
	if err != nil {
		return Checksum{}, err
	}
	after, err := fileIdentity(f)
	if err != nil {
		return Checksum{}, err
	}
	if after != before {
		return Checksum{}, fmt.Errorf("%w: it was modified while its checksum was computed", ErrSourceChanged)
	}
	c.put(key, sum.Value)
	return sum, nil
}

// errShortFile: a range that runs past the end of the file.
var errShortFile = errors.New("file ends before the range does")

// testHookHashed, when a test sets it, runs after each chunk hashFile
// hashes, with the bytes hashed so far.
var testHookHashed func(done int64)

// hashFile hashes length bytes of f from offset with pread(2), in
// hashChunk reads, on a locked thread whose CPU time it measures.
func hashFile(ctx context.Context, f *os.File, offset, length int64, alg ChecksumAlgorithm) (Checksum, error) {
	h := alg.New()
	bp := getBuffer(hashChunk)
	defer putBuffer(bp)
	buf := *bp
	var err error
	cpu := measureCPU(func() {
		for done := int64(0); done < length && err == nil; {
			if err = ctx.Err(); err != nil {
				break
			}
			var n int
			n, err = preadFull(f, buf[:min(int64(len(buf)), length-done)], offset+done)
			h.Write(buf[:n])
			done += int64(n)
			if testHookHashed != nil {
				testHookHashed(done)
			}
		}
	})
	if errors.Is(err, errShortFile) {
		return Checksum{}, fmt.Errorf("%w: %w", ErrSourceChanged, err)
	}
	if err != nil {
		return Checksum{}, err
	}
	return Checksum{Algorithm: alg, Value: h.Sum(nil), CPU: cpu}, nil
}

// measureCPU runs f on a locked thread and returns the thread CPU time
// (user + system) it took, by clock_gettime(CLOCK_THREAD_CPUTIME_ID).
// That clock is read to the nanosecond; getrusage(RUSAGE_THREAD), which
// the copy loops use for their user/system split, reports a thread's
// runtime as of its last scheduler tick or switch, so a hash shorter than
// a tick (4 ms at HZ=250) could read as 0.
func measureCPU(f func()) time.Duration {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start := threadCPU()
	f()
	if start < 0 {
		return 0
	}
	return max(threadCPU()-start, 0)
}

// preadFull fills p from f at off, retrying EINTR; fewer bytes than asked
// mean the file ended (errShortFile).
func preadFull(f *os.File, p []byte, off int64) (int, error) {
	var c counts
	return countedPread(f, p, off, &c)
}

// preadOnce is one pread(2), retried on EINTR.
func preadOnce(fd int, p []byte, off int64) (int, error) {
	for {
		n, err := unix.Pread(fd, p, off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("pread: %w", err)
		}
		return n, nil
	}
}

// sumOf hashes p in memory, on a locked thread whose CPU time it
// measures (inline offers: the bytes are already read).
func sumOf(p []byte, alg ChecksumAlgorithm) Checksum {
	h := alg.New()
	cpu := measureCPU(func() { h.Write(p) })
	return Checksum{Algorithm: alg, Value: h.Sum(nil), CPU: cpu}
}
