package transfer

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrydev/ferry/fsroot"
)

// quiet keeps the per-transfer log lines out of test output.
var quiet = slog.New(slog.DiscardHandler)

// testServer is a Server serving a real loopback listener.
type testServer struct {
	*Server
	addr   string
	served chan error
	once   sync.Once
}

// startServer starts a Server on 127.0.0.1:0. Cleanup closes it and
// checks that Serve returned ErrClosed.
func startServer(t testing.TB, cfg Config) *testServer {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{Server: NewServer(cfg), addr: ln.Addr().String(), served: make(chan error, 1)}
	go func() { ts.served <- ts.Serve(ln) }()
	t.Cleanup(ts.close(t))
	return ts
}

// close returns a func that closes the server and checks Serve's result
// the first time it is called; later calls wait for the first.
func (ts *testServer) close(t testing.TB) func() {
	return func() {
		ts.once.Do(func() {
			ts.Close()
			if err := <-ts.served; !errors.Is(err, ErrClosed) {
				t.Errorf("Serve() = %v, want %v", err, ErrClosed)
			}
		})
	}
}

// writeFile writes size random bytes to a new file in dir and returns its
// path and content.
func writeFile(t testing.TB, dir string, size int64) (string, []byte) {
	t.Helper()
	data := randomBytes(size)
	f, err := os.CreateTemp(dir, "src-*")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return f.Name(), data
}

var seed = rand.NewChaCha8([32]byte{'f', 'e', 'r', 'r', 'y'})

func randomBytes(n int64) []byte {
	b := make([]byte, n)
	seed.Read(b)
	return b
}

// offer opens path and offers src's range of it.
func (ts *testServer) offer(t testing.TB, path string, src Source) *Transfer {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	src.File, src.Path = f, filepath.Base(path)
	tr, err := ts.Offer(src)
	if err != nil {
		f.Close()
		t.Fatalf("Offer(%+v) = %v", src, err)
	}
	return tr
}

// ticket is what a client of tr needs.
func (ts *testServer) ticket(tr *Transfer) Ticket {
	return Ticket{Address: ts.addr, Ticket: tr.Ticket[:], Length: tr.Length, Strategy: tr.Strategy}
}

// receiveFile receives tr into a new file in dir, commits it and returns
// the receiver's stats and the file's content.
func (ts *testServer) receiveFile(t testing.TB, tr *Transfer, dir string, cfg ReceiveConfig) (Stats, []byte) {
	t.Helper()
	return receiveWith(t, tr, dir, func(dst *fsroot.Destination) (Stats, error) {
		return Receive(context.Background(), ts.ticket(tr), dst, cfg)
	})
}

// receiveWith receives tr into a new file under dir with recv, commits
// it and returns the statistics and the file's bytes.
func receiveWith(t testing.TB, tr *Transfer, dir string, recv func(*fsroot.Destination) (Stats, error)) (Stats, []byte) {
	t.Helper()
	path := filepath.Join(dir, "dst-"+tr.ID)
	dst, err := fsroot.CreateDestination(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := recv(dst)
	if err != nil {
		dst.Abort()
		t.Fatalf("receiving transfer %s (%v): %v", tr.ID, tr.Strategy, err)
	}
	if err := dst.Commit(); err != nil {
		t.Fatalf("Commit() = %v", err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(path)
	return st, got
}

// dialRaw connects to the data channel, sends preamble and returns the
// connection, with a generous deadline so that a failing test does not
// hang.
func dialRaw(t testing.TB, addr string, preamble []byte) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if len(preamble) > 0 {
		if _, err := c.Write(preamble); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// verdictOf presents ticket and returns the verdict byte and how many
// bytes followed it before the server closed.
func verdictOf(t testing.TB, addr string, preamble []byte) (Verdict, int64) {
	t.Helper()
	c := dialRaw(t, addr, preamble)
	var v [1]byte
	if _, err := io.ReadFull(c, v[:]); err != nil {
		t.Fatalf("reading the verdict: %v", err)
	}
	n, err := io.Copy(io.Discard, c)
	if err != nil {
		t.Fatalf("reading after the verdict %v: %v", Verdict(v[0]), err)
	}
	return Verdict(v[0]), n
}

func preambleFor(ticket []byte) []byte {
	return appendPreamble(nil, ticket)
}

func sum(b []byte) [32]byte { return sha256.Sum256(b) }

// openFDs lists this process's open descriptors and what they point to.
func openFDs(t testing.TB) map[string]string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	fds := make(map[string]string)
	for _, e := range ents {
		target, _ := os.Readlink("/proc/self/fd/" + e.Name())
		fds[e.Name()] = target
	}
	return fds
}

// packageGoroutines returns the stacks of goroutines running this
// package's non-test code (other than the caller).
func packageGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var found []string
	for i, g := range strings.Split(string(buf), "\n\n") {
		if i == 0 { // the caller
			continue
		}
		if strings.Contains(g, "ferry/transfer.(*") || strings.Contains(g, "ferry/transfer.Receive") {
			found = append(found, g)
		}
	}
	return found
}

// checkNoGoroutines fails if goroutines of this package outlive their
// owner. Goroutines started by context.AfterFunc and time.AfterFunc may
// still be finishing their last statement, so it gives them a moment.
func checkNoGoroutines(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		left := packageGoroutines()
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines left running:\n%s", len(left), strings.Join(left, "\n\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// addrTCP is the server's data address as a *net.TCPAddr.
func (ts *testServer) addrTCP(t testing.TB) net.Addr {
	a, err := net.ResolveTCPAddr("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// listenRaw listens on loopback for a test that plays the server itself.
func listenRaw(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}
