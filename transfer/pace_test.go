package transfer

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"io"
	"os"
	"sync"
	"testing"
	"time"
)

// Pacing can only make a transfer slower, so these tests bound the
// achieved rate from above (a failure means the pace was not kept) and
// never from below.

// paceSlack is the margin allowed over a limit: none is needed by
// construction (every round waits for its whole slot), so anything past
// it means pacing broke.
const paceSlack = 1.1

// ownCalls are the system calls each strategy's copy loop may make: a
// paced transfer must stay on its strategy's own path (no pread for
// SPLICE or SENDFILE: still zero-copy).
var ownCalls = map[Strategy][]string{
	ReadWrite: {"pread64", "write"},
	Mmap:      {"mmap", "munmap", "fstat", "write"},
	Sendfile:  {"sendfile"},
	Splice:    {"splice", "pipe2", "fcntl"},
}

// TestPacedTransfer sends 8 MiB at 16 MiB/s with each strategy: the
// bytes arrive exact, neither side sees more than the limit, the stats
// say which limit applied, and the rounds are the paced size (16 MiB/20,
// so at least 10 of them where unpaced 1 MiB rounds would make 8).
func TestPacedTransfer(t *testing.T) {
	const size, limit = 8 << 20, 16 << 20
	dir := t.TempDir()
	path, data := writeFile(t, dir, size)
	ts := startServer(t, Config{})
	for _, strategy := range Strategies {
		t.Run(strategy.String(), func(t *testing.T) {
			tr := ts.offer(t, path, Source{Strategy: strategy, RateLimit: limit})
			if tr.RateLimit != limit {
				t.Errorf("Transfer.RateLimit = %d, want %d", tr.RateLimit, limit)
			}
			rst, got := ts.receiveFile(t, tr, dir, ReceiveConfig{})
			if string(got) != string(data) {
				t.Fatalf("received %d bytes, want %d exact", len(got), size)
			}
			st, err := tr.Result()
			if err != nil {
				t.Fatalf("Result() error = %v", err)
			}
			checkCommon(t, "sender", &st, size)
			if st.RateLimit != limit {
				t.Errorf("Stats.RateLimit = %d, want %d", st.RateLimit, limit)
			}
			for side, s := range map[string]*Stats{"sender": &st, "receiver": &rst} {
				if got := s.Throughput(); got > limit*paceSlack {
					t.Errorf("%s Throughput() = %.0f B/s over %v, want at most %d × %.1f", side, got, s.Duration, limit, paceSlack)
				}
			}
			if want := int64(size / (limit / paceRoundsPerSecond)); st.Rounds < want {
				t.Errorf("Rounds = %d, want at least %d (rounds of at most %d bytes)", st.Rounds, want, limit/paceRoundsPerSecond)
			}
			for name, n := range st.Syscalls {
				if !contains(ownCalls[strategy], name) {
					t.Errorf("Syscalls[%q] = %d: not a %v call", name, n, strategy)
				}
			}
			if st.Model != senderModel(strategy, st.Model.Gather) {
				t.Errorf("Model = %+v, want the %v model", st.Model, strategy)
			}
		})
	}
}

// TestPacedRoundsBookWhatTheySend checks that every strategy books on
// the clock the bytes it sends, no more: with rounds larger than an MMAP
// window (200 MiB/s makes 10 MiB rounds), MMAP used to book a whole
// round and send one window, which held it to a tenth of its limit.
func TestPacedRoundsBookWhatTheySend(t *testing.T) {
	const size = 24<<20 + 12345
	dir := t.TempDir()
	path, data := writeFile(t, dir, size)
	for _, strategy := range Strategies {
		t.Run(strategy.String(), func(t *testing.T) {
			ts := startServer(t, Config{MaxRate: 200 << 20})
			tr := ts.offer(t, path, Source{Strategy: strategy})
			_, got := ts.receiveFile(t, tr, dir, ReceiveConfig{})
			if string(got) != string(data) {
				t.Fatalf("received %d bytes, want %d exact", len(got), size)
			}
			if _, err := tr.Result(); err != nil {
				t.Fatalf("Result() error = %v", err)
			}
			ts.ceiling.mu.Lock()
			booked := ts.ceiling.booked
			ts.ceiling.mu.Unlock()
			if booked != size {
				t.Errorf("the server's clock booked %d bytes for a %d-byte transfer", booked, size)
			}
		})
	}
}

func contains(names []string, name string) bool {
	for _, n := range names {
		if n == name {
			return true
		}
	}
	return false
}

// TestPacedCeiling runs two transfers at once under a server-wide
// ceiling: neither asks for a limit, each reports the ceiling as its
// pace, and together they move no faster than the ceiling (per-transfer
// pacing alone would let them reach twice it). A third asks for less
// than the ceiling and gets its own limit.
func TestPacedCeiling(t *testing.T) {
	const size, ceiling = 4 << 20, 16 << 20
	dir := t.TempDir()
	path, data := writeFile(t, dir, size)
	ts := startServer(t, Config{MaxRate: ceiling})
	trs := []*Transfer{
		ts.offer(t, path, Source{Strategy: Sendfile}),
		ts.offer(t, path, Source{Strategy: Splice, RateLimit: 2 * ceiling}),
	}
	var wg sync.WaitGroup
	start := time.Now()
	for _, tr := range trs {
		wg.Go(func() {
			if _, got := ts.receiveFile(t, tr, dir, ReceiveConfig{}); string(got) != string(data) {
				t.Errorf("transfer %s: received %d bytes, want %d exact", tr.ID, len(got), size)
			}
		})
	}
	wg.Wait()
	wall := time.Since(start)
	for _, tr := range trs {
		st, err := tr.Result()
		if err != nil || st.RateLimit != ceiling {
			t.Errorf("transfer %s: Result() = RateLimit %d, %v; want %d, nil", tr.ID, st.RateLimit, err, ceiling)
		}
	}
	if got := float64(2*size) / wall.Seconds(); got > ceiling*paceSlack {
		t.Errorf("together: %d bytes in %v = %.0f B/s, want at most %d × %.1f", 2*size, wall, got, ceiling, paceSlack)
	}

	// One after the other, each from its own start: under the ceiling,
	// or under its own limit when that is lower.
	for _, limit := range []int64{4 * ceiling / 5, 0, 0} {
		tr := ts.offer(t, path, Source{Strategy: ReadWrite, RateLimit: limit})
		ts.receiveFile(t, tr, dir, ReceiveConfig{})
		st, err := tr.Result()
		want := cmp.Or(limit, ceiling)
		if err != nil || st.RateLimit != want {
			t.Errorf("RateLimit %d: Result() = RateLimit %d, %v; want %d, nil", limit, st.RateLimit, err, want)
		}
		if got := st.Throughput(); got > float64(want)*paceSlack {
			t.Errorf("RateLimit %d: Throughput() = %.0f B/s, want at most %d × %.1f", limit, got, want, paceSlack)
		}
	}
}

// TestPacedCancel cancels transfers waiting for their next round at a
// rate that would take a minute: once the first round has arrived (so the
// sender is in its wait), Cancel returns promptly, the result is
// context.Canceled, the connection is reset rather than ended, and no
// goroutine is left.
func TestPacedCancel(t *testing.T) {
	const size, limit = 8 << 20, 128 << 10 // 64 s; rounds of 64 KiB, 0.5 s apart
	dir := t.TempDir()
	path, _ := writeFile(t, dir, size)
	ts := startServer(t, Config{})
	for _, strategy := range Strategies {
		t.Run(strategy.String(), func(t *testing.T) {
			tr := ts.offer(t, path, Source{Strategy: strategy, RateLimit: limit})
			c := dialRaw(t, ts.addr, preambleFor(tr.Ticket[:]))
			first := make([]byte, 1+minPaceRound) // the verdict and the first round
			if _, err := io.ReadFull(c, first); err != nil || Verdict(first[0]) != VerdictOK {
				t.Fatalf("reading the verdict and the first round: verdict %v, %v", Verdict(first[0]), err)
			}
			begun := time.Now()
			tr.Cancel()
			if took := time.Since(begun); took > 10*time.Second {
				t.Errorf("Cancel() took %v during a pacing wait, want well under the 0.5 s round", took)
			}
			if _, err := tr.Result(); !errors.Is(err, context.Canceled) {
				t.Errorf("Result() = %v, want %v", err, context.Canceled)
			}
			if n, err := io.Copy(io.Discard, c); err == nil {
				t.Errorf("after Cancel the connection ended cleanly after %d more bytes, want a reset", n)
			}
		})
	}
	ts.close(t)()
	checkNoGoroutines(t)
}

// TestPacedNotInline checks that a paced transfer is not sent inside its
// offer, where nothing could pace it, while the same offer unpaced is.
func TestPacedNotInline(t *testing.T) {
	dir := t.TempDir()
	path, _ := writeFile(t, dir, 100)
	for _, tt := range []struct {
		cfg        Config
		limit      int64
		wantInline bool
	}{
		{Config{}, 0, true},
		{Config{}, 1 << 20, false},
		{Config{MaxRate: 1 << 20}, 0, false},
	} {
		ts := startServer(t, tt.cfg)
		tr := ts.offer(t, path, Source{RateLimit: tt.limit, InlineMax: MaxInline})
		if tr.Inline != tt.wantInline {
			t.Errorf("MaxRate %d, Offer(RateLimit %d, InlineMax %d).Inline = %v, want %v", tt.cfg.MaxRate, tt.limit, MaxInline, tr.Inline, tt.wantInline)
		}
		tr.Cancel()
	}
}

// TestClock checks the pacing clock itself: slots follow each other
// without overlap, never start in the past, and a released last slot is
// given back.
func TestClock(t *testing.T) {
	if c := newClock(0); c != nil {
		t.Errorf("newClock(0) = %v, want nil (no limit)", c)
	}
	const rate = 1 << 20
	c := newClock(rate)
	begun := time.Now()
	var end time.Time
	for i := 1; i <= 4; i++ {
		end = c.reserve(rate/4, begun)
		if min := begun.Add(time.Duration(i) * time.Second / 4); end.Before(min) {
			t.Errorf("slot %d ends at +%v, want at least +%v", i, end.Sub(begun), min.Sub(begun))
		}
	}
	c.release(end, rate/4)
	if again := c.reserve(rate/4, begun); !again.Equal(end) {
		t.Errorf("after release, reserve() = +%v, want the released slot's end +%v", again.Sub(begun), end.Sub(begun))
	}
	busy := newClock(rate)
	last := time.Now().Add(-time.Millisecond) // the last slot ended while its round was sending
	busy.next = last
	if end, want := busy.reserve(rate, last), last.Add(time.Second); !end.Equal(want) {
		t.Errorf("a slot booked just after the last one ended ends at +%v, want +%v: right after the last slot", end.Sub(begun), want.Sub(begun))
	}
	shared := newClock(rate)
	shared.next = time.Now().Add(-time.Millisecond) // the transfer before ended just now
	since := time.Now()
	if end := shared.reserve(rate, since); end.Before(since.Add(time.Second)) {
		t.Errorf("a new transfer's first slot ends at +%v after it began, want at least +1s: no credit from the one before", end.Sub(since))
	}
	stale := newClock(rate)
	stale.next = begun.Add(-time.Hour) // idle for an hour: no credit
	if end := stale.reserve(rate, begun); end.Before(begun.Add(time.Second)) {
		t.Errorf("after an idle hour, a second's bytes may go at +%v, want at least +1s", end.Sub(begun))
	}
}

// TestAppliedRate checks how a request's limit meets the ceiling.
func TestAppliedRate(t *testing.T) {
	for _, tt := range []struct{ want, ceiling, applied int64 }{
		{0, 0, 0}, {100, 0, 100}, {0, 100, 100}, {50, 100, 50}, {200, 100, 100}, {-1, 0, 0},
	} {
		if got := appliedRate(tt.want, tt.ceiling); got != tt.applied {
			t.Errorf("appliedRate(%d, %d) = %d, want %d", tt.want, tt.ceiling, got, tt.applied)
		}
	}
}

// TestPacedOffer checks that Offer refuses a negative limit.
func TestPacedOffer(t *testing.T) {
	dir := t.TempDir()
	path, _ := writeFile(t, dir, 10)
	ts := startServer(t, Config{})
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if tr, err := ts.Offer(Source{File: f, Path: "f", RateLimit: -1}); err == nil {
		tr.Cancel()
		t.Errorf("Offer(RateLimit: -1) = nil error, want one")
	}
}

// TestFlowRate: Config.FlowRate paces each data connection in the kernel
// (SO_MAX_PACING_RATE), whatever the strategy: 4 MiB at 8 MiB/s cannot
// arrive in less than about half a second, less the first burst the
// pacing lets through. Only the lower bound is checked: a loaded machine
// makes any transfer slower, never a paced one faster.
func TestFlowRate(t *testing.T) {
	const size, rate = 4 << 20, 8 << 20
	dir := t.TempDir()
	path, data := writeFile(t, dir, size)
	for _, strategy := range []Strategy{ReadWrite, Sendfile} {
		t.Run(strategy.String(), func(t *testing.T) {
			ts := startServer(t, Config{FlowRate: rate})
			tr := ts.offer(t, path, Source{Strategy: strategy})
			start := time.Now()
			_, got := ts.receiveFile(t, tr, dir, ReceiveConfig{})
			took := time.Since(start)
			if !bytes.Equal(got, data) {
				t.Fatalf("received %d bytes, want %d exact", len(got), size)
			}
			if least := 300 * time.Millisecond; took < least {
				t.Errorf("%d bytes at a flow rate of %d B/s took %v; want at least %v", size, rate, took, least)
			}
		})
	}
}
