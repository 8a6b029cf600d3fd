package transfer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ferrydev/ferry/fsroot"
)

// Server is the data plane: it hands out offers (Offer) and serves their
// bytes to whoever presents the ticket on a listener passed to Serve.
type Server struct {
	cfg       Config
	supported []Strategy
	tickets   *tickets
	pipes     *pipePool
	maps      mapBudget // shared by MMAP transfers (Config.MmapBudget)
	gather    gatherCache
	ids       atomic.Uint64
	// active counts transfers from Offer to finish (MaxTransfers);
	// handshakes counts connections from Accept to the end of their
	// preamble (MaxHandshakes).
	active atomic.Int64
	// admitted counts transfers ever admitted: a transfer that sees it
	// unchanged at its end, and was alone when admitted, had the server
	// to itself (Transfer.alone).
	admitted   atomic.Uint64
	handshakes atomic.Int64
	perIP      sources // handshakes per source address (MaxHandshakesPerIP)
	// idleConns counts keep-alive connections waiting for their next
	// preamble (MaxIdleConns).
	idleConns atomic.Int64
	refusals  refusalLog
	ceiling   *clock  // Config.MaxRate, shared by every transfer; nil if none
	idle      idleSet // keep-alive connections waiting for a preamble

	sums      *sumCache   // Checksum's cache (Config.ChecksumCache)
	kernelTLS bool        // probed at start: see KernelTLS
	tlsCfg    *tls.Config // the data channel's TLS (ServerDataTLS of Config.TLS); nil: plaintext
	auto      *chooser    // the measuring Auto; nil when Auto follows the fixed order
	// probing is the start-up probe's goroutine (Config.AutoProbe).
	probing sync.WaitGroup

	ctx    context.Context // cancelled by Close with ErrClosed: aborts every transfer
	cancel context.CancelCauseFunc

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	closing   bool
	conns     sync.WaitGroup      // one per accepted connection
	sessions  map[uint64]*Session // open sessions, by their ticket's first 8 bytes
	// bound counts data connections bound to sessions (MaxBoundConns).
	bound atomic.Int64
}

// NewServer probes which strategies this kernel accepts and returns a
// Server ready to Serve.
func NewServer(cfg Config) *Server {
	ctx, cancel := context.WithCancelCause(context.Background())
	s := &Server{
		cfg:       cfg,
		tickets:   newTickets(),
		pipes:     newPipePool(cfg.pipeSize(), cfg.idlePipes(), cfg.logger()),
		ceiling:   newClock(cfg.MaxRate),
		ctx:       ctx,
		cancel:    cancel,
		listeners: make(map[net.Listener]struct{}),
		sums:      newSumCache(cfg.checksumCache()),
	}
	if cfg.TLS != nil {
		s.tlsCfg = ServerDataTLS(cfg.TLS)
	}
	for _, st := range probe() {
		if !slices.Contains(cfg.Disable, st) && (s.tlsCfg == nil || !needsPlainSocket(st)) {
			s.supported = append(s.supported, st)
		}
	}
	s.kernelTLS = probeKernelTLS()
	if cfg.Auto == AutoMeasure {
		s.auto = newChooser(s.supported, cfg.preference, cfg.autoExploreEvery())
		if cfg.AutoProbe {
			s.probing.Go(func() { s.probeCosts(cfg.AutoProbeDir) })
		}
	}
	return s
}

// KernelTLS reports whether this host's kernel offers kTLS (the "tls"
// TCP upper-layer protocol), probed when the server was made. Nothing in
// Ferry uses it yet.
func (s *Server) KernelTLS() bool { return s.kernelTLS }

// Supported lists the strategies this server offers.
func (s *Server) Supported() []Strategy { return slices.Clone(s.supported) }

// Choose resolves a requested strategy: Auto becomes the first supported
// strategy in the preference order; an unsupported one is ErrUnsupported.
func (s *Server) Choose(want Strategy) (Strategy, error) {
	return s.ChooseFor(want, math.MaxInt64)
}

// AutoSmallBelow is the length under which Auto follows the small-file
// preference.
func (s *Server) AutoSmallBelow() int64 { return s.cfg.autoSmallBelow() }

// ChooseFor is Choose for a transfer of length bytes. With the fixed
// order (AutoFixed), Auto follows Config.SmallPreference under
// Config.AutoSmallBelow, Config.Preference from there up; measuring
// (AutoMeasure), it is the current pick for a loopback receiver that
// lands a file, with no exploration.
func (s *Server) ChooseFor(want Strategy, length int64) (Strategy, error) {
	if want == Auto && s.auto != nil {
		st, _ := s.auto.pickFor(length, Loopback, SinkFile)
		return st, nil
	}
	if want == Auto {
		for _, st := range s.cfg.preference(length) {
			if slices.Contains(s.supported, st) {
				return st, nil
			}
		}
	} else if slices.Contains(s.supported, want) {
		return want, nil
	}
	if s.tlsCfg != nil && needsPlainSocket(want) {
		return 0, fmt.Errorf("%w: %v over this server's TLS data channel: TLS runs in user space, so the bytes "+
			"pass through a buffer (supported: %v)", ErrUnsupported, want, s.supported)
	}
	return 0, fmt.Errorf("%w: %v (supported: %v)", ErrUnsupported, want, s.supported)
}

// Source is what an offer sends: a byte range of an open file.
type Source struct {
	File     *os.File
	Path     string // for logs only
	Offset   int64
	Length   int64 // 0 means to the end of the file
	Strategy Strategy
	// ClientIP is the address the offer's client called from. With
	// Config.BindDataToClient the data connection must come from it, and
	// an offer without one is an error.
	ClientIP netip.Addr
	// RateLimit paces the transfer's data channel to at most this many
	// bytes per second; Config.MaxRate may hold it lower
	// (Transfer.RateLimit). 0 means no per-transfer limit.
	RateLimit int64
	// Checksum asks Offer for the range's checksum (Transfer.Checksum),
	// computed before the ticket is issued, or taken from the cache.
	// NoChecksum, the zero value, asks for none.
	Checksum ChecksumAlgorithm
	// InlineMax lets Offer read a range of at most this many bytes (and
	// at most MaxInline) into Transfer.Data instead of issuing a ticket.
	// 0 means never.
	InlineMax int64
	// TicketTTL is how long this offer's ticket waits for its data
	// connection, for an offer the client will take up later than usual
	// (a tree's queued offers, whose owner watches for a stall itself).
	// 0 means Config.TicketTTL.
	TicketTTL time.Duration
	// Context bounds the checksum's hashing. nil means
	// context.Background().
	Context context.Context
	// Sink is what the receiver does with the bytes, as its client says:
	// the measuring Auto keeps large transfers' figures apart per sink.
	Sink Sink
}

// Offer registers a transfer of src and mints its ticket. On success the
// Transfer owns src.File and closes it when it finishes; on error the
// caller still owns it. A range that runs past the end of the file is cut
// at the end; an offset past the end is ErrOutOfRange. Past
// Config.MaxTransfers it is ErrBusy, and once Shutdown has begun
// ErrClosed, both before anything is read or hashed; an inline offer
// counts against MaxTransfers while it is read. With src.Checksum the
// range is hashed (or its hash taken from the cache) before the ticket is
// minted; with src.InlineMax a short enough range is read into
// Transfer.Data instead, and the Transfer has finished, with no ticket,
// when Offer returns.
func (s *Server) Offer(src Source) (*Transfer, error) { return s.offer(src, false) }

// offer is Offer; a probe's transfer (probe) is neither logged, counted
// in Events nor measured for Auto: the probe records its own figures.
func (s *Server) offer(src Source, probe bool) (*Transfer, error) {
	return s.offerVia(src, probe, nil, 0)
}

// offerOn is Offer for session ss, framed with id (Session.Offer).
func (s *Server) offerOn(src Source, ss *Session, id uint64) (*Transfer, error) {
	return s.offerVia(src, false, ss, id)
}

// offerVia is offer; with a session ss the transfer joins its queue,
// framed with id, instead of getting a ticket.
func (s *Server) offerVia(src Source, probe bool, ss *Session, id uint64) (*Transfer, error) {
	size, length, err := src.span()
	if err != nil {
		return nil, err
	}
	var strategy Strategy
	var choice AutoChoice
	if ss != nil && src.Strategy == Auto && s.oneWriteFrame(src, length) {
		strategy, choice = ReadWrite, AutoChoice{ChosenByServer: true, Class: OneWriteClass}
	} else if strategy, choice, err = s.choose(src, length); err != nil {
		return nil, err
	}
	if s.cfg.BindDataToClient && !src.ClientIP.IsValid() {
		return nil, errors.New("BindDataToClient is set but the offer names no client address")
	}
	t := s.newTransfer(src, strategy, size, length)
	t.Auto, t.probe = choice, probe
	if probe {
		t.RateLimit = 0 // it never leaves the host: no ceiling holds it
	}
	if err := s.admit(t); err != nil {
		return nil, err
	}
	// Only a transfer that may become one of Auto's figures (long
	// enough, alone, not paced) reads the steal; outside admit's lock.
	if s.auto != nil && !probe && length >= liveFrom && t.alone && t.RateLimit == 0 && s.cfg.FlowRate == 0 {
		t.steal = markSteal()
	}
	// From here t holds a place: finish gives it back, once, however the
	// transfer ends; an offer that fails before then gives it back here.
	inline, err := s.prepare(t, src)
	if err == nil && !inline {
		ttl := orDefault(src.TicketTTL, s.cfg.ticketTTL())
		if ss != nil {
			t.Framed, t.frameID, t.sess = true, id, ss
			if err = ss.dispatch(t, ttl); err == errNotBound { // none left: a ticket, as in Download
				t.Framed, t.sess = false, nil
				err = s.issue(t, ttl)
			}
		} else {
			err = s.issue(t, ttl)
		}
	}
	if err != nil {
		s.active.Add(-1)
		t.cancel(err)
		return nil, err
	}
	return t, nil
}

// OneWriteClass is the size class an auto transfer on a session reports
// when it went out as one write (see oneWriteFrame).
const OneWriteClass = "[0 B, 64 KiB] on a session: one write"

// oneWriteFrame reports whether a framed transfer left to the server goes
// out as one write, READ_WRITE, whatever the chooser (or, with the fixed
// rule, Config.SmallPreference) would say: a range of at most
// smallFrameMax bytes, paced by nothing, on a plaintext data channel, on
// a server that supports READ_WRITE. The offering goroutine sends such a
// frame itself when a bound connection is waiting with room for it (else
// the connection's goroutine sends it the same way), with one
// pread(2) and one write(2) (sendSmallFrame). Any other strategy hands the
// frame to the connection's goroutine (a wakeup) and corks around it; the
// chooser's figures time the copy loop alone, which for a few KiB is
// mostly fixed costs, and cannot see that. On a 2-core AMD EPYC guest,
// where the chooser picked SPLICE for the class, a 4 KiB session get
// took 5% and 14% less at the median this way in two interleaved pairs
// of short benchmark runs (see docs/strategies.md).
func (s *Server) oneWriteFrame(src Source, length int64) bool {
	return length <= smallFrameMax && appliedRate(src.RateLimit, s.cfg.MaxRate) == 0 && s.cfg.FlowRate == 0 && s.tlsCfg == nil &&
		slices.Contains(s.supported, ReadWrite)
}

// choose resolves src's strategy for a range of length bytes, and says
// how.
func (s *Server) choose(src Source, length int64) (Strategy, AutoChoice, error) {
	if src.Strategy == Auto && s.auto != nil {
		st, choice := s.auto.choose(length, networkOf(src.ClientIP), src.Sink)
		return st, choice, nil
	}
	st, err := s.ChooseFor(src.Strategy, length)
	return st, AutoChoice{ChosenByServer: src.Strategy == Auto}, err
}

// networkOf says where a client calling from ip is: an address that is
// not loopback (or none known) is across a network.
func networkOf(ip netip.Addr) Network {
	if ip.IsValid() && ip.Unmap().IsLoopback() {
		return Loopback
	}
	return Remote
}

// shuttingDown reports whether Shutdown or Close has begun.
func (s *Server) shuttingDown() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// AutoPolicy describes how Auto chooses now: the mode and, when
// measuring, every class's pick and the figures behind it.
func (s *Server) AutoPolicy() AutoPolicy {
	if s.auto == nil {
		below := s.cfg.autoSmallBelow()
		return AutoPolicy{Mode: AutoFixed, Seed: "pinned", Objective: fmt.Sprintf("a fixed order: %v under %s, %v from it",
			s.cfg.preference(below-1), sizeName(below), s.cfg.preference(below))}
	}
	return s.auto.snapshot()
}

// span checks that src is a regular file and its range and rate make
// sense, and returns the file's size and the range's length.
func (src Source) span() (size, length int64, err error) {
	fi, err := src.File.Stat()
	if err != nil {
		return 0, 0, fmt.Errorf("stat: %w", err)
	}
	switch {
	case fi.IsDir():
		return 0, 0, fmt.Errorf("%w: %q", fsroot.ErrIsDir, src.Path)
	case !fi.Mode().IsRegular():
		return 0, 0, fmt.Errorf("%w: %q", fsroot.ErrNotRegular, src.Path)
	}
	size = fi.Size()
	if src.Offset < 0 || src.Length < 0 || src.Offset > size {
		return 0, 0, fmt.Errorf("%w: offset %d, size %d", ErrOutOfRange, src.Offset, size)
	}
	if src.RateLimit < 0 {
		return 0, 0, fmt.Errorf("negative rate limit: %d bytes/s", src.RateLimit)
	}
	length = size - src.Offset
	if src.Length > 0 && src.Length < length {
		length = src.Length
	}
	return size, length, nil
}

// newTransfer makes the Transfer an offer of src promises.
func (s *Server) newTransfer(src Source, strategy Strategy, size, length int64) *Transfer {
	t := &Transfer{
		ID:        strconv.FormatUint(s.ids.Add(1), 10),
		Strategy:  strategy,
		Path:      src.Path,
		Offset:    src.Offset,
		Length:    length,
		FileSize:  size,
		RateLimit: appliedRate(src.RateLimit, s.cfg.MaxRate),
		file:      src.File,
		srv:       s,
		done:      make(chan struct{}),
	}
	if s.cfg.BindDataToClient {
		t.client = src.ClientIP.Unmap()
	}
	if src.ClientIP.IsValid() {
		t.peer = src.ClientIP.Unmap().String()
	}
	t.net, t.sink = networkOf(src.ClientIP), src.Sink
	t.ctx, t.cancel = context.WithCancelCause(s.ctx)
	return t
}

// issue gives t its ticket, good for ttl. It does so under mu, so that
// Shutdown, which sets closing under mu and then revokes every ticket,
// either sees this one or refuses it here with ErrClosed (it may have
// begun while prepare hashed).
func (s *Server) issue(t *Transfer, ttl time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return ErrClosed
	}
	s.tickets.issue(t, ttl, func() {
		if s.tickets.revoke(t) {
			t.finish(Stats{Strategy: t.Strategy}, ErrTicketExpired)
		}
	})
	if !t.probe {
		s.cfg.Events.issued()
	}
	return nil
}

// admit takes one of Config.MaxTransfers' places for t, before prepare
// reads or hashes anything: an offer that is ErrBusy, or ErrClosed once
// Shutdown has begun (inline ones too), costs no I/O.
func (s *Server) admit(t *Transfer) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		t.cancel(ErrClosed)
		return ErrClosed
	}
	n := s.active.Add(1)
	if max := s.cfg.maxTransfers(); n > int64(max) {
		s.active.Add(-1)
		t.cancel(ErrBusy)
		s.cfg.Events.refused(RefusedBusy)
		return fmt.Errorf("%w (the limit is %d); retry later", ErrBusy, max)
	}
	t.alone, t.admission = n == 1, s.admitted.Add(1)
	return nil
}

// Serve accepts data connections on ln until Close or Shutdown. It always
// returns a non-nil error; after Close or Shutdown it is ErrClosed. With
// Config.TLS every connection must speak TLS (see datatls.go).
func (s *Server) Serve(ln net.Listener) error { return s.serve(ln, s.tlsCfg) }

// serve is Serve with tlsCfg for its connections' TLS (nil: plaintext);
// the start-up probe serves its own listener in plaintext.
func (s *Server) serve(ln net.Listener, tlsCfg *tls.Config) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ln.Close()
		return ErrClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			if closing {
				return ErrClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.cfg.logger().Warn("data listener: accept failed; retrying", "err", err, "in", backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		// Counted here, before a goroutine exists; serve gives the
		// places back when the preamble is read or the handshake fails.
		if !s.admitHandshake(c) {
			s.cfg.Events.refused(RefusedHandshakeLimit)
			c.Write([]byte{byte(VerdictUnavailable)}) // a new socket's buffer has room: no wait
			c.Close()
			continue
		}
		// Add under mu: once Shutdown has set closing it may be in
		// conns.Wait, and an Add from zero must not race with that.
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			s.handshakeDone(c)
			c.Close()
			return ErrClosed
		}
		s.conns.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.conns.Done()
			(&dataConn{Server: s, c: c, tlsCfg: tlsCfg}).serve()
		}()
	}
}

// admitHandshake takes a place for c's handshake, of MaxHandshakes and
// of its source's MaxHandshakesPerIP, or refuses it (and logs so, at
// most once a minute).
func (s *Server) admitHandshake(c net.Conn) bool {
	if max := s.cfg.maxHandshakes(); s.handshakes.Add(1) > int64(max) {
		s.handshakes.Add(-1)
		s.refusals.note(s.cfg.logger(), max)
		return false
	}
	if !s.perIP.take(remoteIP(c), s.cfg.maxHandshakesPerIP()) {
		s.handshakes.Add(-1)
		s.refusals.note(s.cfg.logger(), s.cfg.maxHandshakesPerIP())
		return false
	}
	return true
}

// handshakeDone gives back the places admitHandshake took for c.
func (s *Server) handshakeDone(c net.Conn) {
	s.handshakes.Add(-1)
	s.perIP.give(remoteIP(c))
}

// Shutdown stops accepting data connections and revokes pending tickets,
// then waits for running transfers to finish until ctx is done, when it
// aborts them (their Result is ErrClosed), as it does connections still
// sending their preamble. It returns ctx's error if it had to abort any.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	for ln := range s.listeners {
		ln.Close()
	}
	s.mu.Unlock()
	s.idle.closeAll()
	s.drainSessions()
	for _, t := range s.tickets.revokeAll() {
		t.finish(Stats{Strategy: t.Strategy}, ErrClosed)
	}
	idle := make(chan struct{})
	go func() {
		s.conns.Wait()
		close(idle)
	}()
	var err error
	select {
	case <-idle:
	case <-ctx.Done():
		err = ctx.Err()
		s.cancel(ErrClosed)
		<-idle
	}
	s.cancel(ErrClosed)
	s.probing.Wait()
	s.pipes.close()
	return err
}

// Close aborts everything at once: Shutdown with no grace.
func (s *Server) Close() error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s.Shutdown(ctx)
	return nil
}

// Pending reports how many offers still wait for their data connection.
func (s *Server) Pending() int { return s.tickets.len() }

// MaxTransfers is the server's limit on transfers alive at once
// (Config.MaxTransfers with its default applied).
func (s *Server) MaxTransfers() int { return s.cfg.maxTransfers() }

// TicketTTL is Config.TicketTTL with its default applied.
func (s *Server) TicketTTL() time.Duration { return s.cfg.ticketTTL() }
