package transfer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"

	"github.com/ferrydev/ferry/fsroot"
)

// wantSum is the checksum of p by the standard library's own functions.
func wantSum(alg ChecksumAlgorithm, p []byte) []byte {
	if alg == CRC32C {
		return binary.BigEndian.AppendUint32(nil, crc32.Checksum(p, crc32.MakeTable(crc32.Castagnoli)))
	}
	s := sha256.Sum256(p)
	return s[:]
}

func openFile(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestChecksumValues checks both algorithms against hash/crc32 and
// crypto/sha256 over ranges that start, end and cross hashChunk
// boundaries.
func TestChecksumValues(t *testing.T) {
	s := NewServer(Config{Logger: quiet, ChecksumCache: -1})
	defer s.Close()
	size := int64(3*hashChunk + 17)
	path, data := writeFile(t, t.TempDir(), size)
	f := openFile(t, path)
	ranges := []struct{ off, n int64 }{
		{0, size}, {0, 0}, {5, 1000}, {hashChunk - 3, hashChunk + 10}, {size - 1, 1}, {2 * hashChunk, hashChunk + 17},
	}
	for _, alg := range []ChecksumAlgorithm{CRC32C, SHA256} {
		for _, r := range ranges {
			got, err := s.Checksum(context.Background(), f, r.off, r.n, alg)
			if err != nil {
				t.Fatalf("Checksum(%d, %d, %v) = %v", r.off, r.n, alg, err)
			}
			if want := wantSum(alg, data[r.off:r.off+r.n]); !bytes.Equal(got.Value, want) || got.Cached || got.Algorithm != alg {
				t.Errorf("Checksum(%d, %d, %v) = %x (cached %v), want %x (not cached)", r.off, r.n, alg, got.Value, got.Cached, want)
			}
		}
	}
	if _, err := s.Checksum(context.Background(), f, 0, size, ChecksumAlgorithm(9)); err == nil {
		t.Error("Checksum(algorithm 9) = nil error, want one")
	}
	if _, err := s.Checksum(context.Background(), f, size-10, 11, CRC32C); !errors.Is(err, ErrSourceChanged) {
		t.Errorf("Checksum(a range past the end) = %v, want %v", err, ErrSourceChanged)
	}
}

// TestChecksumCache: a second call for the same file, range and
// algorithm is a cache hit; another range, another algorithm, or the
// same file after a write (even one that puts mtime back) is a miss.
func TestChecksumCache(t *testing.T) {
	s := NewServer(Config{Logger: quiet})
	defer s.Close()
	path, data := writeFile(t, t.TempDir(), 100<<10)
	sumOf := func(off, n int64, alg ChecksumAlgorithm) Checksum {
		t.Helper()
		got, err := s.Checksum(context.Background(), openFile(t, path), off, n, alg)
		if err != nil {
			t.Fatalf("Checksum(%d, %d, %v) = %v", off, n, alg, err)
		}
		return got
	}
	first := sumOf(0, 100<<10, SHA256)
	second := sumOf(0, 100<<10, SHA256)
	if first.Cached || !second.Cached || !bytes.Equal(first.Value, second.Value) || second.CPU != 0 {
		t.Errorf("two Checksum calls: cached %v then %v (CPU %v), values %x, %x; want false then true (CPU 0), equal",
			first.Cached, second.Cached, second.CPU, first.Value, second.Value)
	}
	if got := sumOf(1, 100<<10-1, SHA256); got.Cached {
		t.Error("Checksum of another range: cached, want a miss")
	}
	if got := sumOf(0, 100<<10, CRC32C); got.Cached {
		t.Error("Checksum with another algorithm: cached, want a miss")
	}

	// Same size, one byte changed, mtime put back: ctime still moves.
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	data[7] ^= 0xff
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	if got := sumOf(0, 100<<10, SHA256); got.Cached || !bytes.Equal(got.Value, wantSum(SHA256, data)) {
		t.Errorf("Checksum after a write with mtime put back = %x (cached %v), want %x, a miss", got.Value, got.Cached, wantSum(SHA256, data))
	}
	// A longer file: a miss, and the right value for the same range.
	g, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	g.Write([]byte("more"))
	g.Close()
	if got := sumOf(0, 100<<10, SHA256); got.Cached || !bytes.Equal(got.Value, wantSum(SHA256, data)) {
		t.Errorf("Checksum after an append = %x (cached %v), want %x, a miss", got.Value, got.Cached, wantSum(SHA256, data))
	}
}

// TestChecksumCacheBound: the cache keeps at most its capacity, dropping
// the least recently used.
func TestChecksumCacheBound(t *testing.T) {
	s := NewServer(Config{Logger: quiet, ChecksumCache: 2})
	defer s.Close()
	path, _ := writeFile(t, t.TempDir(), 1000)
	f := openFile(t, path)
	cached := func(off int64) bool {
		got, err := s.Checksum(context.Background(), f, off, 10, CRC32C)
		if err != nil {
			t.Fatal(err)
		}
		return got.Cached
	}
	cached(0)
	cached(10)
	cached(0)  // 0 is now the most recent
	cached(20) // evicts 10
	if s.sums.len() != 2 || !cached(0) || !cached(20) || cached(10) {
		t.Errorf("cache of 2 after ranges 0, 10, 0, 20: holds %d; want 2 entries, 0 and 20 cached, 10 evicted", s.sums.len())
	}
}

// TestChecksumSourceChanged: a file written or truncated while it is
// hashed fails with ErrSourceChanged and caches nothing. The hook runs
// between the real reads; the identity check is the real one.
func TestChecksumSourceChanged(t *testing.T) {
	changes := map[string]func(path string) error{
		"written": func(path string) error {
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = f.WriteAt([]byte{1}, 3*hashChunk)
			return err
		},
		"truncated": func(path string) error { return os.Truncate(path, 2*hashChunk) },
	}
	for name, change := range changes {
		t.Run(name, func(t *testing.T) {
			s := NewServer(Config{Logger: quiet})
			defer s.Close()
			path, _ := writeFile(t, t.TempDir(), 4*hashChunk)
			testHookHashed = func(done int64) {
				if done == hashChunk {
					if err := change(path); err != nil {
						t.Error(err)
					}
				}
			}
			defer func() { testHookHashed = nil }()
			_, err := s.Checksum(context.Background(), openFile(t, path), 0, 4*hashChunk, SHA256)
			if !errors.Is(err, ErrSourceChanged) {
				t.Errorf("Checksum of a file %s while hashed = %v, want %v", name, err, ErrSourceChanged)
			}
			if n := s.sums.len(); n != 0 {
				t.Errorf("cache holds %d entries after a failed checksum, want 0", n)
			}
		})
	}
}

// TestOfferChecksum: an offer that asks for a checksum carries the
// range's, and the transfer's stats carry its CPU time and cache flag.
func TestOfferChecksum(t *testing.T) {
	ts := startServer(t, Config{})
	dir := t.TempDir()
	path, data := writeFile(t, dir, 2*hashChunk+5)
	for i, cached := range []bool{false, true} {
		tr := ts.offer(t, path, Source{Offset: 3, Length: 2 * hashChunk, Checksum: CRC32C, Strategy: Sendfile})
		if want := wantSum(CRC32C, data[3:3+2*hashChunk]); !bytes.Equal(tr.Checksum.Value, want) || tr.Checksum.Cached != cached {
			t.Errorf("offer %d: Checksum = %x (cached %v), want %x (cached %v)", i, tr.Checksum.Value, tr.Checksum.Cached, want, cached)
		}
		ts.receiveFile(t, tr, dir, ReceiveConfig{})
		st, err := tr.Result()
		if err != nil || st.ChecksumCached != cached || (cached && st.ChecksumCPU != 0) {
			t.Errorf("offer %d: Result() = ChecksumCached %v, ChecksumCPU %v, %v; want %v, 0 if cached, nil", i, st.ChecksumCached, st.ChecksumCPU, err, cached)
		}
	}
}

// TestOfferInline: a short range goes inline when asked (byte-exact, no
// ticket, already finished, one counted pread); one byte more than the
// limit goes by ticket.
func TestOfferInline(t *testing.T) {
	ts := startServer(t, Config{})
	dir := t.TempDir()
	for _, size := range []int64{0, 1, 4 << 10, MaxInline} {
		path, data := writeFile(t, dir, size)
		tr := ts.offer(t, path, Source{InlineMax: 1 << 20, Checksum: SHA256})
		if !tr.Inline || !bytes.Equal(tr.Data, data) || tr.Length != size || tr.Strategy != ReadWrite {
			t.Fatalf("%d B: Inline %v, %v, %d bytes of data (equal %v); want inline READ_WRITE and the file's bytes", size, tr.Inline, tr.Strategy, len(tr.Data), bytes.Equal(tr.Data, data))
		}
		if want := wantSum(SHA256, data); !bytes.Equal(tr.Checksum.Value, want) {
			t.Errorf("%d B: inline Checksum = %x, want %x", size, tr.Checksum.Value, want)
		}
		select {
		case <-tr.Done():
		default:
			t.Fatalf("%d B: inline transfer not finished when Offer returned", size)
		}
		st, err := tr.Result()
		wantPreads := int64(1)
		if size == 0 {
			wantPreads = 0
		}
		if err != nil || !st.Inline || st.Bytes != size || st.Syscalls["pread64"] != wantPreads || st.Strategy != ReadWrite {
			t.Errorf("%d B: Result() = %+v, %v; want inline READ_WRITE, %d bytes, %d pread64", size, st, err, size, wantPreads)
		}
	}
	if n := ts.Pending(); n != 0 {
		t.Errorf("Pending() = %d after inline offers, want 0", n)
	}
	path, data := writeFile(t, dir, MaxInline+1)
	tr := ts.offer(t, path, Source{InlineMax: 1 << 20})
	if tr.Inline {
		t.Fatalf("%d B: Inline, want a ticket (the cap is %d)", MaxInline+1, MaxInline)
	}
	if _, got := ts.receiveFile(t, tr, dir, ReceiveConfig{}); !bytes.Equal(got, data) {
		t.Errorf("%d B by ticket: received bytes differ", MaxInline+1)
	}
	small, _ := writeFile(t, dir, 100)
	if tr := ts.offer(t, small, Source{InlineMax: 99}); tr.Inline {
		t.Error("100 B with InlineMax 99: Inline, want a ticket")
	} else {
		tr.Cancel()
	}
}

// TestVerifyChecksum: a received file verifies against the sender's
// checksum; a byte changed in the partial file before the check is
// ErrChecksumMismatch; a discarding destination verifies the bytes as
// they passed; a resumed one verifies the bytes received this time.
func TestVerifyChecksum(t *testing.T) {
	ts := startServer(t, Config{})
	dir := t.TempDir()
	path, data := writeFile(t, dir, 3*hashChunk/2)
	receive := func(dest string, dst *fsroot.Destination, src Source, corrupt bool) (Checksum, error) {
		t.Helper()
		tr := ts.offer(t, path, src)
		if err := ExpectChecksum(dst, src.Checksum); err != nil {
			t.Fatal(err)
		}
		if _, err := Receive(context.Background(), ts.ticket(tr), dst, ReceiveConfig{}); err != nil {
			t.Fatalf("Receive(%s) = %v", dest, err)
		}
		if corrupt { // flip the first byte received, as a bad disk or a stray writer would
			f, err := os.OpenFile(dest+".partial", os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			_, err = f.WriteAt([]byte{^data[src.Offset]}, 0)
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
		}
		return VerifyChecksum(context.Background(), dst, tr.Checksum)
	}
	for _, alg := range []ChecksumAlgorithm{CRC32C, SHA256} {
		dest := filepath.Join(dir, "good-"+alg.String())
		dst, err := fsroot.CreateDestination(dest)
		if err != nil {
			t.Fatal(err)
		}
		got, err := receive(dest, dst, Source{Checksum: alg}, false)
		if err != nil || !bytes.Equal(got.Value, wantSum(alg, data)) {
			t.Errorf("%v: VerifyChecksum() = %x, %v; want %x, nil", alg, got.Value, err, wantSum(alg, data))
		}
		dst.Abort()

		null, err := fsroot.CreateDestination(os.DevNull)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := receive(os.DevNull, null, Source{Checksum: alg, Offset: 9}, false); err != nil || !bytes.Equal(got.Value, wantSum(alg, data[9:])) {
			t.Errorf("%v into %s: VerifyChecksum() = %x, %v; want %x, nil", alg, os.DevNull, got.Value, err, wantSum(alg, data[9:]))
		}
	}

	bad := filepath.Join(dir, "bad")
	dst, err := fsroot.CreateDestination(bad)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Abort()
	if _, err := receive(bad, dst, Source{Checksum: CRC32C, Length: 1000}, true); !errors.Is(err, ErrChecksumMismatch) {
		t.Errorf("VerifyChecksum() of a corrupted partial file = %v, want %v", err, ErrChecksumMismatch)
	}

	resumed := filepath.Join(dir, "resumed")
	if err := os.WriteFile(resumed+".partial", data[:1000], 0o644); err != nil {
		t.Fatal(err)
	}
	rd, err := fsroot.ResumeDestination(resumed)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Abort()
	if got, err := receive(resumed, rd, Source{Checksum: SHA256, Offset: 1000}, false); err != nil || !bytes.Equal(got.Value, wantSum(SHA256, data[1000:])) {
		t.Errorf("resumed: VerifyChecksum() = %x, %v; want %x (the suffix received), nil", got.Value, err, wantSum(SHA256, data[1000:]))
	}
}

// TestReceiveInline lands inline bytes byte-exact, counting writes, and
// refuses data of the wrong length.
func TestReceiveInline(t *testing.T) {
	dir := t.TempDir()
	data := randomBytes(4 << 10)
	dest := filepath.Join(dir, "inline")
	dst, err := fsroot.CreateDestination(dest)
	if err != nil {
		t.Fatal(err)
	}
	st, err := ReceiveInline(data, int64(len(data)), dst, ReadWrite)
	if err != nil || st.Bytes != int64(len(data)) || !st.Inline || st.Syscalls["write"] != 1 {
		t.Fatalf("ReceiveInline() = %+v, %v; want %d bytes, inline, 1 write", st, err, len(data))
	}
	// The model is the write alone: no socket read happened.
	if st.Model != inlineReceiverModel(false) || int64(st.Model.ModeSwitches) != 2*int64(st.Syscalls["write"]) {
		t.Errorf("ReceiveInline() model = %+v, want inlineReceiverModel(false), 2 switches per counted write", st.Model)
	}
	if err := dst.Commit(); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(dest); err != nil || !bytes.Equal(got, data) {
		t.Errorf("inline file = %d bytes, %v; want the %d sent", len(got), err, len(data))
	}
	null, _ := fsroot.CreateDestination(os.DevNull)
	if _, err := ReceiveInline(data, 5, null, ReadWrite); !errors.Is(err, ErrShortTransfer) {
		t.Errorf("ReceiveInline(4 KiB, length 5) = %v, want %v", err, ErrShortTransfer)
	}
}
