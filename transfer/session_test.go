package transfer

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ferrydev/ferry/fsroot"
	"golang.org/x/sys/unix"
)

// offerOn opens path and offers src's range of it on session ss, framed
// with id.
func offerOn(t testing.TB, ss *Session, path string, src Source, id uint64) *Transfer {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	src.File, src.Path = f, filepath.Base(path)
	tr, err := ss.Offer(src, id)
	if err != nil {
		f.Close()
		t.Fatalf("Session.Offer(%+v) = %v", src, err)
	}
	return tr
}

// readFrame reads the next frame on c into memory and checks its id.
func readFrame(t *testing.T, c io.Reader, wantID uint64) []byte {
	t.Helper()
	var hdr [FrameHeaderSize]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		t.Fatalf("reading a frame header: %v", err)
	}
	h, err := ParseFrameHeader(hdr[:])
	if err != nil || h.ID != wantID {
		t.Fatalf("frame header %+v, %v; want id %d", h, err, wantID)
	}
	body := make([]byte, h.Length+1)
	if _, err := io.ReadFull(c, body); err != nil {
		t.Fatalf("reading frame %d: %v", h.ID, err)
	}
	if body[h.Length] != TrailerOK {
		t.Fatalf("frame %d: trailer %d, want TrailerOK", h.ID, body[h.Length])
	}
	return body[:h.Length]
}

// TestSessionFrames: a bound connection carries the session's transfers
// one frame after another, by every strategy, small frames (one write)
// and large ones alike, each byte-exact and with its sender statistics.
func TestSessionFrames(t *testing.T) {
	ts := startServer(t, Config{})
	dir := t.TempDir()
	small, smallData := writeFile(t, dir, 4096)
	big, bigData := writeFile(t, dir, 3<<20+7)
	ss, c := bound(t, ts)
	id := uint64(0)
	for _, st := range []Strategy{ReadWrite, Mmap, Sendfile, Splice} {
		for _, f := range []struct {
			path string
			data []byte
		}{{small, smallData}, {big, bigData}} {
			id++
			tr := offerOn(t, ss, f.path, Source{Strategy: st}, id)
			if !tr.Framed {
				t.Fatalf("a session's transfer is not Framed")
			}
			if got := readFrame(t, c, id); !bytes.Equal(got, f.data) {
				t.Errorf("%v frame %d: %d bytes, not the %d sent", st, id, len(got), len(f.data))
			}
			stats, err := tr.Result()
			if err != nil || stats.Bytes != int64(len(f.data)) || stats.Strategy != st {
				t.Errorf("%v frame %d: result %v bytes by %v, %v; want %d by %v", st, id, stats.Bytes, stats.Strategy, err, len(f.data), st)
			}
		}
	}
}

// TestSessionQueue: a transfer no bound connection takes expires after
// its TTL; Cancel takes a queued one off the queue; Close ends those
// still queued with ErrSessionClosed; and a closed session's ticket
// binds nothing.
func TestSessionQueue(t *testing.T) {
	ts := startServer(t, Config{})
	path, _ := writeFile(t, t.TempDir(), 1000)
	big, _ := writeFile(t, t.TempDir(), 1<<20)
	ss, _ := bound(t, ts)
	// The one bound connection is busy (1 MiB at 64 KiB/s), so the
	// transfers offered next wait in the queue.
	busy := offerOn(t, ss, big, Source{RateLimit: 64 << 10}, 9)
	defer busy.Cancel()
	waitUntil(t, "the paced transfer to start", func() bool { return busy.Sent() > 0 })
	expiring := offerOn(t, ss, path, Source{TicketTTL: 50 * time.Millisecond}, 1)
	if _, err := expiring.Result(); !errors.Is(err, ErrTicketExpired) {
		t.Errorf("a queued transfer past its TTL: %v, want %v", err, ErrTicketExpired)
	}
	cancelled := offerOn(t, ss, path, Source{}, 2)
	cancelled.Cancel()
	if _, err := cancelled.Result(); !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled queued transfer: %v, want %v", err, context.Canceled)
	}
	left := offerOn(t, ss, path, Source{}, 3)
	ss.Close()
	if _, err := left.Result(); !errors.Is(err, ErrSessionClosed) {
		t.Errorf("a transfer queued when the session closed: %v, want %v", err, ErrSessionClosed)
	}
	busy.Cancel()
	if v, n := verdictOf(t, ts.addr, appendPreambleVersion(nil, ProtocolVersionSession, ss.Ticket())); v != VerdictRefused || n != 0 {
		t.Errorf("binding to a closed session: verdict %v and %d bytes, want %v and 0", v, n, VerdictRefused)
	}
	if got := ts.active.Load(); got != 0 {
		t.Errorf("%d transfers still hold a place", got)
	}
}

// TestSessionWithoutConnection: a session's offer made while no
// connection is bound gets a ticket, as a Download's does, rather than
// waiting in a queue nothing will take it from.
func TestSessionWithoutConnection(t *testing.T) {
	ts := startServer(t, Config{})
	path, want := writeFile(t, t.TempDir(), 5000)
	ss, err := ts.OpenSession(SessionConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer ss.Close()
	tr := offerOn(t, ss, path, Source{}, 1)
	if tr.Framed || ts.Pending() != 1 {
		t.Fatalf("offer on a session with no connection: framed %v, %d tickets pending; want a ticket", tr.Framed, ts.Pending())
	}
	if _, got := ts.receiveFile(t, tr, t.TempDir(), ReceiveConfig{}); !bytes.Equal(got, want) {
		t.Error("the ticket's bytes differ")
	}
}

// TestSessionFrameIntoDestination: ReceiveFrame lands a frame in a file,
// spliced (a large frame) or read (a small one), with the receiver's
// statistics, and the connection carries the next frame after it.
func TestSessionFrameIntoDestination(t *testing.T) {
	ts := startServer(t, Config{})
	dir := t.TempDir()
	small, smallData := writeFile(t, dir, 5000)
	big, bigData := writeFile(t, dir, 2<<20+3)
	ss, c := bound(t, ts)
	for i, f := range []struct {
		path string
		data []byte
	}{{big, bigData}, {small, smallData}} {
		id := uint64(10 + i)
		offerOn(t, ss, f.path, Source{Strategy: Splice}, id)
		h, err := ReadFrameHeader(c)
		if err != nil || h.ID != id || h.Length != int64(len(f.data)) {
			t.Fatalf("frame header %+v, %v; want id %d and %d bytes", h, err, id, len(f.data))
		}
		dest := filepath.Join(dir, "dst")
		dst, err := fsroot.CreateDestination(dest)
		if err != nil {
			t.Fatal(err)
		}
		st, _, err := ReceiveFrame(context.Background(), c, h, Splice, dst, ReceiveConfig{})
		if err != nil || st.Bytes != h.Length {
			t.Fatalf("ReceiveFrame() = %d bytes, %v", st.Bytes, err)
		}
		if err := dst.Commit(); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(dest); !bytes.Equal(got, f.data) {
			t.Errorf("frame %d landed %d bytes, not the %d sent", id, len(got), len(f.data))
		}
	}
}

// bound opens a session on ts and binds one connection to it; cleanup
// closes both.
func bound(t *testing.T, ts *testServer) (*Session, net.Conn) {
	t.Helper()
	ss, err := ts.OpenSession(SessionConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ss.Close)
	c, err := BindSession(context.Background(), ts.addr, ss.Ticket(), nil, ReceiveConfig{})
	if err != nil {
		t.Fatalf("BindSession() = %v", err)
	}
	t.Cleanup(func() { c.Close() })
	waitUntil(t, "the connection to be bound", func() bool { return ss.Bound() == 1 })
	return ss, c
}

// waitUntil polls ok for up to 10 s.
func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestSessionFrameTrailerWithPayload: a small frame's trailer is read
// with the payload's last bytes when it came with them (one read(2) for
// both), and alone when it came later; a failed or unknown trailer still
// fails the receive.
func TestSessionFrameTrailerWithPayload(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	send, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer send.Close()
	recv, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer recv.Close()
	payload := randomBytes(4096)
	cases := []struct {
		name    string
		trailer byte
		apart   bool  // the trailer written after the receiver has the payload
		reads   int64 // read(2) calls counted; apart: at least
		wantErr bool
	}{
		{"trailer with the payload", TrailerOK, false, 1, false},
		{"trailer later", TrailerOK, true, 2, false},
		{"failed trailer with the payload", TrailerFailed, false, 1, true},
		{"unknown trailer with the payload", 7, false, 1, true},
	}
	for i, tc := range cases {
		id := uint64(i + 1)
		frame := append(appendFrameHeader(nil, id, int64(len(payload))), payload...)
		if !tc.apart {
			frame = append(frame, tc.trailer)
		}
		if _, err := send.Write(frame); err != nil {
			t.Fatal(err)
		}
		h, err := ReadFrameHeader(recv)
		if err != nil || h.ID != id {
			t.Fatalf("%s: header %+v, %v", tc.name, h, err)
		}
		if tc.apart {
			waitUntil(t, "the payload to arrive", func() bool { return inQueue(t, recv) == len(payload) })
			go func() { // the trailer once the receiver has read the payload: apart for sure
				for queued(recv) != 0 {
					time.Sleep(time.Millisecond)
				}
				send.Write([]byte{tc.trailer})
			}()
		}
		dest := filepath.Join(t.TempDir(), "dst")
		dst, err := fsroot.CreateDestination(dest)
		if err != nil {
			t.Fatal(err)
		}
		st, _, err := ReceiveFrame(context.Background(), recv, h, ReadWrite, dst, ReceiveConfig{})
		if tc.wantErr {
			if !errors.Is(err, ErrShortTransfer) {
				t.Errorf("%s: ReceiveFrame() = %v, want ErrShortTransfer", tc.name, err)
			}
			dst.Abort()
			continue
		}
		if err != nil || st.Bytes != int64(len(payload)) {
			t.Fatalf("%s: ReceiveFrame() = %d bytes, %v", tc.name, st.Bytes, err)
		}
		if got := st.Syscalls["read"]; got != tc.reads && !(tc.apart && got > tc.reads) { // apart: an EAGAIN read may come between
			t.Errorf("%s: %d reads counted, want %d", tc.name, got, tc.reads)
		}
		if err := dst.Commit(); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(dest); !bytes.Equal(got, payload) {
			t.Errorf("%s: landed %d bytes, not the %d sent", tc.name, len(got), len(payload))
		}
	}
}

// queued is how many bytes c's socket holds unread (SIOCINQ), -1 on
// error; unlike inQueue it may be called off the test's goroutine.
func queued(c net.Conn) int {
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		return -1
	}
	n := -1
	rc.Control(func(fd uintptr) {
		if v, err := unix.IoctlGetInt(int(fd), unix.SIOCINQ); err == nil {
			n = v
		}
	})
	return n
}
