package transfer

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferrydev/ferry/fsroot"
)

// TestTicketRefused checks that wrong, reused, revoked and expired
// tickets get VerdictRefused and no file bytes, and bad preambles get
// VerdictBadPreamble.
func TestTicketRefused(t *testing.T) {
	dir := t.TempDir()
	path, data := writeFile(t, dir, 10000)
	ts := startServer(t, Config{})

	t.Run("wrong", func(t *testing.T) {
		tr := ts.offer(t, path, Source{})
		defer tr.Cancel()
		var wrong [TicketSize]byte
		rand.Read(wrong[:])
		// Same map key, different secret part.
		sameKey := tr.Ticket
		sameKey[TicketSize-1] ^= 1
		for _, ticket := range [][TicketSize]byte{wrong, sameKey} {
			if v, n := verdictOf(t, ts.addr, preambleFor(ticket[:])); v != VerdictRefused || n != 0 {
				t.Errorf("ticket %x: verdict %v and %d bytes, want %v and 0", ticket, v, n, VerdictRefused)
			}
		}
		if got := ts.Pending(); got != 1 {
			t.Errorf("Pending() after wrong tickets = %d, want 1: a wrong ticket must not consume the offer", got)
		}
		_, got := ts.receiveFile(t, tr, dir, ReceiveConfig{})
		if string(got) != string(data) {
			t.Errorf("after wrong tickets, the right one received %d bytes, want %d exact", len(got), len(data))
		}
	})

	t.Run("reused", func(t *testing.T) {
		tr := ts.offer(t, path, Source{})
		ts.receiveFile(t, tr, dir, ReceiveConfig{})
		if v, n := verdictOf(t, ts.addr, preambleFor(tr.Ticket[:])); v != VerdictRefused || n != 0 {
			t.Errorf("reused ticket: verdict %v and %d bytes, want %v and 0", v, n, VerdictRefused)
		}
		dst, _ := fsroot.CreateDestination(os.DevNull)
		if _, err := Receive(t.Context(), ts.ticket(tr), dst, ReceiveConfig{}); !errors.Is(err, ErrRefused) {
			t.Errorf("Receive(reused ticket) = %v, want %v", err, ErrRefused)
		}
	})

	t.Run("expired", func(t *testing.T) {
		ts := startServer(t, Config{TicketTTL: 50 * time.Millisecond})
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		tr, err := ts.Offer(Source{File: f})
		if err != nil {
			t.Fatal(err)
		}
		<-tr.Done()
		if _, err := tr.Result(); !errors.Is(err, ErrTicketExpired) {
			t.Errorf("Result() of an unclaimed transfer = %v, want %v", err, ErrTicketExpired)
		}
		if _, err := f.Stat(); !errors.Is(err, os.ErrClosed) {
			t.Errorf("file after expiry: Stat() = %v, want %v", err, os.ErrClosed)
		}
		if v, n := verdictOf(t, ts.addr, preambleFor(tr.Ticket[:])); v != VerdictRefused || n != 0 {
			t.Errorf("expired ticket: verdict %v and %d bytes, want %v and 0", v, n, VerdictRefused)
		}
	})

	t.Run("cancelled", func(t *testing.T) {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		tr, err := ts.Offer(Source{File: f})
		if err != nil {
			t.Fatal(err)
		}
		tr.Cancel()
		tr.Cancel() // twice is fine
		if _, err := tr.Result(); !errors.Is(err, context.Canceled) {
			t.Errorf("Result() after Cancel = %v, want %v", err, context.Canceled)
		}
		if _, err := f.Stat(); !errors.Is(err, os.ErrClosed) {
			t.Errorf("file after Cancel: Stat() = %v, want %v", err, os.ErrClosed)
		}
		if v, n := verdictOf(t, ts.addr, preambleFor(tr.Ticket[:])); v != VerdictRefused || n != 0 {
			t.Errorf("cancelled ticket: verdict %v and %d bytes, want %v and 0", v, n, VerdictRefused)
		}
	})

	t.Run("bad preamble", func(t *testing.T) {
		tr := ts.offer(t, path, Source{})
		defer tr.Cancel()
		good := preambleFor(tr.Ticket[:])
		badMagic := append([]byte("FERZ"), good[4:]...)
		badVersion := append([]byte(nil), good...)
		badVersion[4] = ProtocolVersionSession + 1
		for _, p := range [][]byte{badMagic, badVersion} {
			if v, n := verdictOf(t, ts.addr, p); v != VerdictBadPreamble || n != 0 {
				t.Errorf("preamble %q: verdict %v and %d bytes, want %v and 0", p[:5], v, n, VerdictBadPreamble)
			}
		}
		// A transfer's ticket is no session's: binding with it is refused
		// and leaves it pending.
		asSession := appendPreambleVersion(nil, ProtocolVersionSession, tr.Ticket[:])
		if v, n := verdictOf(t, ts.addr, asSession); v != VerdictRefused || n != 0 {
			t.Errorf("a transfer's ticket in a session preamble: verdict %v and %d bytes, want %v and 0", v, n, VerdictRefused)
		}
		if got := ts.Pending(); got != 1 {
			t.Errorf("Pending() after bad preambles = %d, want 1", got)
		}
	})
	if got := ts.Pending(); got != 0 {
		t.Errorf("Pending() at the end = %d, want 0", got)
	}
}

// TestHandshakeTimeout checks that a client that connects and sends
// nothing, or half a preamble, is dropped after HandshakeTimeout.
func TestHandshakeTimeout(t *testing.T) {
	const timeout = 100 * time.Millisecond
	ts := startServer(t, Config{HandshakeTimeout: timeout})
	for _, sent := range [][]byte{nil, []byte("FERY\x01abc")} {
		start := time.Now()
		c := dialRaw(t, ts.addr, sent)
		n, err := io.Copy(io.Discard, c)
		if err != nil || n != 0 {
			t.Errorf("sending %q: read %d bytes, %v; want the server to close (EOF) without a verdict", sent, n, err)
		}
		if took := time.Since(start); took < timeout {
			t.Errorf("sending %q: dropped after %v, want at least %v", sent, took, timeout)
		}
	}
}

// TestCancelRunning cancels a transfer whose receiver stopped reading.
func TestCancelRunning(t *testing.T) {
	for _, strategy := range Strategies {
		t.Run(strategy.String(), func(t *testing.T) {
			ts := startServer(t, Config{})
			tr := ts.offer(t, sparseFile(t, 128<<20), Source{Strategy: strategy})
			c := dialRaw(t, ts.addr, preambleFor(tr.Ticket[:]))
			var v [1]byte
			if _, err := io.ReadFull(c, v[:]); err != nil || Verdict(v[0]) != VerdictOK {
				t.Fatalf("verdict %v, %v; want %v", Verdict(v[0]), err, VerdictOK)
			}
			tr.Cancel()
			st, err := tr.Result()
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Result() after Cancel = %v, want %v", err, context.Canceled)
			}
			if st.Bytes >= tr.Length || st.Bytes != tr.Sent() {
				t.Errorf("Result() Bytes = %d, Sent() = %d; want equal and less than %d", st.Bytes, tr.Sent(), tr.Length)
			}
			n, _ := io.Copy(io.Discard, c)
			if n >= tr.Length {
				t.Errorf("receiver got %d bytes, want fewer than %d", n, tr.Length)
			}
		})
	}
}

// sparseFile makes a file of size bytes that are all holes.
func sparseFile(t testing.TB, size int64) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sparse")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestClose checks what Close does to pending, running and future offers,
// to half-open connections, and that nothing outlives it.
func TestClose(t *testing.T) {
	dir := t.TempDir()
	path, data := writeFile(t, dir, 4096)
	big := sparseFile(t, 128<<20)
	ts := startServer(t, Config{HandshakeTimeout: time.Hour, TicketTTL: time.Hour})

	pending := ts.offer(t, path, Source{})
	running := ts.offer(t, big, Source{})
	stalled := dialRaw(t, ts.addr, preambleFor(running.Ticket[:]))
	var v [1]byte
	if _, err := io.ReadFull(stalled, v[:]); err != nil || Verdict(v[0]) != VerdictOK {
		t.Fatalf("verdict %v, %v; want %v", Verdict(v[0]), err, VerdictOK)
	}
	// A silent client, then a whole transfer: connections are accepted in
	// order, so the silent one is surely in its handshake by the end.
	silent := dialRaw(t, ts.addr, nil)
	tr := ts.offer(t, path, Source{})
	if _, got := ts.receiveFile(t, tr, dir, ReceiveConfig{}); string(got) != string(data) {
		t.Fatalf("received %d bytes, want %d exact", len(got), len(data))
	}

	closed := make(chan struct{})
	go func() {
		ts.close(t)()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close() still waiting after 10 s (a connection in its handshake holds it?)")
	}
	if _, err := pending.Result(); !errors.Is(err, ErrClosed) {
		t.Errorf("pending transfer: Result() = %v, want %v", err, ErrClosed)
	}
	if _, err := running.Result(); !errors.Is(err, ErrClosed) {
		t.Errorf("running transfer: Result() = %v, want %v", err, ErrClosed)
	}
	if n, err := io.Copy(io.Discard, silent); n != 0 || err != nil {
		t.Errorf("silent client after Close: read %d bytes, %v; want EOF", n, err)
	}

	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if tr, err := ts.Offer(Source{File: f}); !errors.Is(err, ErrClosed) {
		t.Errorf("Offer() after Close = %v, %v; want %v", tr, err, ErrClosed)
	}
	if _, err := f.Stat(); err != nil {
		t.Errorf("a refused Offer closed the caller's file: Stat() = %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.Serve(ln); !errors.Is(err, ErrClosed) {
		t.Errorf("Serve() after Close = %v, want %v", err, ErrClosed)
	}
	if _, err := ln.Accept(); err == nil {
		t.Errorf("Serve() after Close left its listener open")
	}
	checkNoGoroutines(t)
}

// TestShutdown checks that Shutdown lets a running transfer finish while
// its context lasts, and aborts it when the context ends.
func TestShutdown(t *testing.T) {
	dir := t.TempDir()
	path, data := writeFile(t, dir, 1<<20)
	big := sparseFile(t, 128<<20)

	t.Run("graceful", func(t *testing.T) {
		ts := startServer(t, Config{})
		tr := ts.offer(t, path, Source{})
		c := dialRaw(t, ts.addr, preambleFor(tr.Ticket[:]))
		var v [1]byte
		if _, err := io.ReadFull(c, v[:]); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- ts.Shutdown(context.Background()) }()
		got, err := io.ReadAll(c)
		if err != nil || string(got) != string(data) {
			t.Errorf("during Shutdown, received %d bytes, %v; want %d exact", len(got), err, len(data))
		}
		if err := <-done; err != nil {
			t.Errorf("Shutdown() = %v, want nil", err)
		}
		if _, err := tr.Result(); err != nil {
			t.Errorf("Result() = %v, want nil", err)
		}
	})

	t.Run("aborted", func(t *testing.T) {
		ts := startServer(t, Config{})
		tr := ts.offer(t, big, Source{})
		c := dialRaw(t, ts.addr, preambleFor(tr.Ticket[:]))
		var v [1]byte
		if _, err := io.ReadFull(c, v[:]); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- ts.Shutdown(ctx) }()
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Shutdown(cancelled) = %v, want %v", err, context.Canceled)
		}
		if _, err := tr.Result(); !errors.Is(err, ErrClosed) {
			t.Errorf("Result() = %v, want %v", err, ErrClosed)
		}
	})
}

// TestOfferCloseRace offers while the server closes: every offer either
// fails with ErrClosed or finishes with ErrClosed; none is left pending.
func TestOfferCloseRace(t *testing.T) {
	dir := t.TempDir()
	path, _ := writeFile(t, dir, 1)
	for range 50 {
		ts := startServer(t, Config{TicketTTL: time.Hour})
		var wg sync.WaitGroup
		offers := make(chan *Transfer, 100)
		for range 4 {
			wg.Go(func() {
				for range 25 {
					f, err := os.Open(path)
					if err != nil {
						t.Error(err)
						return
					}
					tr, err := ts.Offer(Source{File: f})
					if err != nil {
						f.Close()
						if !errors.Is(err, ErrClosed) {
							t.Errorf("Offer() = %v, want nil or %v", err, ErrClosed)
						}
						continue
					}
					offers <- tr
				}
			})
		}
		ts.close(t)()
		wg.Wait()
		close(offers)
		for tr := range offers {
			select {
			case <-tr.Done():
			default:
				t.Fatalf("transfer %s offered during Close is still pending after it (Pending() = %d)", tr.ID, ts.Pending())
			}
			if _, err := tr.Result(); !errors.Is(err, ErrClosed) {
				t.Errorf("transfer %s: Result() = %v, want %v", tr.ID, err, ErrClosed)
			}
		}
	}
}

// TestServeCloseRace connects while the server closes: Close must not
// race with a connection Serve has just accepted.
func TestServeCloseRace(t *testing.T) {
	for range 200 {
		ts := startServer(t, Config{HandshakeTimeout: time.Hour})
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				c, err := net.Dial("tcp", ts.addr)
				if err == nil {
					c.Close()
				}
			})
		}
		ts.close(t)()
		wg.Wait()
	}
	checkNoGoroutines(t)
}

// TestOfferErrors checks Offer's refusals.
func TestOfferErrors(t *testing.T) {
	dir := t.TempDir()
	path, _ := writeFile(t, dir, 100)
	ts := startServer(t, Config{Disable: []Strategy{Splice}})
	tests := []struct {
		name string
		path string
		src  Source
		want error
	}{
		{"offset past end", path, Source{Offset: 101}, ErrOutOfRange},
		{"negative offset", path, Source{Offset: -1}, ErrOutOfRange},
		{"negative length", path, Source{Length: -1}, ErrOutOfRange},
		{"directory", dir, Source{}, fsroot.ErrIsDir},
		{"disabled strategy", path, Source{Strategy: Splice}, ErrUnsupported},
		{"unknown strategy", path, Source{Strategy: 99}, ErrUnsupported},
	}
	for _, tt := range tests {
		f, err := os.Open(tt.path)
		if err != nil {
			t.Fatal(err)
		}
		tt.src.File = f
		if tr, err := ts.Offer(tt.src); !errors.Is(err, tt.want) {
			t.Errorf("%s: Offer(%+v) = %v, %v; want %v", tt.name, tt.src, tr, err, tt.want)
		}
		if _, err := f.Stat(); err != nil {
			t.Errorf("%s: a refused Offer closed the caller's file: Stat() = %v", tt.name, err)
		}
		f.Close()
	}
	if got := ts.Pending(); got != 0 {
		t.Errorf("Pending() = %d, want 0", got)
	}
}

// TestChoose checks the server's choice of strategy.
func TestChoose(t *testing.T) {
	probed := probe()
	if len(probed) != len(Strategies) {
		t.Logf("this kernel supports only %v", probed)
	}
	tests := []struct {
		cfg  Config
		want Strategy
		err  error
	}{
		{Config{}, defaultPreference[0], nil},
		{Config{Preference: []Strategy{Sendfile, Mmap}}, Sendfile, nil},
		{Config{Preference: []Strategy{Sendfile, Mmap}, Disable: []Strategy{Sendfile}}, Mmap, nil},
		{Config{Preference: []Strategy{Sendfile}, Disable: []Strategy{Sendfile}}, 0, ErrUnsupported},
		{Config{Disable: []Strategy{Mmap, Splice, Sendfile}}, ReadWrite, nil},
	}
	for _, tt := range tests {
		s := NewServer(tt.cfg)
		got, err := s.Choose(Auto)
		if got != tt.want || !errors.Is(err, tt.err) {
			t.Errorf("Choose(Auto) with %+v = %v, %v; want %v, %v", tt.cfg, got, err, tt.want, tt.err)
		}
		for _, st := range Strategies {
			got, err := s.Choose(st)
			want := st
			supported := true
			for _, d := range tt.cfg.Disable {
				if d == st {
					supported = false
				}
			}
			if !supported {
				if !errors.Is(err, ErrUnsupported) {
					t.Errorf("Choose(%v) with %v disabled = %v, %v; want %v", st, tt.cfg.Disable, got, err, ErrUnsupported)
				}
				continue
			}
			if got != want || err != nil {
				t.Errorf("Choose(%v) = %v, %v; want %v, nil", st, got, err, want)
			}
		}
		s.Close()
	}
}

// TestNoLeaks runs successful, refused, cancelled and failed transfers of
// every strategy, closes the server and checks that no descriptor and no
// goroutine is left.
func TestNoLeaks(t *testing.T) {
	dir := t.TempDir()
	path, _ := writeFile(t, dir, 100<<10)
	big := sparseFile(t, 128<<20)
	// Warm up: the runtime opens its poller's descriptors once.
	warm := startServer(t, Config{})
	warm.receiveFile(t, warm.offer(t, path, Source{}), dir, ReceiveConfig{})
	warm.close(t)()
	before := openFDs(t)

	ts := startServer(t, Config{TicketTTL: time.Hour, IdlePipes: 2})
	for _, strategy := range Strategies {
		tr := ts.offer(t, big, Source{Strategy: strategy})
		c := dialRaw(t, ts.addr, preambleFor(tr.Ticket[:]))
		io.ReadFull(c, make([]byte, 100))
		c.Close()
		if _, err := tr.Result(); err == nil {
			t.Errorf("%v: Result() after the receiver left = nil, want an error", strategy)
		}
		ts.offer(t, path, Source{Strategy: strategy}).Cancel()
		ts.receiveFile(t, ts.offer(t, path, Source{Strategy: strategy}), dir, ReceiveConfig{})
		ts.offer(t, path, Source{Strategy: strategy}) // left pending
	}
	if len(ts.pipes.idle) == 0 {
		t.Fatalf("no idle splice pipe before Close: this test would not see one leak")
	}
	ts.close(t)()
	checkNoGoroutines(t)
	after := openFDs(t)
	for fd, target := range after {
		if _, ok := before[fd]; !ok {
			t.Errorf("descriptor %s (%s) left open", fd, target)
		}
	}
}

// TestFallback offers a file that a strategy refuses before sending
// anything: a sysfs attribute cannot be mapped (mmap says ENODEV), so the
// sender falls back to READ_WRITE and says so.
func TestFallback(t *testing.T) {
	const path = "/sys/class/net/lo/address" // "00:00:00:00:00:00\n"
	want, err := os.ReadFile(path)
	if err != nil || len(want) < 10 {
		t.Skipf("no %s here: %v", path, err)
	}
	dir := t.TempDir()
	ts := startServer(t, Config{})
	tr := ts.offer(t, path, Source{Length: 10, Strategy: Mmap})
	_, got := ts.receiveFile(t, tr, dir, ReceiveConfig{})
	if string(got) != string(want[:10]) {
		t.Errorf("received %q, want %q", got, want[:10])
	}
	st, err := tr.Result()
	if err != nil || st.Strategy != ReadWrite || st.Syscalls["mmap"] != 1 || st.Syscalls["pread64"] != 1 {
		t.Errorf("Result() = strategy %v, syscalls %v, %v; want READ_WRITE after one refused mmap, one pread64, nil",
			st.Strategy, st.Syscalls, err)
	}
	if diff := cmp.Diff(senderModel(ReadWrite, false), st.Model); diff != "" {
		t.Errorf("Model mismatch (-want +got):\n%s", diff)
	}
}

// TestConcurrent runs transfers of every strategy at once on one server
// with a pool of one pipe, into files, byte-exact.
func TestConcurrent(t *testing.T) {
	dir := t.TempDir()
	path, data := writeFile(t, dir, 3<<20+5)
	ts := startServer(t, Config{IdlePipes: 1, PipeSize: 65536, BufferSize: 65536, MmapWindow: 65536, SendfileChunk: 65536})
	var wg sync.WaitGroup
	for i := range 16 {
		strategy := Strategies[i%len(Strategies)]
		off := int64(i * 4099)
		tr := ts.offer(t, path, Source{Offset: off, Strategy: strategy})
		wg.Go(func() {
			out := filepath.Join(dir, "out-"+tr.ID)
			dst, err := fsroot.CreateDestination(out)
			if err != nil {
				t.Error(err)
				return
			}
			if _, err := Receive(t.Context(), ts.ticket(tr), dst, ReceiveConfig{BufferSize: 8192}); err != nil {
				dst.Abort()
				t.Errorf("%v from %d: Receive() = %v", strategy, off, err)
				return
			}
			if err := dst.Commit(); err != nil {
				t.Error(err)
			}
			got, _ := os.ReadFile(out)
			if string(got) != string(data[off:]) {
				t.Errorf("%v from %d: received %d bytes, want %d exact", strategy, off, len(got), len(data)-int(off))
			}
			if _, err := tr.Result(); err != nil {
				t.Errorf("%v from %d: Result() = %v", strategy, off, err)
			}
		})
	}
	wg.Wait()
	checkPoolEmpty(t, ts.Server)
}

// TestChooseFor checks that Auto depends on the transfer's length, and
// that an offer resolves Auto from the range it will send, not the file.
func TestChooseFor(t *testing.T) {
	tests := []struct {
		cfg    Config
		length int64
		want   Strategy
	}{
		{Config{}, 4096, defaultSmallPreference[0]},
		{Config{}, 8<<20 - 1, defaultSmallPreference[0]},
		{Config{}, 8 << 20, defaultPreference[0]},
		{Config{AutoSmallBelow: 1 << 20}, 2 << 20, defaultPreference[0]},
		{Config{Preference: []Strategy{Splice}}, 4096, Splice},
		{Config{Preference: []Strategy{Splice}, SmallPreference: []Strategy{ReadWrite}}, 4096, ReadWrite},
		{Config{Preference: []Strategy{Splice}, SmallPreference: []Strategy{ReadWrite}}, 1 << 30, Splice},
	}
	for _, tt := range tests {
		s := NewServer(tt.cfg)
		if got, err := s.ChooseFor(Auto, tt.length); got != tt.want || err != nil {
			t.Errorf("ChooseFor(Auto, %d) with %+v = %v, %v; want %v", tt.length, tt.cfg, got, err, tt.want)
		}
	}
	ts := startServer(t, Config{})
	path, _ := writeFile(t, t.TempDir(), 16<<20)
	if tr := ts.offer(t, path, Source{Length: 4096}); tr.Strategy != defaultSmallPreference[0] {
		t.Errorf("Offer(4 KiB range of a 16 MiB file, Auto).Strategy = %v, want %v", tr.Strategy, defaultSmallPreference[0])
	}
	if tr := ts.offer(t, path, Source{}); tr.Strategy != defaultPreference[0] {
		t.Errorf("Offer(16 MiB, Auto).Strategy = %v, want %v", tr.Strategy, defaultPreference[0])
	}
}
