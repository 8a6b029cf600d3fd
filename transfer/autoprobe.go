package transfer

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ferrydev/ferry/fsroot"
)

// The start-up probe (Config.AutoProbe) seeds the measuring Auto with
// figures of this host before the first client asks: it sends a range of
// each class's size with every supported strategy, a few times over and
// interleaved, through this Server's own data path over loopback to a
// receiver in the same process that discards the bytes (splicing into
// /dev/null, as a real receiver does), and records what the receiver
// saw: the time from dialling to the last byte delivered. Its figures are
// those of a receiver that passes the bytes on (SinkStream); the classes
// of receivers that land files borrow them until their own come in. The probe's
// transfers never leave the host, so neither Config.MaxRate nor
// Config.FlowRate paces them: paced, every strategy would measure the
// same. It runs in the background:
// until it is done, Auto follows the fixed order.

// probeRuns are the ranges the probe sends, and how often each. The two
// largest classes share the 64 MiB figures: moving 256 MiB per strategy
// would cost a second of start-up for a difference the first real
// transfers measure anyway.
var probeRuns = []struct {
	length int64
	runs   int
	seed   []int64 // the lengths of the classes the figures seed
}{
	{32 << 10, 5, []int64{0}},
	{256 << 10, 5, []int64{64 << 10}},
	{2 * mib, 3, []int64{mib}},
	{64 * mib, 2, []int64{16 * mib, 256 * mib}},
}

// probeCosts runs the probe; it gives up quietly when the server shuts
// down or something it needs (a file, a listener) cannot be had, leaving
// Auto on the fixed order, and says so in the log.
func (s *Server) probeCosts(dir string) {
	calls := make(map[string]int64)
	start := time.Now()
	err := s.probe(dir, calls)
	switch {
	case err == nil:
		s.auto.setSeed("probe")
		// Its data-path calls are in no transfer's report: say them here,
		// so that strace -c of a whole ferryd still adds up.
		s.cfg.logger().Info("auto strategy seeded by the start-up probe", "took", time.Since(start).Round(time.Millisecond), "syscalls", calls)
	case s.ctx.Err() == nil && !s.shuttingDown():
		s.cfg.logger().Warn("start-up probe failed; auto follows the fixed order until transfers are measured", "err", err)
	}
}

func (s *Server) probe(dir string, calls map[string]int64) error {
	f, err := probeData(dir, probeRuns[len(probeRuns)-1].length)
	if err != nil {
		return err
	}
	defer f.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		s.serve(ln, nil) // its own receiver, in this process: plaintext
	}()
	defer func() {
		ln.Close()
		<-served
	}()
	null, err := fsroot.CreateDestination(os.DevNull)
	if err != nil {
		return err
	}
	for _, pr := range probeRuns {
		for range pr.runs {
			for _, st := range s.supported {
				got, err := s.probeOne(f, ln.Addr().String(), st, pr.length, null, calls)
				if err != nil {
					return fmt.Errorf("%v, %d bytes: %w", st, pr.length, err)
				}
				for _, l := range pr.seed {
					s.auto.seed(l, Loopback, SinkStream, got, time.Now())
				}
			}
		}
	}
	return nil
}

// probeOne sends length bytes of f with st to the probe's own receiver
// and returns the receiver's figures, adding both sides' counted calls
// to calls.
func (s *Server) probeOne(f *os.File, addr string, st Strategy, length int64, null *fsroot.Destination, calls map[string]int64) (Stats, error) {
	fd, err := unix.Dup(int(f.Fd()))
	if err != nil {
		return Stats{}, err
	}
	dup := os.NewFile(uintptr(fd), "probe")
	t, err := s.offer(Source{File: dup, Path: "(probe)", Length: length, Strategy: st, ClientIP: probeIP}, true)
	if err != nil {
		dup.Close() // a refused offer leaves the file to its caller
		return Stats{}, err
	}
	tk := Ticket{Address: addr, Ticket: t.Ticket[:], Length: t.Length, Strategy: t.Strategy}
	start := time.Now()
	got, err := Receive(s.ctx, tk, null, ReceiveConfig{})
	if err != nil {
		t.Cancel()
		return Stats{}, err
	}
	got.Duration = time.Since(start) // connect, preamble, verdict, every byte
	sent, err := t.Result()
	// The rate is the receiver's; the CPU figures are the sender's, as
	// for every other figure the chooser keeps.
	got.UserCPU, got.SystemCPU, got.ThreadMeasured = sent.UserCPU, sent.SystemCPU, sent.ThreadMeasured
	for _, side := range []Stats{sent, got} {
		for name, n := range side.Syscalls {
			calls[name] += n
		}
	}
	return got, err
}

// probeData returns a file of size bytes in the page cache: unnamed
// (O_TMPFILE) in dir, so that it is on the file system the server sends
// from and nobody sees it, or else a removed temporary file.
func probeData(dir string, size int64) (*os.File, error) {
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
	f := os.NewFile(uintptr(fd), "probe")
	if err != nil {
		f, err = removedTemp()
	}
	if err != nil {
		return nil, err
	}
	buf := make([]byte, mib)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	for off := int64(0); off < size; off += int64(len(buf)) {
		if _, err := f.WriteAt(buf, off); err != nil {
			f.Close()
			return nil, errors.Join(errors.New("writing the probe's file"), err)
		}
	}
	return f, nil
}

// probeIP is the probe's own address as a client: loopback, which is
// where its receiver is, and what Config.BindDataToClient checks.
var probeIP = netip.MustParseAddr("127.0.0.1")

// setSeed records where the figures came from.
func (c *chooser) setSeed(seed string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seeded = seed
}
