package transfer

import (
	"bytes"
	"context"
	"errors"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferrydev/ferry/fsroot"
)

// TestPassSumLeftOutOfCopyCPU: a receiver that hashes as the bytes pass
// (SHA-256 of 64 MiB into /dev/null) reports the hash's CPU time once, in
// the checksum's, not also in the copy loop's figures. The test measures
// the thread CPU time of the whole receive itself (the goroutine locked
// to its thread, as the loop's meter locks it): the loop's user + system
// may come to that less the hash, give or take a scheduler tick, and
// with the hash counted twice it comes to about all of it. The bound,
// half the hash's tens of milliseconds, holds under load and -race, where
// the copy's own cost grows as large as the hash's.
func TestPassSumLeftOutOfCopyCPU(t *testing.T) {
	ts := startServer(t, Config{})
	path, data := writeFile(t, t.TempDir(), 64<<20)
	want := Checksum{Algorithm: SHA256, Value: wantSum(SHA256, data)}
	pool := NewPool(PoolConfig{})
	defer pool.Close()
	receivers := map[string]func(context.Context, Ticket, *fsroot.Destination, ReceiveConfig) (Stats, error){
		"Receive": Receive, "Pool.Receive": pool.Receive,
	}
	for name, receive := range receivers {
		t.Run(name, func(t *testing.T) {
			tr := ts.offer(t, path, Source{Strategy: ReadWrite})
			null, err := fsroot.CreateDestination(os.DevNull)
			if err != nil {
				t.Fatal(err)
			}
			if err := ExpectChecksum(null, SHA256); err != nil {
				t.Fatal(err)
			}
			var st Stats
			whole := measureCPU(func() {
				st, err = receive(context.Background(), ts.ticket(tr), null, ReceiveConfig{})
			})
			if err != nil || !st.ThreadMeasured || whole <= 0 {
				t.Fatalf("%s = ThreadMeasured %v, %v in %v of thread CPU; want true, nil", name, st.ThreadMeasured, err, whole)
			}
			if st.ChecksumCPU <= 0 {
				t.Fatalf("%s: ChecksumCPU = %v, want the pass-through hash's CPU time", name, st.ChecksumCPU)
			}
			if _, err := VerifyChecksum(context.Background(), null, want); err != nil {
				t.Fatalf("VerifyChecksum() = %v, want nil", err)
			}
			if copyCPU, most := st.UserCPU+st.SystemCPU, whole-st.ChecksumCPU/2; copyCPU > most {
				t.Errorf("receiver user + system CPU = %v of a receive that took %v, %v of it hashing; want at most %v (the hash left out)",
					copyCPU, whole, st.ChecksumCPU, most)
			}
		})
	}
}

// TestLeaveOutHash: the hash comes off UserCPU, what UserCPU lacks off
// SystemCPU, neither below 0, and only from measured figures.
func TestLeaveOutHash(t *testing.T) {
	tests := []struct {
		user, sys, hashed, wantUser, wantSys int64
	}{
		{10, 5, 4, 6, 5},
		{10, 5, 12, 0, 3},
		{10, 5, 40, 0, 0},
		{10, 5, 0, 10, 5},
	}
	for _, tt := range tests {
		st := Stats{ThreadMeasured: true, UserCPU: ms(tt.user), SystemCPU: ms(tt.sys)}
		leaveOutHash(&st, ms(tt.hashed))
		if st.UserCPU != ms(tt.wantUser) || st.SystemCPU != ms(tt.wantSys) || st.ChecksumCPU != ms(tt.hashed) {
			t.Errorf("leaveOutHash(user %d ms, system %d ms, hashed %d ms) = %v, %v, checksum %v; want %d ms, %d ms, %d ms",
				tt.user, tt.sys, tt.hashed, st.UserCPU, st.SystemCPU, st.ChecksumCPU, tt.wantUser, tt.wantSys, tt.hashed)
		}
	}
	st := Stats{UserCPU: ms(10)}
	if leaveOutHash(&st, ms(4)); st.UserCPU != ms(10) {
		t.Errorf("leaveOutHash of unmeasured stats changed UserCPU to %v, want it left alone", st.UserCPU)
	}
}

// TestOfferBusyHashesNothing: an offer past MaxTransfers is ErrBusy
// before its range is read: the hash never runs and nothing is cached,
// and the place is still free once the outstanding transfer ends.
func TestOfferBusyHashesNothing(t *testing.T) {
	var rec recorder
	ts := startServer(t, Config{MaxTransfers: 1, Events: rec.events()})
	dir := t.TempDir()
	path, data := writeFile(t, dir, 3*hashChunk)
	hashed := countHashing(t)
	outstanding := ts.offer(t, path, Source{Strategy: ReadWrite})
	for _, src := range []Source{{Checksum: SHA256}, {InlineMax: MaxInline, Length: 10, Checksum: CRC32C}} {
		src.File = openFile(t, path)
		if tr, err := ts.Offer(src); !errors.Is(err, ErrBusy) {
			t.Errorf("Offer(checksum %v, inline max %d) with MaxTransfers 1 and a ticket outstanding = %v; want %v", src.Checksum, src.InlineMax, err, ErrBusy)
			if tr != nil {
				tr.Cancel()
			}
		}
	}
	if n := hashed.Load(); n != 0 {
		t.Errorf("busy offers hashed %d chunks, want 0", n)
	}
	if n := ts.sums.len(); n != 0 {
		t.Errorf("checksum cache holds %d entries after busy offers, want 0", n)
	}
	outstanding.Cancel()
	<-outstanding.Done()
	inline := ts.offer(t, path, Source{InlineMax: MaxInline, Length: 10})
	if !inline.Inline || !bytes.Equal(inline.Data, data[:10]) {
		t.Fatalf("inline offer after the place was freed: Inline %v, %d bytes; want the first 10", inline.Inline, len(inline.Data))
	}
	tr := ts.offer(t, path, Source{Checksum: SHA256}) // the inline one gave its place back
	if !bytes.Equal(tr.Checksum.Value, wantSum(SHA256, data)) || hashed.Load() != 3 {
		t.Errorf("offer with the place free: Checksum %x after %d chunks, want %x after 3", tr.Checksum.Value, hashed.Load(), wantSum(SHA256, data))
	}
	tr.Cancel()
	<-tr.Done()
	issued, _, refused, finished := rec.summary()
	want := []string{
		outstanding.ID + " canceled READ_WRITE 0 false ",
		inline.ID + " ok READ_WRITE 10 false ",
		tr.ID + " canceled " + tr.Strategy.String() + " 0 false ",
	}
	if issued != 2 || !cmp.Equal(refused, []Refusal{RefusedBusy, RefusedBusy}) || !cmp.Equal(finished, want) {
		t.Errorf("Events heard %d issued, refusals %v, finished %q; want 2, two busy, %q", issued, refused, finished, want)
	}
}

// TestOfferAfterShutdown: once Shutdown has begun an offer is ErrClosed
// before anything is read: an inline one too, and a checksum one hashes
// nothing.
func TestOfferAfterShutdown(t *testing.T) {
	ts := startServer(t, Config{})
	path, _ := writeFile(t, t.TempDir(), 2*hashChunk)
	hashed := countHashing(t)
	if err := ts.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown() = %v", err)
	}
	for _, src := range []Source{{InlineMax: MaxInline, Length: 100}, {Checksum: SHA256}} {
		src.File = openFile(t, path)
		if _, err := ts.Offer(src); !errors.Is(err, ErrClosed) {
			t.Errorf("Offer(checksum %v, inline max %d) after Shutdown = %v; want %v", src.Checksum, src.InlineMax, err, ErrClosed)
		}
	}
	if n := hashed.Load(); n != 0 {
		t.Errorf("offers after Shutdown hashed %d chunks, want 0", n)
	}
}

func ms(n int64) time.Duration { return time.Duration(n) * time.Millisecond }

// countHashing counts the chunks hashFile hashes until the test ends.
func countHashing(t *testing.T) *atomic.Int64 {
	var n atomic.Int64
	testHookHashed = func(int64) { n.Add(1) }
	t.Cleanup(func() { testHookHashed = nil })
	return &n
}
