package transfer

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ferrydev/ferry/fsroot"
)

// The copy loops must not allocate per round: a round is a system call
// or two, and a heap allocation per round would put the garbage
// collector on the data path of every large transfer. The harness here
// runs one copy loop, sender's or receiver's, over a loopback TCP socket
// whose peer is a goroutine that moves bytes without allocating, and
// counts the heap allocations made between the loop's start and end
// (runtime.MemStats.Mallocs, process-wide). Running the same loop over
// two lengths, 8 MiB and 64 MiB in 64 KiB rounds, tells what scales with
// the rounds from what the loop sets up once (a pooled pipe, a timer,
// the callbacks bound to the job).

const (
	steadyChunk = 64 << 10 // every strategy's round, and the receive buffer
	steadySmall = 8 << 20
	steadyLarge = 64 << 20
)

// loopRun is what one run of a copy loop cost.
type loopRun struct {
	mallocs uint64 // heap allocations between the loop's start and end
	rounds  int64  // the loop's rounds, as its Stats report them
}

// perRound is the allocations the extra rounds of large over small cost,
// each: 0 when a loop allocates only for its setup.
func perRound(small, large loopRun) float64 {
	return (float64(large.mallocs) - float64(small.mallocs)) / float64(large.rounds-small.rounds)
}

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t testing.TB) (near, far *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	a, err := ln.Accept()
	if err != nil {
		c.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); a.Close() })
	return c.(*net.TCPConn), a.(*net.TCPConn)
}

func rawConn(t testing.TB, c syscall.Conn) syscall.RawConn {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	return rc
}

// sendLoop runs strategy's copy loop over the first n bytes of path, as
// Server.send does (a locked, measured thread; paced against a clock so
// fast that it never holds a round back for long, when paced), into a
// socket a goroutine drains.
func sendLoop(t testing.TB, path string, n int64, strategy Strategy, paced bool) loopRun {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	near, far := tcpPair(t)
	drained := make(chan error, 1)
	buf := make([]byte, 4*steadyChunk)
	go func() {
		for {
			if _, err := far.Read(buf); err != nil {
				if err == io.EOF {
					err = nil
				}
				drained <- err
				return
			}
		}
	}()
	cfg := &Config{BufferSize: steadyChunk, SendfileChunk: steadyChunk, MmapWindow: steadyChunk, PipeSize: steadyChunk}
	pipes := newPipePool(cfg.pipeSize(), 1, quiet)
	defer pipes.close()
	var sent atomic.Int64
	var maps mapBudget
	j := &sendJob{rc: rawConn(t, near), file: f, fd: int(f.Fd()), left: n, sent: &sent, cfg: cfg, pipes: pipes, maps: &maps}
	m := startMeter(true)
	if paced {
		j.pace = &pacer{ctx: t.Context(), since: m.start, round: steadyChunk, own: newClock(1 << 40), meter: m}
	}

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	written, handled, err := senders[strategy](j)
	runtime.ReadMemStats(&after)

	var st Stats
	m.stop(&st, &j.n)
	near.Close()
	if !handled || err != nil || written != n {
		t.Fatalf("%v loop: wrote %d of %d bytes, handled %v, err %v", strategy, written, n, handled, err)
	}
	if err := <-drained; err != nil {
		t.Fatalf("draining: %v", err)
	}
	far.Close()
	return loopRun{mallocs: after.Mallocs - before.Mallocs, rounds: j.round}
}

// recvLoop runs the receiving copy loop (recvJob.run, as Receive does)
// over n bytes a goroutine writes, into a fresh destination of kind.
func recvLoop(t testing.TB, n int64, kind string) loopRun {
	t.Helper()
	near, far := tcpPair(t)
	written := make(chan error, 1)
	payload := randomBytes(steadyChunk)
	go func() {
		var err error
		for left := n; left > 0 && err == nil; {
			var w int
			w, err = far.Write(payload[:min(left, steadyChunk)])
			left -= int64(w)
		}
		far.Close()
		written <- err
	}()
	dst := steadyDestination(t, kind)
	r := newRecvJob(rawConn(t, near), dst, ReceiveConfig{BufferSize: steadyChunk, ReadWrite: !strings.HasSuffix(kind, "-splice")})
	defer r.release()
	// Armed as receiveOn arms it: the rounds must note the time without
	// allocating (the deadline is moved only when it passes).
	r.armIdle(near, time.Minute, func() error { return nil })
	if r.splicing() != strings.HasSuffix(kind, "-splice") {
		t.Fatalf("receiving into %s: spliced = %v", kind, r.splicing())
	}
	m := startMeter(true)

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	err := r.run(n)
	runtime.ReadMemStats(&after)

	var st Stats
	m.stop(&st, &r.n)
	if err != nil || r.got != n {
		t.Fatalf("receive loop: got %d of %d bytes, err %v", r.got, n, err)
	}
	near.Close()
	if err := <-written; err != nil {
		t.Fatalf("writing: %v", err)
	}
	return loopRun{mallocs: after.Mallocs - before.Mallocs, rounds: r.round}
}

// receiverKinds are the destinations the receiving loop writes to
// differently: discarded, discarded through a pass-through checksum, and
// a file, read into a buffer; discarded and a file, spliced.
var receiverKinds = []string{"discard", "checksum", "file", "discard-splice", "file-splice"}

// steadyDestination makes a fresh destination of kind.
func steadyDestination(t testing.TB, kind string) *fsroot.Destination {
	t.Helper()
	path := os.DevNull
	if strings.HasPrefix(kind, "file") {
		path = filepath.Join(t.TempDir(), "dst")
	}
	d, err := fsroot.CreateDestination(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Abort)
	if kind == "checksum" {
		if err := ExpectChecksum(d, CRC32C); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// steadyRuns runs loop over the small and the large length, a few times
// each, and keeps each length's fewest allocations: an allocation made
// meanwhile by another goroutine of the process (a timer, a server an
// earlier test left to wind down) lands in one run, not in all of them.
func steadyRuns(loop func(n int64) loopRun) (small, large loopRun) {
	loop(steadyLarge) // warm up: pools, the runtime's threads
	for i := range 3 {
		s, l := loop(steadySmall), loop(steadyLarge)
		if i == 0 || s.mallocs < small.mallocs {
			small = s
		}
		if i == 0 || l.mallocs < large.mallocs {
			large = l
		}
	}
	return small, large
}

// steadySlack is the allocations the large run may make beyond the small
// one's, for the runtime's own (a thread, a stack grown) that no loop
// asked for. An allocation per round would be hundreds more: the large
// run has about 896 rounds more than the small one.
const steadySlack = 16

// TestSteadyStateLoopsDoNotAllocate holds every copy loop, each
// strategy's sender paced or not and the receiver into each kind of
// destination, to allocations that do not grow with the rounds. The
// bound is the same under -race: the instrumentation allocates nothing
// in these loops either.
func TestSteadyStateLoopsDoNotAllocate(t *testing.T) {
	path, _ := writeFile(t, t.TempDir(), steadyLarge)
	check := func(t *testing.T, small, large loopRun) {
		t.Helper()
		extra := large.rounds - small.rounds
		// 896 more at 64 KiB a round; short writes and reads add rounds
		// to either run.
		if extra < (steadyLarge-steadySmall)/steadyChunk/2 {
			t.Fatalf("rounds: %d at %d MiB, %d at %d MiB: too few more to tell an allocation per round",
				small.rounds, steadySmall>>20, large.rounds, steadyLarge>>20)
		}
		grew := int64(large.mallocs) - int64(small.mallocs)
		t.Logf("%d allocations at %d rounds, %d at %d rounds: %.3f per round",
			small.mallocs, small.rounds, large.mallocs, large.rounds, perRound(small, large))
		if grew > steadySlack {
			t.Errorf("the loop allocates per round: %d more allocations over %d more rounds (allowed: %d)",
				grew, extra, steadySlack)
		}
	}
	for _, strategy := range Strategies {
		for _, paced := range []bool{false, true} {
			name := strategy.String()
			if paced {
				name += "/paced"
			}
			t.Run("send/"+name, func(t *testing.T) {
				small, large := steadyRuns(func(n int64) loopRun { return sendLoop(t, path, n, strategy, paced) })
				check(t, small, large)
			})
		}
	}
	for _, kind := range receiverKinds {
		t.Run("receive/"+kind, func(t *testing.T) {
			small, large := steadyRuns(func(n int64) loopRun { return recvLoop(t, n, kind) })
			check(t, small, large)
		})
	}
}

// TestSteadyStateHarnessCountsAllocations shows that the measurement
// sees an allocation per round: a loop that allocates once a round (as a
// method value made per call would) must break the bound the real loops
// keep.
func TestSteadyStateHarnessCountsAllocations(t *testing.T) {
	var sink [][]byte
	alloc := func(n int64) loopRun {
		sink = sink[:0]
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		rounds := n / steadyChunk
		for range rounds {
			sink = append(sink[:0], make([]byte, 8)) // escapes: one allocation a round
		}
		runtime.ReadMemStats(&after)
		return loopRun{mallocs: after.Mallocs - before.Mallocs, rounds: rounds}
	}
	small, large := steadyRuns(alloc)
	if grew := int64(large.mallocs) - int64(small.mallocs); grew <= steadySlack {
		t.Fatalf("an allocation per round grew the count by %d over %d rounds: the harness cannot see it",
			grew, large.rounds-small.rounds)
	}
	if pr := perRound(small, large); pr < 0.9 {
		t.Errorf("perRound = %.2f for one allocation a round, want about 1", pr)
	}
}
