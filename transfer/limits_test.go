package transfer

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrydev/ferry/fsroot"
)

// TestMaxTransfers checks that offered and running transfers both count
// against MaxTransfers, that Offer past it is ErrBusy and leaves the file
// to the caller, and that every way a transfer ends gives its place back.
func TestMaxTransfers(t *testing.T) {
	dir := t.TempDir()
	path, _ := writeFile(t, dir, 1000)
	big := sparseFile(t, 64<<20)
	ts := startServer(t, Config{MaxTransfers: 2})
	busy := func(what string) {
		t.Helper()
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if tr, err := ts.Offer(Source{File: f}); !errors.Is(err, ErrBusy) {
			if tr != nil {
				tr.Cancel()
			}
			t.Fatalf("%s: Offer() error = %v, want %v", what, err, ErrBusy)
		}
		if _, err := f.Stat(); err != nil {
			t.Fatalf("%s: the refused offer closed the caller's file: %v", what, err)
		}
	}

	running := ts.offer(t, big, Source{})
	pending := ts.offer(t, path, Source{})
	busy("two pending")
	c := dialRaw(t, ts.addr, preambleFor(running.Ticket[:]))
	var v [1]byte
	if _, err := io.ReadFull(c, v[:]); err != nil || Verdict(v[0]) != VerdictOK {
		t.Fatalf("verdict %v, %v; want %v", Verdict(v[0]), err, VerdictOK)
	}
	busy("one pending, one running")

	pending.Cancel()
	third := ts.offer(t, path, Source{}) // the cancelled one's place
	busy("after a cancel and a new offer")
	ts.receiveFile(t, third, dir, ReceiveConfig{})
	<-third.Done()
	fourth := ts.offer(t, path, Source{}) // the finished one's place
	c.Close()                             // the running one fails
	<-running.Done()
	ts.offer(t, path, Source{}).Cancel() // its place
	fourth.Cancel()

	t.Run("expired", func(t *testing.T) {
		ts := startServer(t, Config{MaxTransfers: 1, TicketTTL: 20 * time.Millisecond})
		tr := ts.offer(t, path, Source{})
		<-tr.Done()
		ts.offer(t, path, Source{}).Cancel()
	})
}

// TestMaxHandshakes fills the handshake places with a silent connection
// and a slow one, and checks that the next connection is answered
// VerdictUnavailable at once, that a receiver told so keeps asking
// while its ticket waits, and that a place comes back when a connection
// in its handshake ends.
func TestMaxHandshakes(t *testing.T) {
	dir := t.TempDir()
	path, data := writeFile(t, dir, 100_000)
	ts := startServer(t, Config{MaxHandshakes: 2, HandshakeTimeout: time.Minute, FirstByteTimeout: time.Minute})
	tr := ts.offer(t, path, Source{})
	silent := dialRaw(t, ts.addr, nil)
	slow := dialRaw(t, ts.addr, []byte("FERY\x01abc"))
	// The listener accepts in arrival order, so both hold their places
	// before the next connection is accepted.
	c := dialRaw(t, ts.addr, nil)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, []byte{byte(VerdictUnavailable)}) {
		t.Fatalf("third connection read %q, %v; want the single verdict %v, then EOF", got, err, VerdictUnavailable)
	}
	dst, _ := fsroot.CreateDestination(os.DevNull)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	_, err = Receive(ctx, ts.ticket(tr), dst, ReceiveConfig{})
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Receive() for 300 ms while the handshake places are taken = %v, want it still retrying (%v)", err, context.DeadlineExceeded)
	}
	if ts.Pending() != 1 {
		t.Fatalf("Pending() = %d after unavailable verdicts, want 1: the ticket was never read", ts.Pending())
	}

	// The slow connection still has its place: the server answers it.
	var v [1]byte
	if _, err := slow.Write(make([]byte, preambleSize-8)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(slow, v[:]); err != nil || Verdict(v[0]) != VerdictRefused {
		t.Fatalf("slow connection: verdict %v, %v; want %v", Verdict(v[0]), err, VerdictRefused)
	}
	silent.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, got := receiveOrRefused(t, ts, tr, dir)
		if got != nil {
			if !bytes.Equal(got, data) || st.Bytes != int64(len(data)) {
				t.Errorf("received %d bytes, want %d exact", len(got), len(data))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the places of two closed handshakes did not come back within 10 s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// receiveOrRefused receives tr into a file, or returns nil if the server
// refused the connection.
func receiveOrRefused(t *testing.T, ts *testServer, tr *Transfer, dir string) (Stats, []byte) {
	t.Helper()
	out := dir + "/out"
	dst, err := fsroot.CreateDestination(out)
	if err != nil {
		t.Fatal(err)
	}
	st, err := Receive(t.Context(), ts.ticket(tr), dst, ReceiveConfig{})
	if errors.Is(err, ErrRefused) {
		dst.Abort()
		return st, nil
	}
	if err != nil {
		dst.Abort()
		t.Fatalf("Receive() = %v", err)
	}
	if err := dst.Commit(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return st, got
}

// dialFrom opens the data channel from the local address ip (127.0.0.2
// is a second loopback source on Linux), sends preamble and returns the
// verdict.
func dialFrom(t *testing.T, ip, addr string, preamble []byte) (net.Conn, Verdict) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dialling %s from %s: %v", addr, ip, err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write(preamble); err != nil {
		t.Fatal(err)
	}
	var v [1]byte
	if _, err := io.ReadFull(c, v[:]); err != nil {
		t.Fatalf("reading the verdict: %v", err)
	}
	return c, Verdict(v[0])
}

// TestBindDataToClient checks that a bound ticket is good from its
// client's IP address only, any port, and that presenting it from
// another address neither spends it nor reveals it.
func TestBindDataToClient(t *testing.T) {
	dir := t.TempDir()
	path, data := writeFile(t, dir, 100_000)
	for _, tc := range []struct {
		bind           bool
		client         string
		from, wrong    string
		wantWrongRefus bool
	}{
		{bind: true, client: "127.0.0.1", from: "127.0.0.1", wrong: "127.0.0.2", wantWrongRefus: true},
		{bind: true, client: "::ffff:127.0.0.2", from: "127.0.0.2", wrong: "127.0.0.1", wantWrongRefus: true},
		{bind: false, client: "127.0.0.1", from: "127.0.0.1", wrong: "127.0.0.2"},
	} {
		ts := startServer(t, Config{BindDataToClient: tc.bind})
		tr := ts.offer(t, path, Source{ClientIP: netip.MustParseAddr(tc.client)})
		c, v := dialFrom(t, tc.wrong, ts.addr, preambleFor(tr.Ticket[:]))
		if tc.wantWrongRefus {
			if v != VerdictRefused || ts.Pending() != 1 {
				t.Errorf("bind %v, client %s: from %s verdict %v, Pending() %d; want %v, 1", tc.bind, tc.client, tc.wrong, v, ts.Pending(), VerdictRefused)
			}
			c, v = dialFrom(t, tc.from, ts.addr, preambleFor(tr.Ticket[:]))
		}
		if v != VerdictOK {
			t.Errorf("bind %v, client %s: verdict %v, want %v", tc.bind, tc.client, v, VerdictOK)
			continue
		}
		if got, err := io.ReadAll(c); err != nil || !bytes.Equal(got, data) {
			t.Errorf("bind %v, client %s: received %d bytes, %v; want %d exact", tc.bind, tc.client, len(got), err, len(data))
		}
	}

	ts := startServer(t, Config{BindDataToClient: true})
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if tr, err := ts.Offer(Source{File: f}); err == nil {
		tr.Cancel()
		t.Error("Offer() without ClientIP while binding = nil error, want one: the ticket would be good from nowhere or anywhere")
	}
}

// syncBuffer is a bytes.Buffer for a slog handler and the test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestPipeSizeRefused asks for a pipe size the kernel refuses even to
// root (past 2 GiB, F_SETPIPE_SZ is EINVAL): SPLICE still sends every
// byte, with the default pipe, reports the size it got and warns once.
// The integration tests show the unprivileged case (EPERM) with ferryd.
func TestPipeSizeRefused(t *testing.T) {
	dir := t.TempDir()
	path, data := writeFile(t, dir, 3<<20+7)
	var log syncBuffer
	ts := startServer(t, Config{PipeSize: 1<<31 + 4096, IdlePipes: 1,
		Logger: slog.New(slog.NewTextHandler(&log, nil))})
	for range 3 {
		// Two at a time, so that the second makes a pipe of its own.
		a := ts.offer(t, path, Source{Strategy: Splice})
		b := ts.offer(t, path, Source{Strategy: Splice})
		var wg sync.WaitGroup
		for _, tr := range []*Transfer{a, b} {
			wg.Go(func() {
				_, got := ts.receiveFile(t, tr, dir, ReceiveConfig{})
				if !bytes.Equal(got, data) {
					t.Errorf("received %d bytes, want %d exact", len(got), len(data))
				}
			})
		}
		wg.Wait()
		for _, tr := range []*Transfer{a, b} {
			st, err := tr.Result()
			if err != nil || st.Strategy != Splice || st.PipeSize != 1<<16 {
				t.Errorf("Result() = %v, pipe size %d, %v; want SPLICE with the default 65536, nil", st.Strategy, st.PipeSize, err)
			}
		}
	}
	if n := strings.Count(log.String(), "refused the pipe size"); n != 1 {
		t.Errorf("%d warnings about the refused pipe size, want 1:\n%s", n, log.String())
	}
}
