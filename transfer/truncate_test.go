package transfer

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ferrydev/ferry/fsroot"
)

// TestTruncatedMidway truncates the file while it is being sent: the
// receiver has read its first bytes and the sender is parked on a full
// socket (with MMAP, holding a mapping of pages that are about to go).
// The transfer must fail with ErrSourceChanged, the receiver must get
// fewer bytes than offered, and the server must carry on.
func TestTruncatedMidway(t *testing.T) {
	// The file is far bigger than what loopback buffers can hold, so the
	// sender cannot have sent it all before the truncation.
	const size = 256 << 20
	dir := t.TempDir()
	after, data := writeFile(t, dir, 100<<10+7)
	for _, c := range configs[:2] {
		ts := startServer(t, c.cfg)
		for _, strategy := range Strategies {
			t.Run(c.name+"/"+strategy.String(), func(t *testing.T) {
				path := sparseFile(t, size)
				tr := ts.offer(t, path, Source{Strategy: strategy})
				conn := dialRaw(t, ts.addr, preambleFor(tr.Ticket[:]))
				first := make([]byte, 1+64<<10)
				if _, err := io.ReadFull(conn, first); err != nil || Verdict(first[0]) != VerdictOK {
					t.Fatalf("verdict and first bytes: %v, %v", Verdict(first[0]), err)
				}
				if err := os.Truncate(path, 4096); err != nil {
					t.Fatal(err)
				}
				n, _ := io.Copy(io.Discard, conn)
				got := n + int64(len(first)) - 1
				st, err := tr.Result()
				if !errors.Is(err, ErrSourceChanged) {
					t.Errorf("Result() error = %v, want %v", err, ErrSourceChanged)
				}
				// The sender resets the connection, which may drop bytes
				// the receiver had not read yet.
				if st.Bytes >= size || got > st.Bytes {
					t.Errorf("receiver got %d bytes, sender counted %d; want at most that, and fewer than %d", got, st.Bytes, size)
				}
				checkPoolEmpty(t, ts.Server)

				// The same server goes on sending, byte-exact.
				tr = ts.offer(t, after, Source{Strategy: strategy})
				if _, got := ts.receiveFile(t, tr, dir, ReceiveConfig{}); string(got) != string(data) {
					t.Errorf("next transfer received %d bytes, want %d exact", len(got), len(data))
				}
			})
		}
	}
}

// TestTruncatedBeforeConnect truncates the file between the offer and the
// data connection: the sender reports ErrSourceChanged and the receiver
// ErrShortTransfer.
func TestTruncatedBeforeConnect(t *testing.T) {
	dir := t.TempDir()
	ts := startServer(t, Config{})
	for _, strategy := range Strategies {
		path, _ := writeFile(t, dir, 1<<20)
		tr := ts.offer(t, path, Source{Strategy: strategy})
		if err := os.Truncate(path, 5000); err != nil {
			t.Fatal(err)
		}
		null, _ := fsroot.CreateDestination(os.DevNull)
		rst, rerr := Receive(t.Context(), ts.ticket(tr), null, ReceiveConfig{})
		st, err := tr.Result()
		// The copy paths that read the file stop at its new end. MMAP
		// sends no window the file no longer fills (its last page would
		// read as zeros past the end): never a byte past 5000.
		lo, hi := int64(5000), int64(5000)
		if strategy == Mmap {
			lo = 0
		}
		if !errors.Is(err, ErrSourceChanged) || st.Bytes < lo || st.Bytes > hi {
			t.Errorf("%v: Result() = %d bytes, %v; want %d to %d, %v", strategy, st.Bytes, err, lo, hi, ErrSourceChanged)
		}
		if !errors.Is(rerr, ErrShortTransfer) || rst.Bytes > st.Bytes {
			t.Errorf("%v: Receive() = %d bytes, %v; want at most %d, %v", strategy, rst.Bytes, rerr, st.Bytes, ErrShortTransfer)
		}
	}
	checkPoolEmpty(t, ts.Server)
}

// TestReceiverGone has the receiver leave half-way: the splice pipe that
// still held bytes must not go back to the pool.
func TestReceiverGone(t *testing.T) {
	path := sparseFile(t, 256<<20)
	for _, c := range configs {
		ts := startServer(t, c.cfg)
		for _, strategy := range Strategies {
			tr := ts.offer(t, path, Source{Strategy: strategy})
			conn := dialRaw(t, ts.addr, preambleFor(tr.Ticket[:]))
			if _, err := io.ReadFull(conn, make([]byte, 1+100<<10)); err != nil {
				t.Fatal(err)
			}
			conn.Close()
			st, err := tr.Result()
			if err == nil || st.Bytes >= tr.Length || st.Bytes < 100<<10 {
				t.Errorf("%s/%v: Result() = %d bytes, %v; want between 100 KiB and %d, and an error", c.name, strategy, st.Bytes, err, tr.Length)
			}
			checkPoolEmpty(t, ts.Server)
		}
	}
}

// checkPoolEmpty fails if an idle splice pipe holds bytes (TIOCINQ is
// FIONREAD on Linux): the next
// transfer would send them in place of its own.
func checkPoolEmpty(t *testing.T, s *Server) {
	t.Helper()
	var idle []*pipe
	defer func() {
		for _, p := range idle {
			s.pipes.put(p)
		}
	}()
	for {
		select {
		case p := <-s.pipes.idle:
			idle = append(idle, p)
			if n, err := unix.IoctlGetInt(p.r, unix.TIOCINQ); err != nil || n != 0 {
				t.Errorf("an idle pipe holds %d bytes (%v), want 0", n, err)
			}
			continue
		default:
		}
		return
	}
}

// TestTruncatedTail shrinks the file by a few bytes between the offer and
// the data connection, so that the new end falls in the range's last
// page: a mapping reads zeros there rather than faulting, and the sender
// must still notice.
func TestTruncatedTail(t *testing.T) {
	dir := t.TempDir()
	ts := startServer(t, Config{})
	for _, strategy := range Strategies {
		path, _ := writeFile(t, dir, 10000)
		tr := ts.offer(t, path, Source{Strategy: strategy})
		if err := os.Truncate(path, 9990); err != nil {
			t.Fatal(err)
		}
		null, _ := fsroot.CreateDestination(os.DevNull)
		rst, rerr := Receive(t.Context(), ts.ticket(tr), null, ReceiveConfig{})
		st, err := tr.Result()
		if !errors.Is(err, ErrSourceChanged) {
			t.Errorf("%v: Result() = %d bytes, %v; want %v", strategy, st.Bytes, err, ErrSourceChanged)
		}
		if !errors.Is(rerr, ErrShortTransfer) {
			t.Errorf("%v: Receive() = %d bytes, %v; want %v", strategy, rst.Bytes, rerr, ErrShortTransfer)
		}
	}
}

// TestMmapShrunkIntoWindow truncates the file inside the last window, in
// the page that holds the file's old end. Nothing there faults: the page
// reads as zeros past the new end. MMAP must send the windows the file
// still fills and nothing of that one.
func TestMmapShrunkIntoWindow(t *testing.T) {
	const window, newSize = 8192, 18000
	ts := startServer(t, Config{MmapWindow: window})
	path, data := writeFile(t, t.TempDir(), 20000)
	tr := ts.offer(t, path, Source{Strategy: Mmap})
	if err := os.Truncate(path, newSize); err != nil {
		t.Fatal(err)
	}
	conn := dialRaw(t, ts.addr, preambleFor(tr.Ticket[:]))
	got, _ := io.ReadAll(conn)
	st, err := tr.Result()
	if !errors.Is(err, ErrSourceChanged) {
		t.Errorf("Result() error = %v, want %v", err, ErrSourceChanged)
	}
	if len(got) < 1 || got[0] != byte(VerdictOK) {
		t.Fatalf("no OK verdict: %q", got)
	}
	got = got[1:]
	if len(got) != 2*window || st.Bytes != 2*window || !bytes.Equal(got, data[:2*window]) {
		t.Errorf("sent %d bytes (report %d), want exactly the two full windows, %d bytes, unchanged", len(got), st.Bytes, 2*window)
	}
}
