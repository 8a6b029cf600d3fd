package transfer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferrydev/ferry/fsroot"
)

// poolReceive receives tr over p into a new file in dir, commits it and
// returns the receiver's stats and the file's content.
func (ts *testServer) poolReceive(t testing.TB, p *Pool, tr *Transfer, dir string) (Stats, []byte) {
	t.Helper()
	return receiveWith(t, tr, dir, func(dst *fsroot.Destination) (Stats, error) {
		return p.Receive(context.Background(), ts.ticket(tr), dst, ReceiveConfig{})
	})
}

// TestPoolReuse runs several transfers of every strategy, of awkward
// sizes, one after another over one pooled connection, and checks every
// byte and both sides' counts.
func TestPoolReuse(t *testing.T) {
	sizes := []int64{0, 1, 4095, 4097, 1<<20 + 3}
	dir := t.TempDir()
	ts := startServer(t, Config{})
	p := NewPool(PoolConfig{})
	defer p.Close()
	files := make(map[int64][]byte)
	paths := make(map[int64]string)
	for _, size := range sizes {
		paths[size], files[size] = writeFile(t, dir, size)
	}
	n := 0
	for _, strategy := range ts.Supported() {
		for _, size := range sizes {
			t.Run(fmt.Sprintf("%v/%d", strategy, size), func(t *testing.T) {
				tr := ts.offer(t, paths[size], Source{Strategy: strategy})
				rst, got := ts.poolReceive(t, p, tr, dir)
				n++
				if !bytes.Equal(got, files[size]) {
					t.Errorf("received %d bytes (sha256 %x), want %d (sha256 %x)", len(got), sum(got), size, sum(files[size]))
				}
				st, err := tr.Result()
				if err != nil {
					t.Fatalf("Result() error = %v", err)
				}
				if st.Strategy != strategy || st.Bytes != size || rst.Bytes != size {
					t.Errorf("sender %v sent %d bytes, receiver got %d; want %v, %d", st.Strategy, st.Bytes, rst.Bytes, strategy, size)
				}
				// Every payload round is two splices (socket to pipe, pipe to
				// file), and one read takes the trailer.
				if rst.PipeSize == 0 || rst.Syscalls["splice"] < 2*rst.Rounds || rst.Syscalls["read"] < 1 {
					t.Errorf("receiver counted %v for %d rounds (pipe %d bytes), want 2 splices a round and a read for the trailer",
						rst.Syscalls, rst.Rounds, rst.PipeSize)
				}
			})
		}
	}
	if got := p.Dials(); got != 1 {
		t.Errorf("Dials() = %d after %d transfers in a row, want 1", got, n)
	}
	if got, want := p.Reuses(), int64(n-1); got != want {
		t.Errorf("Reuses() = %d, want %d", got, want)
	}
}

// TestPoolFailureNotReused fails a transfer mid-way (the source shrinks
// after the offer) and a ticket, and checks that neither connection is
// reused and that the pool still works afterwards.
func TestPoolFailureNotReused(t *testing.T) {
	dir := t.TempDir()
	ts := startServer(t, Config{})
	p := NewPool(PoolConfig{})
	defer p.Close()
	path, _ := writeFile(t, dir, 1<<20)
	small, smallData := writeFile(t, dir, 4096)

	ts.poolReceive(t, p, ts.offer(t, small, Source{Strategy: ReadWrite}), dir)

	tr := ts.offer(t, path, Source{Strategy: ReadWrite})
	if err := os.Truncate(path, 100<<10); err != nil {
		t.Fatal(err)
	}
	dst, err := fsroot.CreateDestination(filepath.Join(dir, "failed"))
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Abort()
	if _, err := p.Receive(context.Background(), ts.ticket(tr), dst, ReceiveConfig{}); !errors.Is(err, ErrShortTransfer) {
		t.Errorf("Pool.Receive of a source that shrank = %v, want %v", err, ErrShortTransfer)
	}
	if _, err := tr.Result(); err == nil {
		t.Errorf("sender Result() = nil error for a source that shrank, want one")
	}
	if got := p.Dials(); got != 1 {
		t.Errorf("Dials() = %d after the failed transfer, want 1 (it reused the first connection)", got)
	}

	// A refused ticket: the connection ends with the verdict.
	bad := Ticket{Address: ts.addr, Ticket: make([]byte, TicketSize), Length: 1}
	if _, err := p.Receive(context.Background(), bad, dst, ReceiveConfig{}); !errors.Is(err, ErrRefused) {
		t.Errorf("Pool.Receive with a wrong ticket = %v, want %v", err, ErrRefused)
	}
	if got := p.Dials(); got != 2 {
		t.Errorf("Dials() = %d after the refused ticket, want 2 (the failed connection was not reused)", got)
	}

	_, got := ts.poolReceive(t, p, ts.offer(t, small, Source{}), dir)
	if !bytes.Equal(got, smallData) {
		t.Errorf("after the failures: received %d bytes, want the %d of the file", len(got), len(smallData))
	}
	if got := p.Dials(); got != 3 {
		t.Errorf("Dials() = %d, want 3 (the refused connection was not reused)", got)
	}
}

// TestPoolStaleConnection plays a server that closes a kept connection
// after one transfer: the pool must notice before the verdict and present
// the ticket again on a new connection.
func TestPoolStaleConnection(t *testing.T) {
	payload := []byte("hello")
	addr, versions := scriptedDataServer(t, func(byte) []byte {
		// The payload and trailer, then close: never read the next preamble.
		return append(append([]byte{byte(VerdictOK)}, payload...), TrailerOK)
	})
	p := NewPool(PoolConfig{})
	defer p.Close()
	pullTwice(t, p, addr, payload)
	for range 2 {
		if v := <-versions; v != ProtocolVersionKeepAlive {
			t.Errorf("preamble version %d, want a keep-alive one", v)
		}
	}
	if got := p.Dials(); got != 2 {
		t.Errorf("Dials() = %d, want 2", got)
	}
}

// TestVersion1Unchanged checks the old wire format on the server that
// speaks both: the payload, then end of stream, no trailer.
func TestVersion1Unchanged(t *testing.T) {
	dir := t.TempDir()
	ts := startServer(t, Config{})
	path, data := writeFile(t, dir, 4096)
	tr := ts.offer(t, path, Source{})
	c := dialRaw(t, ts.addr, preambleFor(tr.Ticket[:]))
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1+len(data) || Verdict(got[0]) != VerdictOK || !bytes.Equal(got[1:], data) {
		t.Errorf("version 1: read %d bytes after the preamble, want the verdict and exactly the %d bytes, then EOF", len(got), len(data))
	}
	if _, err := tr.Result(); err != nil {
		t.Errorf("Result() = %v", err)
	}
}

// TestKeepAliveShutdown checks that an idle kept connection does not hold
// Shutdown for the handshake timeout and that the server has no goroutine
// left.
func TestKeepAliveShutdown(t *testing.T) {
	dir := t.TempDir()
	ts := startServer(t, Config{})
	path, _ := writeFile(t, dir, 10)
	p := NewPool(PoolConfig{})
	defer p.Close()
	ts.poolReceive(t, p, ts.offer(t, path, Source{}), dir)
	// Well under the 10 s an idle connection would otherwise wait.
	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Second)
	defer cancel()
	if err := ts.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown() with an idle kept connection = %v, want nil", err)
	}
	ts.close(t)()
	checkNoGoroutines(t)
}

// TestKeepAliveIdleDoesNotStarveHandshakes: connections a pool keeps for
// later do not take the handshake places (MaxHandshakes, here 2 like
// MaxTransfers) that new connections need, and MaxIdleConns caps how many
// the server keeps. A review found a client that pulled twice and stayed
// alive locking every other client out for the handshake timeout.
func TestKeepAliveIdleDoesNotStarveHandshakes(t *testing.T) {
	dir := t.TempDir()
	path, data := writeFile(t, dir, 64<<10)
	ts := startServer(t, Config{MaxTransfers: 2, MaxIdleConns: 1})
	p := NewPool(PoolConfig{})
	defer p.Close()
	// Two transfers at once over two pooled connections; both end well
	// and are given back, but the server keeps only one.
	a, b := ts.offer(t, path, Source{Strategy: Sendfile}), ts.offer(t, path, Source{Strategy: Sendfile})
	done := make(chan []byte, 2)
	for _, tr := range []*Transfer{a, b} {
		go func() {
			_, got := ts.poolReceive(t, p, tr, dir)
			done <- got
		}()
	}
	for range 2 {
		if got := <-done; !bytes.Equal(got, data) {
			t.Fatalf("pooled transfer landed %d bytes, want the %d offered", len(got), len(data))
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for ts.idleConns.Load() != 1 || ts.handshakes.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("server: %d idle connections, %d handshakes; want 1 kept (MaxIdleConns), none counted as handshakes",
				ts.idleConns.Load(), ts.handshakes.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Another client, new connections, as many as MaxHandshakes at once.
	for range 2 {
		c, d := ts.offer(t, path, Source{Strategy: Sendfile}), ts.offer(t, path, Source{Strategy: Sendfile})
		for _, tr := range []*Transfer{c, d} {
			go func() {
				_, got := ts.receiveFile(t, tr, dir, ReceiveConfig{})
				done <- got
			}()
		}
		for range 2 {
			if got := <-done; !bytes.Equal(got, data) {
				t.Fatalf("new connection landed %d bytes, want the %d offered", len(got), len(data))
			}
		}
	}
	// The pool still works: one transfer reuses the kept connection, the
	// other finds its connection closed by the server and dials again.
	for range 2 {
		if _, got := ts.poolReceive(t, p, ts.offer(t, path, Source{Strategy: Mmap}), dir); !bytes.Equal(got, data) {
			t.Fatalf("pooled transfer landed %d bytes, want the %d offered", len(got), len(data))
		}
	}
}

// TestPoolReapsIdleConnections: a pool closes the connections idle past
// IdleTimeout by itself, and the server, seeing them closed, gives their
// idle places back, without another transfer or Close.
func TestPoolReapsIdleConnections(t *testing.T) {
	dir := t.TempDir()
	path, _ := writeFile(t, dir, 4096)
	ts := startServer(t, Config{})
	p := NewPool(PoolConfig{IdleTimeout: 50 * time.Millisecond})
	defer p.Close()
	ts.poolReceive(t, p, ts.offer(t, path, Source{Strategy: ReadWrite}), dir)
	deadline := time.Now().Add(5 * time.Second)
	for {
		p.mu.Lock()
		idle := len(p.idle)
		p.mu.Unlock()
		if idle == 0 && ts.idleConns.Load() == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("5 s after a transfer: pool holds %d addresses' idle connections, the server %d idle connections; want none",
				idle, ts.idleConns.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := p.Dials(); got != 1 {
		t.Errorf("Dials() = %d, want 1", got)
	}
	ts.poolReceive(t, p, ts.offer(t, path, Source{Strategy: ReadWrite}), dir)
	if got := p.Dials(); got != 2 {
		t.Errorf("after the reap, Dials() = %d, want 2 (a new connection)", got)
	}
}

// TestPoolOldServer: a server from before keep-alive answers a version-2
// preamble with VerdictBadPreamble, before it reads the ticket. The pool
// presents the ticket again the version-1 way, and from then on uses
// version 1 for that address, so a new client still pulls from an old
// server (a rolling upgrade).
func TestPoolOldServer(t *testing.T) {
	payload := []byte("from an old server")
	addr, versions := scriptedDataServer(t, func(v byte) []byte {
		if v != ProtocolVersion {
			return []byte{byte(VerdictBadPreamble)}
		}
		return append([]byte{byte(VerdictOK)}, payload...)
	})
	p := NewPool(PoolConfig{})
	defer p.Close()
	pullTwice(t, p, addr, payload)
	var got []byte
	for range 3 {
		got = append(got, <-versions)
	}
	if want := []byte{ProtocolVersionKeepAlive, ProtocolVersion, ProtocolVersion}; !bytes.Equal(got, want) {
		t.Errorf("preamble versions seen = %v, want %v (one keep-alive try, then version 1)", got, want)
	}
	select {
	case v := <-versions:
		t.Errorf("a fourth connection, version %d", v)
	default:
	}
}

// scriptedDataServer plays a data-channel server that answers each
// connection's preamble with answer(its version; 0 when it is not a
// valid preamble), then closes the connection. Each version seen goes to
// the channel.
func scriptedDataServer(t *testing.T, answer func(version byte) []byte) (string, <-chan byte) {
	t.Helper()
	ln := listenRaw(t)
	versions := make(chan byte, 8)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			var pre [preambleSize]byte
			if _, err := io.ReadFull(c, pre[:]); err != nil {
				c.Close()
				continue
			}
			_, v, ok, _ := parsePreamble(pre[:])
			if !ok {
				v = 0
			}
			versions <- v
			c.Write(answer(v))
			c.Close()
		}
	}()
	return ln.Addr().String(), versions
}

// pullTwice receives payload twice from addr through p, into /dev/null.
func pullTwice(t *testing.T, p *Pool, addr string, payload []byte) {
	t.Helper()
	for i := range 2 {
		dst, err := fsroot.CreateDestination(os.DevNull)
		if err != nil {
			t.Fatal(err)
		}
		tk := Ticket{Address: addr, Ticket: make([]byte, TicketSize), Length: int64(len(payload))}
		if st, err := p.Receive(context.Background(), tk, dst, ReceiveConfig{}); err != nil || st.Bytes != int64(len(payload)) {
			t.Fatalf("transfer %d: Pool.Receive() = %d bytes, %v; want %d, nil", i, st.Bytes, err, len(payload))
		}
	}
}
